"""The MySQL store on the seam the Redis store has, against a real MariaDB: checks and
compare-and-deletes go one statement per batch (not two per key), a unit stays whole inside a
batch, a run that lost its tenant lock deletes nothing, multitenant-cleanup's run lock in the
database excludes a run on another host (and dies with its holder), the table's size stands in
for free disk in scan and report, explain takes SESSION/ID and history reads without the store."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from support.env import clean_env

from .auth_state import AGED, CAPPED, GROUP, OWN_SENDER_KEY, creds_value, file_names
from .helpers import command, history_lines, run_cli, tenant_doc
from .mariadb_server import MariaDB, write_data
from .mysql_fleet import (
    OTHER,
    SESSION,
    backdate,
    deleted_names,
    keys_of,
    query,
    seen_table_exists,
    wa,
    with_sql,
)

MANY = 1250
MEMORY = f"sender-key-memory-{GROUP}"


def _statements(server: MariaDB, database: str) -> dict[str, int]:
    """The server's counts of DELETE and SELECT statements so far (every connection)."""
    found = query(
        server,
        database,
        "SHOW GLOBAL STATUS WHERE Variable_name IN ('Com_delete', 'Com_delete_multi', 'Com_select')",
    )
    return {name: int(value) for name, value in found}


def test_a_large_cleanup_takes_a_few_statements_not_two_per_key(
    mariadb: MariaDB, mysql_fleet: str, state_root: Path
) -> None:
    with contextlib.closing(mariadb.connect(mysql_fleet)) as connection:
        write_data(connection, SESSION, "creds", creds_value(next_pre_key_id=MANY + 1))
        for number in range(61, MANY + 1):
            write_data(connection, SESSION, f"pre-key-{number}", {"keyId": number})
    before = _statements(mariadb, mysql_fleet)
    run = wa(mariadb, mysql_fleet, state_root, "cleanup", "--json", "--company", SESSION)
    after = _statements(mariadb, mysql_fleet)
    assert run.returncode == 0, run.describe()
    expected = {f"pre-key-{number}" for number in range(1, MANY - 50 + 1)}  # keep_newest 50
    assert deleted_names(run) == file_names(expected)
    assert not set(keys_of(mariadb, mysql_fleet)) & expected
    assert len(history_lines(state_root / ".wa-sessions")) == len(expected)
    deletes = sum(after[name] - before[name] for name in ("Com_delete", "Com_delete_multi"))
    selects = after["Com_select"] - before["Com_select"]
    # 3 compare-and-deletes (500 a statement), at most 3 forgetting first sights of keys gone;
    # 3 checks, the listing, creds, the seen table's existence, the lock's: one key at a time it
    # was a DELETE and a SELECT per key.
    assert deletes <= 6, (before, after)
    assert selects <= 12, (before, after)


HOOK_DELETE = """
from wa_sessions.stores import mysql as _store
_real = _store.MySQLKeys.delete_many
def _hooked(self, deletions):
    {action}
    return _real(self, deletions)
_store.MySQLKeys.delete_many = _hooked
"""
REWRITE_MEMORY = (
    "_sql('UPDATE auth SET value = %s WHERE session = %s AND id = %s', ('[1]', {session!r}, {memory!r}))"
)


def test_a_unit_whose_first_key_changed_in_the_batch_stays_whole(
    mariadb: MariaDB, mysql_fleet: str, state_root: Path
) -> None:
    assert wa(mariadb, mysql_fleet, state_root, "cleanup", "--company", SESSION).returncode == 0
    backdate(mariadb, mysql_fleet, 20)
    action = REWRITE_MEMORY.format(session=SESSION, memory=MEMORY)
    prelude = with_sql(mariadb, mysql_fleet, HOOK_DELETE.format(action=action))
    run = wa(mariadb, mysql_fleet, state_root, "cleanup", "--json", "--company", SESSION, prelude=prelude)
    assert run.returncode == 0, run.describe()
    left = keys_of(mariadb, mysql_fleet)
    assert left[MEMORY] == b"[1]"
    assert OWN_SENDER_KEY in left  # its partner stayed: so does it (SPEC §2), in the same statement
    assert deleted_names(run) == file_names(AGED - {MEMORY, OWN_SENDER_KEY})
    notes = tenant_doc(run.doc, SESSION)["notes"]
    assert any(note.endswith(f"kept with {file_names({MEMORY}).pop()}") for note in notes), notes
    failed = {
        line["file"] for line in history_lines(state_root / ".wa-sessions") if line["event"] == "failed"
    }
    assert failed == file_names({MEMORY, OWN_SENDER_KEY})  # recorded, then taken back: as key by key


