"""The MySQL store (SPEC §10) against a real MariaDB, with auth state written as mysql-baileys'
writeData writes it: categories, age by change tracking, compare-and-delete, GET_LOCK, history.
Bad input and failures: tests/integration/test_mysql_store_failures.py."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from support.env import clean_env

from .helpers import DAY, Run, history_lines, run_cli, tenant_doc
from .mariadb_server import (
    GROUP,
    OWN_PHONE,
    PRE_KEYS,
    STANDARD_KEYS,
    MariaDB,
    create_table,
    creds_value,
    digest,
    rows,
    write_data,
    write_standard_session,
)

SESSION = "acme-01"
OTHER = "globex-02"
OWN_SENDER_KEY = f"sender-key-{GROUP}::{OWN_PHONE}::0"
AGED = {
    "session-15550000001.0",
    "session-100000000000002_1.0",
    OWN_SENDER_KEY,
    "sender-key-120363000000000001@g.us::15550000002::0",
    f"sender-key-memory-{GROUP}",  # the partner of our own sender key (SPEC §2)
}
CAPPED = {f"pre-key-{number}" for number in range(1, PRE_KEYS - 50 + 1)}  # keep_newest 50
NEVER = {"creds", "app-state-sync-key-AAAAAB/x", "app-state-sync-version-regular_high"} | {
    "lid-mapping-17770000000",
    "lid-mapping-200000000000000_reverse",
}
ALL_KEYS = set(STANDARD_KEYS) | {f"pre-key-{number}" for number in range(1, PRE_KEYS + 1)}


@pytest.fixture
def state_root(tmp_path: Path) -> Path:
    """`--root`: with a store, only where the state dir (history.jsonl) is."""
    folder = tmp_path / "root"
    folder.mkdir()
    return folder


@pytest.fixture
def fleet(mariadb: MariaDB, mysql_db: str) -> str:
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


def file_names(names: set[str]) -> set[str]:
    """Row ids as the store shows them: the file Baileys would write (`:` -> `-`, `/` -> `__`)."""
    return {name.replace("/", "__").replace(":", "-") + ".json" for name in names}


def test_scan_counts_every_category_and_shows_the_store_without_password(
    mariadb: MariaDB, fleet: str, state_root: Path
) -> None:
    run = wa(mariadb, fleet, state_root, "scan", "--json")
    assert run.returncode == 0, run.describe()
    doc = run.doc
    assert doc["root"] == f"mysql://***@127.0.0.1:{mariadb.port}/{fleet}?table=auth"
    assert mariadb.password not in run.stdout.decode()
    assert [tenant["company"] for tenant in doc["tenants"]] == sorted([SESSION, OTHER])
    tenant = tenant_doc(doc, SESSION)
    expected = dict.fromkeys(tenant["categories"], 0)
    for category in STANDARD_KEYS.values():
        expected[category] += 1
    expected["pre-key"] = PRE_KEYS
    assert tenant["categories"] == expected
    assert tenant["files"] == len(ALL_KEYS)
    assert tenant["bytes"] == sum(len(value) for value in keys_of(mariadb, fleet).values())
    assert tenant["path"] == f"{fleet}.auth/{SESSION}"
    assert tenant["problems"] == []
    assert not seen_table_exists(mariadb, fleet)  # a scan never writes


def test_dry_run_deletes_nothing_and_records_nothing(mariadb: MariaDB, fleet: str, state_root: Path) -> None:
    before = keys_of(mariadb, fleet)
    run = wa(mariadb, fleet, state_root, "cleanup", "--dry-run", "--json", "--company", SESSION)
    assert run.returncode == 0, run.describe()
    assert deleted_names(run) == file_names(CAPPED)  # never seen: nothing is old yet
    assert keys_of(mariadb, fleet) == before
    assert not seen_table_exists(mariadb, fleet)
    assert not (state_root / ".wa-sessions" / "history.jsonl").exists()


def test_a_dry_run_reads_the_seen_table_and_leaves_it_unchanged(
    mariadb: MariaDB, fleet: str, state_root: Path
) -> None:
    assert wa(mariadb, fleet, state_root, "cleanup", "--company", SESSION).returncode == 0
    backdate(mariadb, fleet, 20)
    recorded = seen(mariadb, fleet)
    run = wa(mariadb, fleet, state_root, "cleanup", "--dry-run", "--json", "--company", SESSION)
    assert deleted_names(run) == file_names(AGED)
    assert seen(mariadb, fleet) == recorded
    assert seen(mariadb, fleet, OTHER) == {}


def test_first_real_cleanup_records_first_sight_and_ages_nothing(
    mariadb: MariaDB, fleet: str, state_root: Path
) -> None:
    started = time.time()
    run = wa(mariadb, fleet, state_root, "cleanup", "--json", "--company", SESSION)
    assert run.returncode == 0, run.describe()
    assert deleted_names(run) == file_names(CAPPED)  # the pre-key cap needs no age
    remaining = keys_of(mariadb, fleet)
    assert set(remaining) == ALL_KEYS - CAPPED
    records = seen(mariadb, fleet)
    assert set(records) == set(remaining)
    for row_id, (recorded_digest, first_seen) in records.items():
        assert recorded_digest == digest(remaining[row_id])  # the server's SHA1(value)
        assert started - 1 <= first_seen <= time.time() + 1
    assert seen(mariadb, fleet, OTHER) == {}  # only the tenant it looked at
    assert query(mariadb, fleet, "SELECT IS_USED_LOCK(%s)", (f"wa-sessions:{fleet}:{SESSION}",)) == [(None,)]


def test_keys_seen_long_enough_are_deleted_as_in_a_folder(
    mariadb: MariaDB, fleet: str, state_root: Path
) -> None:
    assert wa(mariadb, fleet, state_root, "cleanup", "--company", SESSION).returncode == 0
    before = keys_of(mariadb, fleet)
    backdate(mariadb, fleet, 20)
    run = wa(mariadb, fleet, state_root, "cleanup", "--json", "--company", SESSION)
    assert run.returncode == 0, run.describe()
    assert deleted_names(run) == file_names(AGED)
    after = keys_of(mariadb, fleet)
    assert set(after) == set(before) - AGED
    for row_id in NEVER | {"identity-key-15550000001.0", "device-list-15550000001"}:
        assert after[row_id] == before[row_id]  # protected and kept keys byte-identical
    assert not set(seen(mariadb, fleet)) & AGED  # the seen rows of deleted keys are dropped
    deleted = [
        line["file"]
        for line in history_lines(state_root / ".wa-sessions")
        if line["event"] == "deleted" and line["company"] == SESSION
    ]
    assert sorted(deleted) == sorted(file_names(AGED | CAPPED))
    assert keys_of(mariadb, fleet, OTHER).keys() == ALL_KEYS  # the other session untouched


def test_only_keys_past_their_rule_age_go(mariadb: MariaDB, fleet: str, state_root: Path) -> None:
    assert wa(mariadb, fleet, state_root, "cleanup", "--company", SESSION).returncode == 0
    backdate(mariadb, fleet, 5)  # past sender-key's 3d, not session's 14d
    run = wa(mariadb, fleet, state_root, "cleanup", "--json", "--company", SESSION)
    assert run.returncode == 0, run.describe()
    assert deleted_names(run) == file_names(AGED - {"session-15550000001.0", "session-100000000000002_1.0"})


def test_a_new_value_restarts_the_age(mariadb: MariaDB, fleet: str, state_root: Path) -> None:
    assert wa(mariadb, fleet, state_root, "cleanup", "--company", SESSION).returncode == 0
    backdate(mariadb, fleet, 20)
    with contextlib.closing(mariadb.connect(fleet)) as connection:
        write_data(connection, SESSION, "session-15550000001.0", {"used": "again"})
    run = wa(mariadb, fleet, state_root, "cleanup", "--dry-run", "--json", "--company", SESSION)
    assert deleted_names(run) == file_names(AGED - {"session-15550000001.0"})


CHANGE_AFTER_PLAN = """
import pymysql as _pymysql
import wa_sessions.actions.cleanup as _cleanup
_real_plan = _cleanup.plan_tenant
def _hooked_plan(*args, **kwargs):
    plan = _real_plan(*args, **kwargs)
    _connection = _pymysql.connect(host="127.0.0.1", port={port}, user={user!r}, password={password!r},
                                   database={database!r}, autocommit=True)
    with _connection.cursor() as _cursor:
        _cursor.execute("UPDATE auth SET value = %s WHERE session = %s AND id = %s",
                        ({value!r}, {session!r}, "session-15550000001.0"))
    _connection.close()
    return plan
