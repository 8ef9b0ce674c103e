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

import pymysql
import pytest
from support.env import clean_env

from wa_sessions.layout import Creds
from wa_sessions.rules import Deletion, plan_tenant

from .auth_state import (
    AGED,
    ALL_KEYS,
    CAPPED,
    NEVER,
    PRE_KEYS,
    STANDARD_KEYS,
    creds_value,
    digest,
    file_names,
)
from .helpers import history_lines, tenant_doc
from .mariadb_server import (
    MariaDB,
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
    seen,
    seen_table_exists,
    wa,
    with_sql,
)


def test_scan_counts_every_category_and_shows_the_store_without_password(
    mariadb: MariaDB, mysql_fleet: str, state_root: Path
) -> None:
    run = wa(mariadb, mysql_fleet, state_root, "scan", "--json")
    assert run.returncode == 0, run.describe()
    doc = run.doc
    assert doc["root"] == f"mysql://***@127.0.0.1:{mariadb.port}/{mysql_fleet}?table=auth"
    assert mariadb.password not in run.stdout.decode()
    assert [tenant["company"] for tenant in doc["tenants"]] == sorted([SESSION, OTHER])
    tenant = tenant_doc(doc, SESSION)
    expected = dict.fromkeys(tenant["categories"], 0)
    for category in STANDARD_KEYS.values():
        expected[category] += 1
    expected["pre-key"] = PRE_KEYS
    assert tenant["categories"] == expected
    assert tenant["files"] == len(ALL_KEYS)
    assert tenant["bytes"] == sum(len(value) for value in keys_of(mariadb, mysql_fleet).values())
    assert tenant["path"] == f"{mysql_fleet}.auth/{SESSION}"
    assert tenant["problems"] == []
    assert not seen_table_exists(mariadb, mysql_fleet)  # a scan never writes


def test_dry_run_deletes_nothing_and_records_nothing(
    mariadb: MariaDB, mysql_fleet: str, state_root: Path
) -> None:
    before = keys_of(mariadb, mysql_fleet)
    run = wa(mariadb, mysql_fleet, state_root, "cleanup", "--dry-run", "--json", "--company", SESSION)
    assert run.returncode == 0, run.describe()
    assert deleted_names(run) == file_names(CAPPED)  # never seen: nothing is old yet
    assert keys_of(mariadb, mysql_fleet) == before
    assert not seen_table_exists(mariadb, mysql_fleet)
    assert not (state_root / ".wa-sessions" / "history.jsonl").exists()


def test_a_dry_run_reads_the_seen_table_and_leaves_it_unchanged(
    mariadb: MariaDB, mysql_fleet: str, state_root: Path
) -> None:
    assert wa(mariadb, mysql_fleet, state_root, "cleanup", "--company", SESSION).returncode == 0
    backdate(mariadb, mysql_fleet, 20)
    recorded = seen(mariadb, mysql_fleet)
    run = wa(mariadb, mysql_fleet, state_root, "cleanup", "--dry-run", "--json", "--company", SESSION)
    assert deleted_names(run) == file_names(AGED)
    assert seen(mariadb, mysql_fleet) == recorded
    assert seen(mariadb, mysql_fleet, OTHER) == {}


def test_first_real_cleanup_records_first_sight_and_ages_nothing(
    mariadb: MariaDB, mysql_fleet: str, state_root: Path
) -> None:
    started = time.time()
    run = wa(mariadb, mysql_fleet, state_root, "cleanup", "--json", "--company", SESSION)
    assert run.returncode == 0, run.describe()
    assert deleted_names(run) == file_names(CAPPED)  # the pre-key cap needs no age
    remaining = keys_of(mariadb, mysql_fleet)
    assert set(remaining) == ALL_KEYS - CAPPED
    records = seen(mariadb, mysql_fleet)
    assert set(records) == set(remaining)
    for row_id, (recorded_digest, first_seen) in records.items():
        assert recorded_digest == digest(remaining[row_id])  # the server's SHA1(value)
        assert started - 1 <= first_seen <= time.time() + 1
    assert seen(mariadb, mysql_fleet, OTHER) == {}  # only the tenant it looked at
    assert query(
        mariadb, mysql_fleet, "SELECT IS_USED_LOCK(%s)", (f"wa-sessions:{mysql_fleet}:{SESSION}",)
    ) == [(None,)]