KILL_LOCK_CONNECTION = "_sql('KILL CONNECTION %s', (self.lock_id,))"


def test_a_run_that_lost_its_tenant_lock_between_check_and_delete_deletes_nothing(
    mariadb: MariaDB, mysql_fleet: str, state_root: Path
) -> None:
    assert wa(mariadb, mysql_fleet, state_root, "cleanup", "--company", SESSION).returncode == 0
    backdate(mariadb, mysql_fleet, 20)
    before = keys_of(mariadb, mysql_fleet)
    prelude = with_sql(mariadb, mysql_fleet, HOOK_DELETE.format(action=KILL_LOCK_CONNECTION))
    run = wa(mariadb, mysql_fleet, state_root, "cleanup", "--json", "--company", SESSION, prelude=prelude)
    assert run.returncode == 1, run.describe()
    assert keys_of(mariadb, mysql_fleet) == before
    tenant = tenant_doc(run.doc, SESSION)
    assert tenant["deleted"] == []
    assert tenant["errors"] and all("was lost" in error["error"] for error in tenant["errors"])


HOLD_RUN_LOCK = """
import time
from wa_sessions.actions import multitenant as _multitenant
def _hold(*args, **kwargs):
    print("running", flush=True)
    time.sleep(600)
_multitenant._clean_fleet = _hold
"""


def test_the_run_lock_in_the_database_excludes_a_run_on_another_host(
    mariadb: MariaDB, mysql_fleet: str, tmp_path: Path
) -> None:
    hosts = [tmp_path / "host-a", tmp_path / "host-b"]  # separate state dirs: separate run.lock files
    for host in hosts:
        host.mkdir()
    url = mariadb.url(mysql_fleet)
    lock = f"wa-sessions:{mysql_fleet}:run:multitenant-cleanup"
    argv = command(["multitenant-cleanup", "--store", url, "--root", str(hosts[0])], HOLD_RUN_LOCK)
    holder = subprocess.Popen(argv, stdout=subprocess.PIPE, env=clean_env())
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"running\n"
        assert query(mariadb, mysql_fleet, "SELECT IS_USED_LOCK(%s) IS NOT NULL", (lock,)) == [(1,)]
        busy = wa(mariadb, mysql_fleet, hosts[1], "multitenant-cleanup", "--json")
        assert busy.returncode == 3, busy.describe()
        assert busy.stderr.decode().count("\n") == 1 and "run lock" in busy.stderr.decode()
        assert mariadb.password not in busy.stderr.decode()
        assert not seen_table_exists(mariadb, mysql_fleet)  # nothing looked at
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        deadline = time.monotonic() + 10
        while query(mariadb, mysql_fleet, "SELECT IS_USED_LOCK(%s)", (lock,)) != [(None,)]:
            assert time.monotonic() < deadline, "the run lock of a killed holder was not freed"
            time.sleep(0.1)
        after = wa(mariadb, mysql_fleet, hosts[1], "multitenant-cleanup", "--json")
        assert after.returncode == 0, after.describe()
        assert json.loads(after.stdout)["tenants"]
        assert query(mariadb, mysql_fleet, "SELECT IS_USED_LOCK(%s)", (lock,)) == [(None,)]  # released
    finally:
        holder.kill()
        holder.wait(timeout=10)


def _table_size(server: MariaDB, database: str) -> int:
    [(size,)] = query(
        server,
        database,
        "SELECT data_length + index_length FROM information_schema.tables"
        " WHERE table_schema = DATABASE() AND table_name = 'auth'",
    )
    return int(size)