_cleanup.plan_tenant = _hooked_plan
"""


def test_a_value_written_between_plan_and_delete_is_kept(
    mariadb: MariaDB, fleet: str, state_root: Path
) -> None:
    assert wa(mariadb, fleet, state_root, "cleanup", "--company", SESSION).returncode == 0
    backdate(mariadb, fleet, 20)
    fresh = '{"written":"by a live Baileys"}'
    prelude = CHANGE_AFTER_PLAN.format(
        port=mariadb.port,
        user=mariadb.user,
        password=mariadb.password,
        database=fleet,
        value=fresh,
        session=SESSION,
    )
    run = wa(mariadb, fleet, state_root, "cleanup", "--json", "--company", SESSION, prelude=prelude)
    assert run.returncode == 0, run.describe()
    assert deleted_names(run) == file_names(AGED - {"session-15550000001.0"})
    assert keys_of(mariadb, fleet)["session-15550000001.0"] == fresh.encode()
    assert any("modified since the plan" in note for note in tenant_doc(run.doc, SESSION)["notes"])


def test_a_lock_held_by_another_host_excludes_the_run(mariadb: MariaDB, fleet: str, state_root: Path) -> None:
    lock = f"wa-sessions:{fleet}:{SESSION}"
    with contextlib.closing(mariadb.connect(fleet)) as other_host, other_host.cursor() as cursor:
        cursor.execute("SELECT GET_LOCK(%s, 0)", (lock,))
        assert cursor.fetchone() == (1,)
        named = wa(mariadb, fleet, state_root, "cleanup", "--json", "--company", SESSION)
        assert named.returncode == 3, named.describe()
        assert tenant_doc(named.doc, SESSION)["action"] == "skipped"
        fleet_run = wa(mariadb, fleet, state_root, "cleanup", "--json")
        assert fleet_run.returncode == 0, fleet_run.describe()  # unnamed, a busy tenant is skipped (SPEC §5)
        assert tenant_doc(fleet_run.doc, SESSION)["action"] == "skipped"
        assert tenant_doc(fleet_run.doc, OTHER)["deleted"]
        cursor.execute("SELECT IS_USED_LOCK(%s) = CONNECTION_ID()", (lock,))
        assert cursor.fetchone() == (1,)  # never released by a run that does not hold it
    assert keys_of(mariadb, fleet).keys() == ALL_KEYS
    assert seen(mariadb, fleet) == {}


HOLD_LOCK = """
import time
from wa_sessions.config import load_settings
from wa_sessions.stores import mysql as store_module
settings = load_settings(None, {{"store": {url!r}}})
with store_module.open_mysql_store(settings) as store:
    [tenant] = store.tenants([{session!r}])
    with store.open(tenant) as keys, keys.lock(0):
        print("locked", flush=True)
        time.sleep(600)