def test_a_real_cleanup_forgets_the_seen_rows_of_keys_baileys_removed(
    mariadb: MariaDB, mysql_fleet: str, state_root: Path
) -> None:
    assert wa(mariadb, mysql_fleet, state_root, "cleanup", "--company", SESSION).returncode == 0
    query(mariadb, mysql_fleet, "DELETE FROM auth WHERE session = %s AND id LIKE 'session-%%'", (SESSION,))
    assert wa(mariadb, mysql_fleet, state_root, "cleanup", "--dry-run", "--company", SESSION).returncode == 0
    assert "session-15550000001.0" in seen(mariadb, mysql_fleet)  # a dry run writes nothing
    assert wa(mariadb, mysql_fleet, state_root, "cleanup", "--company", SESSION).returncode == 0
    assert set(seen(mariadb, mysql_fleet)) == ALL_KEYS - CAPPED - {
        "session-15550000001.0",
        "session-100000000000002_1.0",
    }


def test_keys_seen_long_enough_are_deleted_as_in_a_folder(
    mariadb: MariaDB, mysql_fleet: str, state_root: Path
) -> None:
    assert wa(mariadb, mysql_fleet, state_root, "cleanup", "--company", SESSION).returncode == 0
    before = keys_of(mariadb, mysql_fleet)
    backdate(mariadb, mysql_fleet, 20)
    run = wa(mariadb, mysql_fleet, state_root, "cleanup", "--json", "--company", SESSION)
    assert run.returncode == 0, run.describe()
    assert deleted_names(run) == file_names(AGED)
    after = keys_of(mariadb, mysql_fleet)
    assert set(after) == set(before) - AGED
    for row_id in NEVER | {"identity-key-15550000001.0", "device-list-15550000001"}:
        assert after[row_id] == before[row_id]  # protected and kept keys byte-identical
    assert not set(seen(mariadb, mysql_fleet)) & AGED  # the seen rows of deleted keys are dropped
    deleted = [
        line["file"]
        for line in history_lines(state_root / ".wa-sessions")
        if line["event"] == "deleted" and line["company"] == SESSION
    ]
    assert sorted(deleted) == sorted(file_names(AGED | CAPPED))
    assert keys_of(mariadb, mysql_fleet, OTHER).keys() == ALL_KEYS  # the other session untouched


def test_only_keys_past_their_rule_age_go(mariadb: MariaDB, mysql_fleet: str, state_root: Path) -> None:
    assert wa(mariadb, mysql_fleet, state_root, "cleanup", "--company", SESSION).returncode == 0
    backdate(mariadb, mysql_fleet, 5)  # past sender-key's 3d, not session's 14d
    run = wa(mariadb, mysql_fleet, state_root, "cleanup", "--json", "--company", SESSION)
    assert run.returncode == 0, run.describe()
    assert deleted_names(run) == file_names(AGED - {"session-15550000001.0", "session-100000000000002_1.0"})


def test_a_new_value_restarts_the_age(mariadb: MariaDB, mysql_fleet: str, state_root: Path) -> None:
    assert wa(mariadb, mysql_fleet, state_root, "cleanup", "--company", SESSION).returncode == 0
    backdate(mariadb, mysql_fleet, 20)
    with contextlib.closing(mariadb.connect(mysql_fleet)) as connection:
        write_data(connection, SESSION, "session-15550000001.0", {"used": "again"})
    run = wa(mariadb, mysql_fleet, state_root, "cleanup", "--dry-run", "--json", "--company", SESSION)
    assert deleted_names(run) == file_names(AGED - {"session-15550000001.0"})


