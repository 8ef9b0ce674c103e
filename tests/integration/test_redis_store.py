"""The Redis store (SPEC §10) against a real redis-server, with auth state written as Evolution API
v2 writes it: categories, age by change tracking, compare-and-delete, the lock in Redis, history,
and bad input as one line with a SPEC §7 exit code."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.env import clean_env

from .auth_state import AGED, CAPPED, NEVER, file_names
from .helpers import DAY, Run, run_cli, tenant_doc
from .redis_server import (
    PRE_KEYS,
    STANDARD_KEYS,
    RedisServer,
    digest,
    evolution_value,
    free_port,
    instance_key,
    start_redis,
    write_standard_instance,
)

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None,
    reason="redis-server is not installed (Debian: apt-get install redis-server; .ci/run installs it)",
)

INSTANCE = "4f7c1a2e-0b9d-4e61-9a51-3c2d8e7f6a10"
OTHER = "9b1e5c3d-7a2f-4d80-b6e4-1f0a2c3d4e5f"
SEEN = f"wa-sessions:seen:{INSTANCE}"
LOCK = f"wa-sessions:lock:{INSTANCE}"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    started = start_redis(tmp_path / "redis")
    yield started
    started.stop()


@pytest.fixture
def fleet(server: RedisServer) -> RedisServer:
    client = server.client()
    write_standard_instance(client, INSTANCE)
    write_standard_instance(client, OTHER)
    client.set("evolution-cache:instance-not-a-hash", "x")  # outside the instance pattern
    client.set(f"evolution-cache:instance:{'0' * 8}", "a string, not an instance hash")
    return server


def wa(server: RedisServer, root: Path, *args: str, prelude: str | None = None) -> Run:
    return run_cli(*args, "--store", server.url(), "--root", str(root), prelude=prelude)


def fields(server: RedisServer, instance: str = INSTANCE) -> dict[str, bytes]:
    raw = server.client().hgetall(instance_key(instance))
    return {key.decode(): value for key, value in raw.items()}


def deleted_names(run: Run, instance: str = INSTANCE) -> set[str]:
    return {item["file"] for item in tenant_doc(run.doc, instance)["deleted"]}


def backdate(server: RedisServer, days: float, instance: str = INSTANCE) -> None:
    """Rewrite every seen record as first seen `days` ago (as runs on that day would have)."""
    client = server.client()
    seen_key = f"wa-sessions:seen:{instance}"
    old = int(time.time() - days * DAY)
    for field, record in client.hgetall(seen_key).items():
        client.hset(seen_key, field, f"{record.decode().split()[0]} {old}")


def test_scan_counts_every_category_and_shows_the_store_without_password(
    fleet: RedisServer, state_root: Path
) -> None:
    run = wa(fleet, state_root, "scan", "--json")
    assert run.returncode == 0, run.describe()
    doc = run.doc
    assert doc["root"] == fleet.url()
    assert [tenant["company"] for tenant in doc["tenants"]] == sorted([INSTANCE, OTHER])
    tenant = tenant_doc(doc, INSTANCE)
    expected = dict.fromkeys(tenant["categories"], 0)
    for category in STANDARD_KEYS.values():
        expected[category] += 1
    expected["pre-key"] = PRE_KEYS
    assert tenant["categories"] == expected
    assert tenant["files"] == len(STANDARD_KEYS) + PRE_KEYS
    assert tenant["bytes"] == sum(len(value) for value in fields(fleet).values())
    assert tenant["path"] == instance_key(INSTANCE)
    assert tenant["problems"] == []
    assert not fleet.client().exists(SEEN)


def test_store_from_the_environment(fleet: RedisServer, state_root: Path) -> None:
    env = {"WA_SESSIONS_STORE": fleet.url(), "WA_SESSIONS_ROOT": str(state_root)}
    proc = subprocess.run(
        [sys.executable, "-m", "wa_sessions", "scan", "--json", "--company", INSTANCE],
        capture_output=True,
        env=clean_env(env),
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert [tenant["company"] for tenant in json.loads(proc.stdout)["tenants"]] == [INSTANCE]


def test_dry_run_deletes_nothing_and_records_nothing(fleet: RedisServer, state_root: Path) -> None:
    before = fields(fleet)
    run = wa(fleet, state_root, "cleanup", "--dry-run", "--json", "--company", INSTANCE)
    assert run.returncode == 0, run.describe()
    assert deleted_names(run) == file_names(CAPPED)  # never seen: nothing is old yet
    assert fields(fleet) == before
    assert fleet.client().keys("wa-sessions:*") == []
    assert not (state_root / ".wa-sessions" / "history.jsonl").exists()


def test_first_real_cleanup_records_first_sight_and_ages_nothing(
    fleet: RedisServer, state_root: Path
) -> None:
    started = time.time()
    run = wa(fleet, state_root, "cleanup", "--json", "--company", INSTANCE)
    assert run.returncode == 0, run.describe()
    assert deleted_names(run) == file_names(CAPPED)  # the pre-key cap needs no age
    remaining = fields(fleet)
    assert set(remaining) == (set(STANDARD_KEYS) | {f"pre-key-{n}" for n in range(1, PRE_KEYS + 1)}) - CAPPED
    seen = {key.decode(): value.decode() for key, value in fleet.client().hgetall(SEEN).items()}
    assert set(seen) == set(remaining)
    for field, record in seen.items():
        recorded_digest, first_seen = record.split(" ")
        assert recorded_digest == digest(remaining[field])
        assert started - 1 <= int(first_seen) <= time.time() + 1
    assert not fleet.client().exists(f"wa-sessions:seen:{OTHER}")  # only the tenant it looked at
    assert not fleet.client().exists(LOCK)  # released


def test_keys_seen_long_enough_are_deleted_as_in_a_folder(fleet: RedisServer, state_root: Path) -> None:
    assert wa(fleet, state_root, "cleanup", "--company", INSTANCE).returncode == 0
    before = fields(fleet)
    backdate(fleet, 20)
    run = wa(fleet, state_root, "cleanup", "--json", "--company", INSTANCE)
    assert run.returncode == 0, run.describe()
    assert deleted_names(run) == file_names(AGED)
    after = fields(fleet)
    assert set(after) == set(before) - AGED
    for field in NEVER | {"identity-key-15550000001.0", "device-list-15550000001"}:
        assert after[field] == before[field]  # protected and kept keys byte-identical
    assert not set(fleet.client().hkeys(SEEN)) & {field.encode() for field in AGED}
    history = [
        json.loads(line) for line in (state_root / ".wa-sessions" / "history.jsonl").read_text().splitlines()
    ]
    deleted = [line["file"] for line in history if line["event"] == "deleted" and line["company"] == INSTANCE]
    assert set(deleted) == file_names(AGED | CAPPED)
    assert len(deleted) == len(AGED | CAPPED)


def test_only_keys_past_their_rule_age_go(fleet: RedisServer, state_root: Path) -> None:
    assert wa(fleet, state_root, "cleanup", "--company", INSTANCE).returncode == 0
    backdate(fleet, 5)  # past sender-key's 3d, not session's 14d
    run = wa(fleet, state_root, "cleanup", "--json", "--company", INSTANCE)
    assert run.returncode == 0, run.describe()
    assert deleted_names(run) == file_names(AGED - {"session-15550000001.0", "session-100000000000002_1.0"})


def test_a_new_value_restarts_the_age(fleet: RedisServer, state_root: Path) -> None:
    assert wa(fleet, state_root, "cleanup", "--company", INSTANCE).returncode == 0
    backdate(fleet, 20)
    fleet.client().hset(instance_key(INSTANCE), "session-15550000001.0", evolution_value({"used": "again"}))
    run = wa(fleet, state_root, "cleanup", "--dry-run", "--json", "--company", INSTANCE)
    assert deleted_names(run) == file_names(AGED - {"session-15550000001.0"})


CHANGE_AFTER_PLAN = """
import redis as _redis
import wa_sessions.actions.cleanup as _cleanup
_real_plan = _cleanup.plan_tenant
def _hooked_plan(*args, **kwargs):
    plan = _real_plan(*args, **kwargs)
    _redis.Redis(port={port}).hset({key!r}, "session-15550000001.0", {value!r})
    return plan
