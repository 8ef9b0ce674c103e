"""The stores of the interop store tests, each started for one test: a real redis-server (Evolution
API's hash) and a database on the real MariaDB of tests/integration (mysql-baileys' table), with
what the tests read back from them (raw keys and values, first-seen records)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from integration import mariadb_server
from integration.redis_server import instance_key, start_redis


@dataclass(frozen=True)
class StoreUnderTest:
    """A running store: its URL, a tenant's raw keys -> raw values, how the writer encodes a
    value, and the first-seen times (epoch seconds) wa-sessions recorded for a tenant's keys."""

    url: str
    values: Callable[[str], dict[str, bytes]]
    decode: Callable[[bytes], Any]
    first_seen: Callable[[str], dict[str, int]]

    def files(self, company: str) -> dict[str, bytes]:
        """A tenant's keys named as their files (what wa-sessions and the manifest call them)."""
        return {file_name(key): value for key, value in self.values(company).items()}


def file_name(key: str) -> str:
    """The file useMultiFileAuthState would write for a key (what wa-sessions calls it)."""
    return key.replace("/", "__").replace(":", "-") + ".json"


@pytest.fixture
def redis_store(tmp_path: Path) -> Iterator[StoreUnderTest]:
    server = start_redis(tmp_path / "redis")
    client = server.client()

    def values(company: str) -> dict[str, bytes]:
        stored = client.hgetall(instance_key(company))
        return {field.decode(): value for field, value in stored.items()}

    def first_seen(company: str) -> dict[str, int]:
        recorded = client.hgetall(f"wa-sessions:seen:{company}")  # field -> "<sha1> <epoch>"
        return {file_name(field.decode()): int(entry.split()[1]) for field, entry in recorded.items()}

    try:
        # CacheService.hSet stringifies the value, RedisCache.hSet that text again
        yield StoreUnderTest(server.url(), values, lambda raw: json.loads(json.loads(raw)), first_seen)
    finally:
        client.close()
        server.stop()


@pytest.fixture
def mysql_store(request: pytest.FixtureRequest) -> Iterator[StoreUnderTest]:
    if not mariadb_server.HAVE_MARIADB:
        pytest.fail(mariadb_server.SKIP_REASON)
    server: mariadb_server.MariaDB = request.getfixturevalue("mariadb")
    database: str = request.getfixturevalue("mysql_db")
    connection = server.connect(database)

    def values(company: str) -> dict[str, bytes]:
        stored = mariadb_server.rows(connection, company)
        return {row_id.decode(): value for row_id, value in stored.items()}

    def first_seen(company: str) -> dict[str, int]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, first_seen FROM wa_sessions_seen WHERE auth_table = 'auth' AND session = %s",
                (company,),
            )
            return {file_name(bytes(row_id).decode()): int(when) for row_id, when in cursor.fetchall()}

    with contextlib.closing(connection):
        # writeData: an object stringified once, a string as it is
        yield StoreUnderTest(server.url(database), values, _mysql_baileys_value, first_seen)


def _mysql_baileys_value(raw: bytes) -> Any:
    """A value as mysql-baileys' readData (1.5.6) takes it: JSON when it looks like JSON."""
    return json.loads(raw) if raw[:1] in (b"{", b"[") else raw.decode()