"""


def test_the_lock_dies_with_a_killed_holder(mariadb: MariaDB, fleet: str, state_root: Path) -> None:
    code = HOLD_LOCK.format(url=mariadb.url(fleet), session=SESSION)
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=clean_env())
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"locked\n"
        busy = wa(mariadb, fleet, state_root, "cleanup", "--company", SESSION)
        assert busy.returncode == 3, busy.describe()
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        lock = f"wa-sessions:{fleet}:{SESSION}"
        deadline = time.monotonic() + 10
        while query(mariadb, fleet, "SELECT IS_USED_LOCK(%s)", (lock,)) != [(None,)]:
            assert time.monotonic() < deadline, "the lock of a killed holder was not freed"
            time.sleep(0.1)
        after = wa(mariadb, fleet, state_root, "cleanup", "--company", SESSION)
        assert after.returncode == 0, after.describe()
    finally:
        holder.kill()
        holder.wait(timeout=10)


def test_the_pre_key_cap_follows_the_creds_row(mariadb: MariaDB, fleet: str, state_root: Path) -> None:
    with contextlib.closing(mariadb.connect(fleet)) as connection:
        write_data(connection, SESSION, "creds", creds_value(next_pre_key_id=6))
    # the cap of 50 would delete ids 1-10; creds say ids from 5 on may still be in use
    run = wa(mariadb, fleet, state_root, "cleanup", "--dry-run", "--json", "--company", SESSION)
    assert run.returncode == 0, run.describe()
    assert deleted_names(run) == file_names({f"pre-key-{number}" for number in range(1, 5)})


def test_creds_that_do_not_parse_stop_the_pre_key_cap(mariadb: MariaDB, fleet: str, state_root: Path) -> None:
    with contextlib.closing(mariadb.connect(fleet)) as connection:
        write_data(connection, SESSION, "creds", "not json")
    run = wa(mariadb, fleet, state_root, "cleanup", "--dry-run", "--json", "--company", SESSION)
    assert run.returncode == 0, run.describe()
    assert deleted_names(run) == set()
    assert "creds.json is unparseable" in tenant_doc(run.doc, SESSION)["problems"]


def test_store_from_the_environment(mariadb: MariaDB, fleet: str, state_root: Path) -> None:
    env = {"WA_SESSIONS_STORE": mariadb.url(fleet), "WA_SESSIONS_ROOT": str(state_root)}
    proc = subprocess.run(
        [sys.executable, "-m", "wa_sessions", "report", "--json"],
        capture_output=True,
        env=clean_env(env),
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert mariadb.password not in proc.stdout.decode()
    assert not seen_table_exists(mariadb, fleet)
