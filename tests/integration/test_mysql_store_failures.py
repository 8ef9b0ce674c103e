"""The MySQL store (SPEC §10) on bad input and failures, against a real MariaDB: bad URLs, an
unreachable server, a wrong password, a missing database or table, values that are not JSON,
odd and binary row ids, a session deleted mid-run, the server killed mid-cleanup. Every error is
one line with a SPEC §7 code, never the password, never a traceback."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from .auth_state import AGED, ALL_KEYS, CAPPED, PRE_KEYS, file_names
from .helpers import Run, run_cli, tenant_doc
from .mariadb_server import (
    MariaDB,
    create_table,
    free_port,
    restart,
    rows,
    start_mariadb,
    write_data,
    write_standard_session,
)
from .mysql_fleet import (
    OTHER,
    SESSION,
    backdate,
    deleted_names,
    keys_of,
    query,
    wa,
    with_sql,
)

SECRET = "s3cr3t-pw"


def one_line_without_secret(run: Run, *secrets: str) -> str:
    stderr = run.stderr.decode()
    assert stderr.count("\n") == 1, run.describe()
    assert "Traceback" not in stderr
    for secret in (SECRET, *secrets):
        assert secret not in stderr and secret not in run.stdout.decode()
    return stderr


@pytest.mark.parametrize(
    "url",
    [
        f"mysql://wa:{SECRET}@127.0.0.1:99999/baileys",
        f"mysql://wa:{SECRET}@127.0.0.1:port/baileys",
        f"mysql://wa:{SECRET}@127.0.0.1:3306",
        f"mysql://wa:{SECRET}@127.0.0.1:3306/baileys?table=auth;drop",
        f"mysql://:{SECRET}@127.0.0.1:3306/baileys",
        f"mysqlx://wa:{SECRET}@127.0.0.1:3306/baileys",
    ],
)
def test_a_bad_mysql_url_is_one_line_exit_2_without_the_password(url: str, state_root: Path) -> None:
    run = run_cli("scan", "--store", url, "--root", str(state_root))
    assert run.returncode == 2, run.describe()
    assert "store" in one_line_without_secret(run)


def test_an_unreachable_server_is_one_line_exit_1_naming_host_and_port(state_root: Path) -> None:
    port = free_port()  # nothing listens there
    run = run_cli(
        "cleanup", "--store", f"mysql://wa:{SECRET}@127.0.0.1:{port}/baileys", "--root", str(state_root)
    )
    assert run.returncode == 1, run.describe()
    assert f"127.0.0.1:{port}" in one_line_without_secret(run)


def test_a_wrong_password_is_one_line_exit_1(mariadb: MariaDB, mysql_fleet: str, state_root: Path) -> None:
    run = run_cli("scan", "--store", mariadb.url(mysql_fleet, password=SECRET), "--root", str(state_root))
    assert run.returncode == 1, run.describe()
    stderr = one_line_without_secret(run, mariadb.password)
    assert f"127.0.0.1:{mariadb.port}" in stderr and "authentication failed" in stderr


def test_a_missing_database_is_exit_2(mariadb: MariaDB, state_root: Path) -> None:
    run = run_cli("scan", "--store", mariadb.url("no_such_db"), "--root", str(state_root))
    assert run.returncode == 2, run.describe()
    assert "no database 'no_such_db'" in one_line_without_secret(run, mariadb.password)


def test_a_missing_table_is_exit_2(mariadb: MariaDB, mysql_db: str, state_root: Path) -> None:
    run = run_cli("cleanup", "--store", mariadb.url(mysql_db, table="sessions"), "--root", str(state_root))
    assert run.returncode == 2, run.describe()
    assert "no table 'sessions'" in one_line_without_secret(run, mariadb.password)


def test_an_unknown_session_is_exit_2(mariadb: MariaDB, mysql_fleet: str, state_root: Path) -> None:
    run = wa(mariadb, mysql_fleet, state_root, "cleanup", "--company", "no-such-session")
    assert run.returncode == 2, run.describe()
    assert "no-such-session" in one_line_without_secret(run, mariadb.password)


def test_without_pymysql_the_error_names_the_extra(
    mariadb: MariaDB, mysql_fleet: str, state_root: Path
) -> None:
    run = wa(mariadb, mysql_fleet, state_root, "scan", prelude="import sys\nsys.modules['pymysql'] = None\n")
    assert run.returncode == 1, run.describe()
    assert "pip install 'wa-sessions[mysql]'" in one_line_without_secret(run, mariadb.password)


def test_purge_stale_dirs_is_for_folders_only(mariadb: MariaDB, mysql_fleet: str, state_root: Path) -> None:
    run = wa(
        mariadb,
        mysql_fleet,
        state_root,
        "emergency-cleanup",
        "--purge-stale-dirs",
        "--older-than",
        "10m",
        "--dry-run",
    )
    assert run.returncode == 2, run.describe()
    assert "--purge-stale-dirs" in one_line_without_secret(run, mariadb.password)


def test_values_that_are_not_json_are_keys_like_any_other(
    mariadb: MariaDB, mysql_fleet: str, state_root: Path
) -> None:
    with contextlib.closing(mariadb.connect(mysql_fleet)) as connection, connection.cursor() as cursor:
        write_data(connection, SESSION, "session-15550000001.0", "\u00e9t\u00e9 not json {")
        cursor.execute(
            "UPDATE auth SET value = NULL WHERE session = %s AND id = 'device-list-15550000001'", (SESSION,)
        )
    assert wa(mariadb, mysql_fleet, state_root, "cleanup", "--company", SESSION).returncode == 0
    backdate(mariadb, mysql_fleet, 20)
    run = wa(mariadb, mysql_fleet, state_root, "cleanup", "--json", "--company", SESSION)
    assert run.returncode == 0, run.describe()
    assert deleted_names(run) == file_names(AGED)  # the non-JSON session key is aged out like the rest
    assert "device-list-15550000001" in keys_of(mariadb, mysql_fleet)


ODD_IDS = {
    b"session-15550000009\xff\xfe.0": "session",  # not UTF-8
    b"sender-key-120363000000000009@g.us::15550000009::0": "sender-key",
    b"app-state-sync-key-AAAAAC/y+z=": "app-state-sync-key",
    b"session-../../etc/passwd": "session",
}


def test_binary_and_odd_row_ids_are_named_classified_and_deleted_exactly(
    mariadb: MariaDB,
    mysql_db: str,
    state_root: Path,
) -> None:
    with contextlib.closing(mariadb.connect(mysql_db)) as connection, connection.cursor() as cursor:
        # a table whose ids are bytes (VARBINARY): any byte can be in an id
        cursor.execute(
            "CREATE TABLE auth (session varchar(50) NOT NULL, id varbinary(80) NOT NULL, value LONGTEXT,"
            " UNIQUE KEY idxunique (session, id)) ENGINE=MyISAM"
        )
        write_standard_session(connection, SESSION)
        for row_id in ODD_IDS:
            write_data(connection, SESSION, row_id, {"id": row_id.hex()})
    scan = wa(mariadb, mysql_db, state_root, "scan", "--json")
    assert scan.returncode == 0, scan.describe()
    categories = tenant_doc(scan.doc, SESSION)["categories"]
    assert categories["session"] == 2 + 2 and categories["sender-key"] == 2 + 1
    assert categories["app-state-sync-key"] == 1 + 1
    assert wa(mariadb, mysql_db, state_root, "cleanup", "--company", SESSION).returncode == 0
    backdate(mariadb, mysql_db, 20)
    run = wa(mariadb, mysql_db, state_root, "cleanup", "--json", "--company", SESSION)
    assert run.returncode == 0, run.describe()
    with contextlib.closing(mariadb.connect(mysql_db)) as connection:
        left = set(rows(connection, SESSION))
    assert b"app-state-sync-key-AAAAAC/y+z=" in left  # protected, kept
    assert not left & {row_id for row_id, category in ODD_IDS.items() if category != "app-state-sync-key"}
    assert len(left) == len(ALL_KEYS) - len(AGED) - len(CAPPED) + 1


GONE_AFTER_LISTING = """
from wa_sessions.stores import mysql as _store
_real_tenants = _store.MySQLStore.tenants
def _tenants(self, companies):
    listed = _real_tenants(self, companies)
    _sql("DELETE FROM auth WHERE session = %s", ({session!r},))
    return listed