CHANGE_AFTER_PLAN = """
import wa_sessions.actions.cleanup as _cleanup
_real_plan = _cleanup.plan_tenant
def _hooked_plan(*args, **kwargs):
    plan = _real_plan(*args, **kwargs)
    {rewrite}
    return plan
_cleanup.plan_tenant = _hooked_plan
"""


CHANGE_AFTER_CHECK = """
from wa_sessions.stores import mysql as _store
_real_changed = _store.MySQLKeys.changed
def _changed(self, deletion):
    why = _real_changed(self, deletion)  # the value checked: still the one planned
    if deletion.entry.name == "session-15550000001.0.json":
        {rewrite}
    return why
_store.MySQLKeys.changed = _changed
"""


@pytest.mark.parametrize(
    ("hook", "note", "failed"),
    [
        # between the plan and the check before the history batch: found changed, never recorded
        (CHANGE_AFTER_PLAN, "modified since the plan; kept", []),
        # between that check and the DELETE: only the DELETE's SHA1(value) comparison keeps it
        (CHANGE_AFTER_CHECK, "modified since the plan while being deleted", ["session-15550000001.0.json"]),
    ],
    ids=["after-plan", "after-check"],
)
def test_a_value_written_after_the_plan_is_kept(
    mariadb: MariaDB, mysql_fleet: str, state_root: Path, hook: str, note: str, failed: list[str]
) -> None:
    assert wa(mariadb, mysql_fleet, state_root, "cleanup", "--company", SESSION).returncode == 0
    backdate(mariadb, mysql_fleet, 20)
    fresh = '{"written":"by a live Baileys"}'
    prelude = with_sql(
        mariadb, mysql_fleet, hook, value=fresh, session=SESSION, row_id="session-15550000001.0"
    )
    run = wa(mariadb, mysql_fleet, state_root, "cleanup", "--json", "--company", SESSION, prelude=prelude)
    assert run.returncode == 0, run.describe()
    assert deleted_names(run) == file_names(AGED - {"session-15550000001.0"})
    assert keys_of(mariadb, mysql_fleet)["session-15550000001.0"] == fresh.encode()
    notes = tenant_doc(run.doc, SESSION)["notes"]
    assert any(note in line for line in notes), notes
    history = history_lines(state_root / ".wa-sessions")
    assert [line["file"] for line in history if line["event"] != "deleted"] == failed


LOSE_LOCK = """
from wa_sessions.stores import mysql as _store
_real_changed = _store.MySQLKeys.changed
_killed = []
def _changed(self, deletion):
    if not _killed:  # the lock connection dies (killed by an operator, a network cut)
        _killed.append(self.lock_id)
        _sql("KILL CONNECTION %s", (self.lock_id,))
    return _real_changed(self, deletion)
_store.MySQLKeys.changed = _changed
"""


def test_nothing_is_deleted_once_the_lock_connection_is_gone(
    mariadb: MariaDB, mysql_fleet: str, state_root: Path
) -> None:
    assert wa(mariadb, mysql_fleet, state_root, "cleanup", "--company", SESSION).returncode == 0
    backdate(mariadb, mysql_fleet, 20)
    before = keys_of(mariadb, mysql_fleet)
    prelude = with_sql(mariadb, mysql_fleet, LOSE_LOCK)
    run = wa(mariadb, mysql_fleet, state_root, "cleanup", "--json", "--company", SESSION, prelude=prelude)
    assert run.returncode == 1, run.describe()
    assert keys_of(mariadb, mysql_fleet) == before
    errors = tenant_doc(run.doc, SESSION)["errors"]
    assert errors and all("was lost" in error["error"] for error in errors), errors