def test_scan_and_report_show_the_tables_size_in_every_format(
    mariadb: MariaDB, mysql_fleet: str, state_root: Path
) -> None:
    size = _table_size(mariadb, mysql_fleet)
    shown = f"mysql://127.0.0.1:{mariadb.port}/{mysql_fleet}?table=auth"  # as the store is shown
    scan = wa(mariadb, mysql_fleet, state_root, "scan", "--json")
    assert scan.returncode == 0, scan.describe()
    assert scan.doc["memory"] == {"server": shown, "used_bytes": size, "max_bytes": 0}
    assert scan.doc["disk"] is None
    report = wa(mariadb, mysql_fleet, state_root, "report", "--format", "json")
    assert report.doc["memory"]["used_bytes"] == size and report.doc["disk"] is None

    text = wa(mariadb, mysql_fleet, state_root, "scan").stdout.decode()
    assert f"table size of {shown}: " in text and "maxmemory" not in text and "disk:" not in text
    markdown = wa(mariadb, mysql_fleet, state_root, "report", "--format", "markdown").stdout.decode()
    assert "Store table size" in markdown and "Disk under root" not in markdown
    table = wa(mariadb, mysql_fleet, state_root, "report").stdout.decode()
    assert "Store table size" in table and "maxmemory" not in table

    prometheus = wa(mariadb, mysql_fleet, state_root, "report", "--format", "prometheus").stdout.decode()
    samples = {
        sample.name: sample.value
        for family in text_string_to_metric_families(prometheus)
        for sample in family.samples
    }
    assert samples["wa_sessions_store_memory_used_bytes"] == size
    assert samples["wa_sessions_store_memory_max_bytes"] == 0
    assert "MySQL data and index length" in prometheus
    assert "wa_sessions_filesystem_files_free" not in samples


def test_explain_takes_a_session_and_row_id_or_its_file_name(
    mariadb: MariaDB, mysql_fleet: str, state_root: Path
) -> None:
    run = wa(
        mariadb,
        mysql_fleet,
        state_root,
        "explain",
        "--json",
        f"{SESSION}/pre-key-1",
        f"{SESSION}/{OWN_SENDER_KEY}",
        f"{SESSION}/app-state-sync-key-AAAAAB/x",
        f"{SESSION}/session-15550000001.0.json",
    )
    assert run.returncode == 0, run.describe()
    files = run.doc["files"]
    assert [item["category"] for item in files] == ["pre-key", "sender-key", "app-state-sync-key", "session"]
    assert files[0]["cleanup"]["delete"] is True  # beyond the newest 50 by id: no age needed
    assert files[1]["guard"].startswith("our own sender key")
    assert files[3]["cleanup"]["delete"] is False  # never seen before: age 0
    assert mariadb.password not in run.stdout.decode()
    missing = wa(mariadb, mysql_fleet, state_root, "explain", f"{SESSION}/pre-key-999")
    assert missing.returncode == 2 and "pre-key-999" in missing.stderr.decode()
    not_a_key = wa(mariadb, mysql_fleet, state_root, "explain", "pre-key-1.json")
    assert not_a_key.returncode == 2 and "SESSION/ID" in not_a_key.stderr.decode()
    assert not seen_table_exists(mariadb, mysql_fleet)  # read only


def test_history_reads_the_local_history_by_session_without_the_store(
    mariadb: MariaDB, mysql_fleet: str, state_root: Path
) -> None:
    assert wa(mariadb, mysql_fleet, state_root, "cleanup", "--company", SESSION).returncode == 0
    unreachable = f"mysql://wa:secret@127.0.0.1:1/{mysql_fleet}"  # the store is down: its history is here
    run = run_cli(
        "history", "--json", "--store", unreachable, "--root", str(state_root), "--company", SESSION
    )
    assert run.returncode == 0, run.describe()
    assert {record["file"] for record in run.doc["records"]} == file_names(CAPPED)
    assert {record["company"] for record in run.doc["records"]} == {SESSION}
    assert "secret" not in run.stdout.decode()
    text = run_cli("history", "--store", unreachable, "--root", str(state_root), "--file", "pre-key-1.json")
    assert text.returncode == 0 and f"{SESSION}  cleanup: deleted pre-key-1.json" in text.stdout.decode()
    other = run_cli(
        "history", "--json", "--store", unreachable, "--root", str(state_root), "--company", OTHER
    )
    assert other.returncode == 0 and other.doc["records"] == []


@pytest.mark.parametrize("command_name", ["scan", "report"])
def test_a_table_the_server_cannot_size_is_no_error(
    mariadb: MariaDB, mysql_fleet: str, state_root: Path, command_name: str
) -> None:
    prelude = "from wa_sessions.stores import mysql_wire as _wire\n_wire.TABLE_SIZE = 'SELECT 1 FROM DUAL WHERE %s IS NULL'\n"
    run = wa(mariadb, mysql_fleet, state_root, command_name, "--json", prelude=prelude)
    assert run.returncode == 0, run.describe()
    assert run.doc["memory"] is None