_cleanup.plan_tenant = _hooked_plan
"""


def test_a_value_written_between_plan_and_delete_is_kept(fleet: RedisServer, state_root: Path) -> None:
    assert wa(fleet, state_root, "cleanup", "--company", INSTANCE).returncode == 0
    backdate(fleet, 20)
    fresh = evolution_value({"written": "by a live Baileys"})
    prelude = CHANGE_AFTER_PLAN.format(port=fleet.port, key=instance_key(INSTANCE), value=fresh)
    run = wa(fleet, state_root, "cleanup", "--json", "--company", INSTANCE, prelude=prelude)
    assert run.returncode == 0, run.describe()
    assert deleted_names(run) == file_names(AGED - {"session-15550000001.0"})
    assert fields(fleet)["session-15550000001.0"] == fresh
    assert any("modified since the plan" in note for note in tenant_doc(run.doc, INSTANCE)["notes"])


def test_a_lock_held_by_another_host_excludes_the_run(fleet: RedisServer, state_root: Path) -> None:
    fleet.client().set(LOCK, "another-host", px=60_000)
    named = wa(fleet, state_root, "cleanup", "--json", "--company", INSTANCE)
    assert named.returncode == 3, named.describe()
    assert tenant_doc(named.doc, INSTANCE)["action"] == "skipped"
    fleet_run = wa(fleet, state_root, "cleanup", "--json")
    assert fleet_run.returncode == 0, fleet_run.describe()  # unnamed, a busy tenant is skipped (SPEC §5)
    assert tenant_doc(fleet_run.doc, INSTANCE)["action"] == "skipped"
    assert tenant_doc(fleet_run.doc, OTHER)["deleted"]
    assert fleet.client().get(LOCK) == b"another-host"  # never released by a run that does not hold it
    assert not fleet.client().exists(SEEN)


HOLD_LOCK = """
import sys, time
from wa_sessions.config import load_settings
from wa_sessions.stores import redis as store_module
store_module.LOCK_TTL_MS = 1000
settings = load_settings(None, {{"store": {url!r}}})
with store_module.open_redis_store(settings) as store:
    [tenant] = store.tenants([{instance!r}])
    with store.open(tenant) as keys, keys.lock(0):
        print("locked", flush=True)
        time.sleep(600)