_store.MySQLStore.tenants = _tenants
"""


def test_a_session_deleted_mid_run_is_reported_and_the_others_cleaned(
    mariadb: MariaDB,
    mysql_fleet: str,
    state_root: Path,
) -> None:
    prelude = with_sql(mariadb, mysql_fleet, GONE_AFTER_LISTING, session=OTHER)
    run = wa(mariadb, mysql_fleet, state_root, "cleanup", "--json", prelude=prelude)
    assert run.returncode in (0, 1), run.describe()
    assert deleted_names(run) == file_names(CAPPED)
    assert tenant_doc(run.doc, OTHER)["deleted"] == []
    assert "Traceback" not in run.stderr.decode()


KILL_SERVER_MID_DELETE = """
import os, signal, time
from wa_sessions.stores import mysql as _store
_real_delete = _store.MySQLKeys.delete_unless_changed
_calls = []
def _delete(self, deletion):
    _calls.append(deletion)
    if len(_calls) == 4:
        os.kill({pid}, signal.SIGKILL)
        time.sleep(0.5)
    return _real_delete(self, deletion)
_store.MySQLKeys.delete_unless_changed = _delete
"""


def test_the_server_killed_mid_cleanup_leaves_nothing_unplanned_deleted_and_the_next_run_finishes(
    state_root: Path,
) -> None:
    server = start_mariadb()
    try:
        database = server.create_database()
        with contextlib.closing(server.connect(database)) as connection:
            create_table(connection)
            write_standard_session(connection, SESSION)
        assert wa(server, database, state_root, "cleanup", "--company", SESSION).returncode == 0
        backdate(server, database, 20)
        prelude = KILL_SERVER_MID_DELETE.format(pid=server.process.pid)
        killed = wa(server, database, state_root, "cleanup", "--company", SESSION, prelude=prelude)
        assert killed.returncode == 1, killed.describe()
        assert "Traceback" not in killed.stderr.decode() and server.password not in killed.stderr.decode()
        assert not server.alive()
        restart(server)
        left = set(keys_of(server, database))
        assert left >= ALL_KEYS - CAPPED - AGED  # nothing deleted that was not planned
        assert len(left) == len(ALL_KEYS) - len(CAPPED) - 3  # three deleted before the kill
        again = wa(server, database, state_root, "cleanup", "--json", "--company", SESSION)
        assert again.returncode == 0, again.describe()
        assert set(keys_of(server, database)) == ALL_KEYS - CAPPED - AGED
        assert query(server, database, "SELECT COUNT(*) FROM auth WHERE id LIKE 'pre-key-%%'") == [
            (PRE_KEYS - 10,)
        ]
    finally:
        server.stop()
