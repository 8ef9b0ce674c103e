"""What the MySQL store's tests share: two sessions of standard keys written as mysql-baileys
writes them (the `fleet` fixture), the CLI run against them, and looks at the tables."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import pytest

from .helpers import DAY, Run, run_cli, tenant_doc
from .mariadb_server import MariaDB, create_table, rows, write_standard_session

SESSION = "acme-01"
OTHER = "globex-02"


@pytest.fixture
def state_root(tmp_path: Path) -> Path:
    """`--root`: with a store, only where the state dir (history.jsonl) is."""
    folder = tmp_path / "root"
    folder.mkdir()
    return folder


@pytest.fixture
def mysql_fleet(mariadb: MariaDB, mysql_db: str) -> str:
    """Two sessions of standard keys in `auth`, as mysql-baileys writes them; the database name."""
    with contextlib.closing(mariadb.connect(mysql_db)) as connection:
        create_table(connection)
        write_standard_session(connection, SESSION)
        write_standard_session(connection, OTHER)
    return mysql_db


def wa(server: MariaDB, database: str, root: Path, *args: str, prelude: str | None = None) -> Run:
    return run_cli(*args, "--store", server.url(database), "--root", str(root), prelude=prelude)


def query(server: MariaDB, database: str, statement: str, arguments: tuple[Any, ...] = ()) -> list[Any]:
    with contextlib.closing(server.connect(database)) as connection, connection.cursor() as cursor:
        cursor.execute(statement, arguments)
        return list(cursor.fetchall())


def keys_of(server: MariaDB, database: str, session: str = SESSION) -> dict[str, bytes]:
    with contextlib.closing(server.connect(database)) as connection:
        return {row_id.decode(): value for row_id, value in rows(connection, session).items()}


def seen_table_exists(server: MariaDB, database: str) -> bool:
    found = query(server, database, "SHOW TABLES LIKE 'wa_sessions_seen'")
    return bool(found)


def seen(server: MariaDB, database: str, session: str = SESSION) -> dict[str, tuple[str, int]]:
    found = query(
        server, database, "SELECT id, digest, first_seen FROM wa_sessions_seen WHERE session = %s", (session,)
    )
    return {row_id.decode(): (digest_text, int(first)) for row_id, digest_text, first in found}


def backdate(server: MariaDB, database: str, days: float) -> None:
    """Every seen record as first seen `days` ago (as runs on that day would have written it)."""
    query(server, database, "UPDATE wa_sessions_seen SET first_seen = %s", (int(time.time() - days * DAY),))


def deleted_names(run: Run, session: str = SESSION) -> set[str]:
    return {item["file"] for item in tenant_doc(run.doc, session)["deleted"]}


SQL_PRELUDE = """
import pymysql as _pymysql
def _sql(statement, arguments=()):
    connection = _pymysql.connect(host="127.0.0.1", port={port}, user={user!r}, password={password!r},
                                  database={database!r}, autocommit=True)
    with connection.cursor() as cursor:
        cursor.execute(statement, arguments)
    connection.close()
"""
REWRITE = (
    "_sql('UPDATE auth SET value = %s WHERE session = %s AND id = %s', ({value!r}, {session!r}, {row_id!r}))"
)


def with_sql(server: MariaDB, database: str, hook: str, **values: Any) -> str:
    """A prelude for the CLI: `_sql(statement, arguments)` runs a statement on `database` as the
    tests' user, then `hook` (formatted with `values`; `{rewrite}` in it: REWRITE) hooks a seam."""
    connect = SQL_PRELUDE.format(
        port=server.port, user=server.user, password=server.password, database=database
    )
    return connect + hook.format(rewrite=REWRITE.format(**values) if "row_id" in values else "", **values)