"""


def test_the_lock_is_renewed_while_held_and_expires_when_its_holder_is_killed(
    fleet: RedisServer, state_root: Path
) -> None:
    code = HOLD_LOCK.format(url=fleet.url(), instance=INSTANCE)
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=clean_env())
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"locked\n"
        time.sleep(2.5)  # over twice the lock's time to live: only renewal keeps it
        busy = wa(fleet, state_root, "cleanup", "--company", INSTANCE)
        assert busy.returncode == 3, busy.describe()
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        deadline = time.monotonic() + 10
        while fleet.client().exists(LOCK):
            assert time.monotonic() < deadline, "the lock of a killed holder did not expire"
            time.sleep(0.1)
        after = wa(fleet, state_root, "cleanup", "--company", INSTANCE)
        assert after.returncode == 0, after.describe()
    finally:
        holder.kill()
        holder.wait(timeout=10)


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:99999/0",
        "redis://:s3cr3t-pw@127.0.0.1:port/0",
        "redis://:s3cr3t-pw@127.0.0.1:6379/not-a-db",
        "ftp://user:s3cr3t-pw@127.0.0.1/",
        "redis://:s3cr3t-pw@127.0.0.1:6379/0?table=auth",
        "mysql://user:s3cr3t-pw@127.0.0.1:3306",  # no database
        "",
    ],
)
def test_a_bad_store_url_is_one_line_exit_2_without_the_password(url: str, state_root: Path) -> None:
    run = run_cli("scan", "--store", url, "--root", str(state_root))
    assert run.returncode == 2, run.describe()
    stderr = run.stderr.decode()
    assert stderr.count("\n") == 1 and "store" in stderr
    assert "s3cr3t-pw" not in stderr and "Traceback" not in stderr


def test_an_unreachable_server_is_one_line_exit_1_naming_host_and_port(state_root: Path) -> None:
    port = free_port()  # nothing listens there
    run = run_cli("cleanup", "--store", f"redis://:s3cr3t-pw@127.0.0.1:{port}/0", "--root", str(state_root))
    assert run.returncode == 1, run.describe()
    stderr = run.stderr.decode()
    assert stderr.count("\n") == 1 and f"127.0.0.1:{port}" in stderr
    assert "s3cr3t-pw" not in stderr and "Traceback" not in stderr


def test_a_wrong_password_is_one_line_exit_1(tmp_path: Path, state_root: Path) -> None:
    guarded = start_redis(tmp_path / "guarded", password="the-right-one")
    try:
        for url in (guarded.url(password="s3cr3t-pw"), guarded.url()):
            run = run_cli("scan", "--store", url, "--root", str(state_root))
            assert run.returncode == 1, run.describe()
            stderr = run.stderr.decode()
            assert stderr.count("\n") == 1 and f"127.0.0.1:{guarded.port}" in stderr
            assert "s3cr3t-pw" not in stderr and "Traceback" not in stderr
        right = run_cli("scan", "--store", guarded.url(password="the-right-one"), "--root", str(state_root))
        assert right.returncode == 0, right.describe()
    finally:
        guarded.stop()


def test_without_redis_py_the_error_names_the_extra(fleet: RedisServer, state_root: Path) -> None:
    run = wa(fleet, state_root, "scan", prelude="import sys\nsys.modules['redis'] = None\n")
    assert run.returncode == 1, run.describe()
    assert run.stderr.decode().count("\n") == 1
    assert "pip install 'wa-sessions[redis]'" in run.stderr.decode()


def test_an_unknown_instance_is_exit_2(fleet: RedisServer, state_root: Path) -> None:
    run = wa(fleet, state_root, "cleanup", "--company", "no-such-instance")
    assert run.returncode == 2, run.describe()
    assert "no-such-instance" in run.stderr.decode()


def test_purge_stale_dirs_is_for_folders_only(fleet: RedisServer, state_root: Path) -> None:
    run = wa(fleet, state_root, "emergency-cleanup", "--purge-stale-dirs", "--older-than", "10m", "--dry-run")
    assert run.returncode == 2, run.describe()
    assert "--purge-stale-dirs" in run.stderr.decode() and run.stderr.decode().count("\n") == 1


def test_creds_that_do_not_parse_stop_the_pre_key_cap(fleet: RedisServer, state_root: Path) -> None:
    fleet.client().hset(instance_key(INSTANCE), "creds", b"not json")
    run = wa(fleet, state_root, "cleanup", "--dry-run", "--json", "--company", INSTANCE)
    assert run.returncode == 0, run.describe()
    assert deleted_names(run) == set()
    assert "creds.json is unparseable" in tenant_doc(run.doc, INSTANCE)["problems"]