def test_a_lock_held_by_another_host_excludes_the_run(
    mariadb: MariaDB, mysql_fleet: str, state_root: Path
) -> None:
    lock = f"wa-sessions:{mysql_fleet}:{SESSION}"
    with contextlib.closing(mariadb.connect(mysql_fleet)) as other_host, other_host.cursor() as cursor:
        cursor.execute("SELECT GET_LOCK(%s, 0)", (lock,))
        assert cursor.fetchone() == (1,)
        named = wa(mariadb, mysql_fleet, state_root, "cleanup", "--json", "--company", SESSION)
        assert named.returncode == 3, named.describe()
        assert tenant_doc(named.doc, SESSION)["action"] == "skipped"
        fleet_run = wa(mariadb, mysql_fleet, state_root, "cleanup", "--json")
        assert fleet_run.returncode == 0, fleet_run.describe()  # unnamed, a busy tenant is skipped (SPEC §5)
        assert tenant_doc(fleet_run.doc, SESSION)["action"] == "skipped"
        assert tenant_doc(fleet_run.doc, OTHER)["deleted"]
        cursor.execute("SELECT IS_USED_LOCK(%s) = CONNECTION_ID()", (lock,))
        assert cursor.fetchone() == (1,)  # never released by a run that does not hold it
    assert keys_of(mariadb, mysql_fleet).keys() == ALL_KEYS
    assert seen(mariadb, mysql_fleet) == {}


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


def test_the_lock_dies_with_a_killed_holder(mariadb: MariaDB, mysql_fleet: str, state_root: Path) -> None:
    code = HOLD_LOCK.format(url=mariadb.url(mysql_fleet), session=SESSION)
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=clean_env())
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"locked\n"
        busy = wa(mariadb, mysql_fleet, state_root, "cleanup", "--company", SESSION)
        assert busy.returncode == 3, busy.describe()
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        lock = f"wa-sessions:{mysql_fleet}:{SESSION}"
        deadline = time.monotonic() + 10
        while query(mariadb, mysql_fleet, "SELECT IS_USED_LOCK(%s)", (lock,)) != [(None,)]:
            assert time.monotonic() < deadline, "the lock of a killed holder was not freed"
            time.sleep(0.1)
        after = wa(mariadb, mysql_fleet, state_root, "cleanup", "--company", SESSION)
        assert after.returncode == 0, after.describe()
    finally:
        holder.kill()
        holder.wait(timeout=10)


def test_the_pre_key_cap_follows_the_creds_row(mariadb: MariaDB, mysql_fleet: str, state_root: Path) -> None:
    with contextlib.closing(mariadb.connect(mysql_fleet)) as connection:
        write_data(connection, SESSION, "creds", creds_value(next_pre_key_id=6))
    # the cap of 50 would delete ids 1-10; creds say ids from 5 on may still be in use
    run = wa(mariadb, mysql_fleet, state_root, "cleanup", "--dry-run", "--json", "--company", SESSION)
    assert run.returncode == 0, run.describe()
    assert deleted_names(run) == file_names({f"pre-key-{number}" for number in range(1, 5)})


def test_creds_that_do_not_parse_stop_the_pre_key_cap(
    mariadb: MariaDB, mysql_fleet: str, state_root: Path
) -> None:
    with contextlib.closing(mariadb.connect(mysql_fleet)) as connection:
        write_data(connection, SESSION, "creds", "not json")
    run = wa(mariadb, mysql_fleet, state_root, "cleanup", "--dry-run", "--json", "--company", SESSION)
    assert run.returncode == 0, run.describe()
    assert deleted_names(run) == set()
    assert "creds.json is unparseable" in tenant_doc(run.doc, SESSION)["problems"]


