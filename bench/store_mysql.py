"""The store benchmark's MariaDB: its own mariadbd, the fleet in mysql-baileys' layout.

The server is the tests' (tests/integration/mariadb_server.py: mariadbd as a child process,
127.0.0.1, a random port, a fresh data dir), its InnoDB buffer pool raised to 1 GiB for the
seen table. The fleet (bench/store_data.py) goes into `auth_pristine` (mysql-baileys' table:
`auth(session, id, value)`, MyISAM, the value the BufferJSON text) with wa-sessions' seen rows
in `seen_pristine` (the layout of `wa_sessions_seen`); `reset` copies both into `auth` and
`wa_sessions_seen`, where wa-sessions and the floor work.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import sys
from pathlib import Path
from typing import Any

from bench import store_data
from tests.integration import mariadb_server
from wa_sessions.stores.mysql_wire import CREATE_SEEN, SEEN_TABLE

DATABASE = "bench"
TABLE = "auth"
INSERT_AUTH = "INSERT INTO auth_pristine (session, id, value) VALUES (%s, %s, %s)"
INSERT_SEEN = (
    "INSERT INTO seen_pristine (auth_table, session, id, digest, first_seen) VALUES (%s, %s, %s, %s, %s)"
)
_BATCH_INSTANCES = 10


def _write(address: tuple[str, int, str, str], keys: int, now: float, indexes: range) -> tuple[int, int]:
    """Write sessions `indexes` into the pristine tables; return (keys, value bytes)."""
    import pymysql

    host, port, user, password = address
    written = size = 0
    options = {"host": host, "port": port, "user": user, "password": password, "database": DATABASE}
    connection = pymysql.connect(autocommit=True, charset="utf8mb4", **options)
    with contextlib.closing(connection), connection.cursor() as cursor:
        rows: list[tuple[str, str, str]] = []
        seen: list[tuple[str, bytes, bytes, str, int]] = []
        for position, index in enumerate(indexes, 1):
            session = store_data.instance_id(index)
            for row_id, text, first_seen in store_data.instance_keys(index, keys, now):
                rows.append((session, row_id, text))
                encoded = text.encode()
                size += len(encoded)
                if first_seen is not None:
                    digest = hashlib.sha1(encoded).hexdigest()
                    seen.append((TABLE, session.encode(), row_id.encode(), digest, int(first_seen)))
            if position % _BATCH_INSTANCES == 0 or position == len(indexes):
                cursor.executemany(INSERT_AUTH, rows)
                cursor.executemany(INSERT_SEEN, seen)
                written += len(rows)
                rows, seen = [], []
    return written, size


class MySQLBackend:
    """A mariadbd started for the benchmark."""

    name = "MariaDB"
    floor_name = "streamed `SELECT session, id, LENGTH(value)` (PyMySQL)"

    def __init__(self, workdir: Path):
        self.server = mariadb_server.start_mariadb()
        with contextlib.closing(self.server.admin()) as connection, connection.cursor() as cursor:
            cursor.execute("SET GLOBAL innodb_buffer_pool_size = 1073741824")
        self.server.create_database(DATABASE)
        self.url = self.server.url(DATABASE, TABLE)
        with self._cursor() as cursor:
            for table in (TABLE, "auth_pristine"):
                cursor.execute(mariadb_server.CREATE_TABLE.format(table=table))
            cursor.execute(CREATE_SEEN)
            cursor.execute(f"CREATE TABLE seen_pristine LIKE `{SEEN_TABLE}`")

    @contextlib.contextmanager
    def _cursor(self) -> Any:
        with contextlib.closing(self.server.connect(DATABASE)) as connection, connection.cursor() as cursor:
            yield cursor

    def populate(self, instances: int, keys_per_instance: int, now: float) -> tuple[int, int]:
        server = self.server
        address = (server.host, server.port, server.user, server.password)
        return store_data.in_processes(functools.partial(_write, address, keys_per_instance, now), instances)

    def reset(self) -> None:
        with self._cursor() as cursor:
            cursor.execute(f"TRUNCATE `{TABLE}`")
            cursor.execute(f"INSERT INTO `{TABLE}` SELECT * FROM auth_pristine")
            cursor.execute(f"TRUNCATE `{SEEN_TABLE}`")
            cursor.execute(f"INSERT INTO `{SEEN_TABLE}` SELECT * FROM seen_pristine")

    def key_count(self) -> int:
        with self._cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM `{TABLE}`")
            return int(cursor.fetchone()[0])

    def floor(self) -> list[str]:
        return [sys.executable, "-m", "bench.store_floors", self.url]

    def describe(self) -> str:
        with self._cursor() as cursor:
            cursor.execute("SELECT VERSION()")
            version = cursor.fetchone()[0]
            cursor.execute(
                "SELECT SUM(data_length + index_length) FROM information_schema.tables WHERE table_schema = %s"
                " AND table_name IN (%s, %s)",
                (DATABASE, TABLE, SEEN_TABLE),
            )
            size = int(cursor.fetchone()[0] or 0)
        return f"MariaDB {version}, auth + seen tables {size / 1e6:,.0f} MB"

    def stop(self) -> None:
        self.server.stop()