def test_store_from_the_environment(mariadb: MariaDB, mysql_fleet: str, state_root: Path) -> None:
    env = {"WA_SESSIONS_STORE": mariadb.url(mysql_fleet), "WA_SESSIONS_ROOT": str(state_root)}
    proc = subprocess.run(
        [sys.executable, "-m", "wa_sessions", "report", "--json"],
        capture_output=True,
        env=clean_env(env),
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert mariadb.password not in proc.stdout.decode()
    assert not seen_table_exists(mariadb, mysql_fleet)


def test_a_batch_is_deleted_in_one_statement_telling_deleted_changed_and_gone_apart(
    mariadb: MariaDB, mysql_fleet: str, state_root: Path
) -> None:
    from wa_sessions.config import load_settings
    from wa_sessions.stores.mysql import open_mysql_store

    settings = load_settings(None, {"store": mariadb.url(mysql_fleet), "root": str(state_root)})
    with open_mysql_store(settings) as store:
        assert (store.table_bytes() or 0) > sum(
            len(value) for value in keys_of(mariadb, mysql_fleet).values()
        )
        [tenant] = store.tenants([SESSION])
        with store.open(tenant) as keys, keys.lock(0):
            plan = plan_tenant(keys.scan(time.time(), None).entries, settings.rules, Creds("ok"), time.time())
            batch = [deletion for deletion in plan.deletions][:5]
            assert len(batch) == 5
            with (
                contextlib.closing(mariadb.connect(mysql_fleet)) as connection,
                connection.cursor() as cursor,
            ):
                cursor.execute(
                    "UPDATE auth SET value = '{}' WHERE session = %s AND id = %s", (SESSION, key_id(batch[0]))
                )
                cursor.execute("DELETE FROM auth WHERE session = %s AND id = %s", (SESSION, key_id(batch[1])))
            statements: list[str] = []
            real_execute = pymysql.cursors.Cursor.execute

            def counted(cursor: Any, statement: str, arguments: Any = None) -> int:
                statements.append(statement)
                return real_execute(cursor, statement, arguments)

            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(pymysql.cursors.Cursor, "execute", counted)
                outcomes = keys.delete_many_unless_changed(batch)
    assert outcomes[0] == "modified since the plan"
    assert isinstance(outcomes[1], FileNotFoundError)
    assert outcomes[2:] == [None, None, None]
    assert sum(statement.startswith("DELETE FROM `auth`") for statement in statements) == 1
    left = keys_of(mariadb, mysql_fleet)
    assert key_id(batch[0]) in left and not {key_id(deletion) for deletion in batch[1:]} & set(left)


def key_id(deletion: Deletion) -> str:
    """The row id of a pre-key deletion (`pre-key-N.json` -> `pre-key-N`)."""
    return deletion.entry.name.removesuffix(".json")


# mysql-baileys 1.5.1's table (on npm before 1.5.4): a `json` column, which MariaDB makes LONGTEXT
# with CHECK (json_valid(value)) and returns as text.
CREATE_TABLE_1_5_1 = (
    "CREATE TABLE IF NOT EXISTS `auth` (`session` varchar(50) NOT NULL, `id` varchar(80) NOT NULL,"
    " `value` json DEFAULT NULL, UNIQUE KEY `idxunique` (`session`,`id`), KEY `idxsession` (`session`),"
    " KEY `idxid` (`id`)) ENGINE=MyISAM;"
)


def test_the_json_column_of_mysql_baileys_1_5_1_is_read_alike(
    mariadb: MariaDB, mysql_db: str, state_root: Path
) -> None:
    with contextlib.closing(mariadb.connect(mysql_db)) as connection, connection.cursor() as cursor:
        cursor.execute(CREATE_TABLE_1_5_1)
        write_standard_session(connection, SESSION)
    assert wa(mariadb, mysql_db, state_root, "cleanup", "--company", SESSION).returncode == 0
    backdate(mariadb, mysql_db, 20)
    run = wa(mariadb, mysql_db, state_root, "cleanup", "--json", "--company", SESSION)
    assert run.returncode == 0, run.describe()
    assert deleted_names(run) == file_names(AGED)
    assert set(keys_of(mariadb, mysql_db)) == ALL_KEYS - AGED - CAPPED
