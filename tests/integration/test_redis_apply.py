"""The Redis store's deletion against a real redis-server: checks and compare-and-deletes go in
batches (a few Lua calls, not two per key), a unit stays whole inside a batch, a run that lost
its tenant lock deletes nothing more, every instance a real run looks at gets seen records, and
multitenant-cleanup's run lock in Redis excludes a run on another host."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

from support.env import clean_env

from .helpers import Run, command, tenant_doc
from .redis_fleet import (
    AGED,
    CAPPED,
    INSTANCE,
    LOCK,
    OTHER,
    OWN_SENDER_KEY,
    SEEN,
    backdate,
    deleted_names,
    fields,
    file_names,
    requires_redis,
    wa,
)
from .redis_server import GROUP, RedisServer, creds_value, evolution_value, instance_key

pytestmark = requires_redis

MANY = 1250


def _evalsha_calls(server: RedisServer) -> int:
    stats = server.client().info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


def test_a_large_cleanup_takes_a_few_lua_calls_not_two_per_key(fleet: RedisServer, state_root: Path) -> None:
    client = fleet.client()
    pipeline = client.pipeline(transaction=False)
    pipeline.hset(instance_key(INSTANCE), "creds", evolution_value(creds_value(MANY + 1)))
    for number in range(1, MANY + 1):
        pipeline.hset(instance_key(INSTANCE), f"pre-key-{number}", evolution_value({"id": number}))
    pipeline.execute()
    client.config_resetstat()
    run = wa(fleet, state_root, "cleanup", "--json", "--company", INSTANCE)
    assert run.returncode == 0, run.describe()
    expected = {f"pre-key-{number}" for number in range(1, MANY - 50 + 1)}  # keep_newest 50
    assert deleted_names(run) == file_names(expected)
    assert not set(fields(fleet)) & expected
    history = (state_root / ".wa-sessions" / "history.jsonl").read_text().splitlines()
    assert len(history) == len(expected)
    # list 1, checks 3 (500 a call), compare-and-deletes 3, release 1, and a first EVALSHA of each
    # of those 4 scripts that the new server refuses (NOSCRIPT); one key at a time it was 2 per key.
    assert _evalsha_calls(fleet) <= 12


HOOK_DELETE = """
import redis as _redis
from wa_sessions.stores import redis_keys as _keys
_real = _keys.RedisKeys.delete_many
def _hooked(self, deletions):
    {action}
    return _real(self, deletions)
_keys.RedisKeys.delete_many = _hooked
"""


def _cleanup_hooked(fleet: RedisServer, state_root: Path, action: str) -> Run:
    """A cleanup of INSTANCE that runs `action` before each compare-and-delete call."""
    return wa(
        fleet,
        state_root,
        "cleanup",
        "--json",
        "--company",
        INSTANCE,
        prelude=HOOK_DELETE.format(action=action),
    )


def test_a_unit_whose_first_key_changed_in_the_batch_stays_whole(
    fleet: RedisServer, state_root: Path
) -> None:
    assert wa(fleet, state_root, "cleanup", "--company", INSTANCE).returncode == 0
    backdate(fleet, 20)
    memory = f"sender-key-memory-{GROUP}"
    fresh = evolution_value({"written": "by a live Baileys"})
    action = f"_redis.Redis(port={fleet.port}).hset({instance_key(INSTANCE)!r}, {memory!r}, {fresh!r})"
    run = _cleanup_hooked(fleet, state_root, action)
    assert run.returncode == 0, run.describe()
    left = fields(fleet)
    assert left[memory] == fresh
    assert OWN_SENDER_KEY in left  # its partner stayed: so does it (SPEC §2), in the same Lua call
    assert deleted_names(run) == file_names(AGED - {memory, OWN_SENDER_KEY})


def test_a_run_that_lost_its_tenant_lock_deletes_nothing_more(fleet: RedisServer, state_root: Path) -> None:
    assert wa(fleet, state_root, "cleanup", "--company", INSTANCE).returncode == 0
    backdate(fleet, 20)
    before = fields(fleet)
    # As if our lock expired (the server stalled) and another host took it: the renewal thread
    # has not noticed yet.
    action = f"_redis.Redis(port={fleet.port}).set({LOCK!r}, 'another-host', px=60000)"
    run = _cleanup_hooked(fleet, state_root, action)
    assert run.returncode == 1, run.describe()
    assert fields(fleet) == before
    tenant = tenant_doc(run.doc, INSTANCE)
    assert tenant["deleted"] == []
    assert tenant["errors"] and all("was lost" in error["error"] for error in tenant["errors"])
    assert fleet.client().get(LOCK) == b"another-host"
    history = wa(fleet, state_root, "history", "--json")
    assert history.returncode == 0, history.describe()
    recent = [record for record in history.doc["records"] if record["company"] == INSTANCE]
    assert recent and not any(record["deleted"] for record in recent if record["file"] in file_names(AGED))


def test_every_instance_a_real_run_looks_at_gets_seen_records(fleet: RedisServer, state_root: Path) -> None:
    client = fleet.client()
    for dry in (["--dry-run"], []):
        for args in (["multitenant-cleanup"], ["emergency-cleanup"]):
            run = wa(fleet, state_root, *args, *dry, "--json")
            assert run.returncode == 0, run.describe()
            assert {tenant["action"] for tenant in run.doc["tenants"]} == {"none"}  # below every level
            recorded = client.exists(SEEN, f"wa-sessions:seen:{OTHER}")
            assert recorded == (0 if dry else 2), (args, dry)
            if not dry:
                client.delete(SEEN, f"wa-sessions:seen:{OTHER}")
    seen_by_scan = wa(fleet, state_root, "scan")
    assert seen_by_scan.returncode == 0 and not client.keys("wa-sessions:seen:*")


HOLD_RUN_LOCK = """
import time
from wa_sessions.actions import multitenant as _multitenant
from wa_sessions.stores import redis as _store
_store.LOCK_TTL_MS = 1000
def _hold(*args, **kwargs):
    print("running", flush=True)
    time.sleep(600)
_multitenant._clean_fleet = _hold
"""


def test_the_run_lock_in_redis_excludes_a_run_on_another_host(fleet: RedisServer, tmp_path: Path) -> None:
    hosts = [tmp_path / "host-a", tmp_path / "host-b"]  # separate state dirs: separate run.lock files
    for host in hosts:
        host.mkdir()
    argv = command(["multitenant-cleanup", "--store", fleet.url(), "--root", str(hosts[0])], HOLD_RUN_LOCK)
    holder = subprocess.Popen(argv, stdout=subprocess.PIPE, env=clean_env())
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"running\n"
        time.sleep(2.5)  # over twice its time to live: only renewal keeps it
        busy = wa(fleet, hosts[1], "multitenant-cleanup", "--json")
        assert busy.returncode == 3, busy.describe()
        assert busy.stderr.decode().count("\n") == 1 and "run lock" in busy.stderr.decode()
        assert fields(fleet, OTHER) and not fleet.client().exists(f"wa-sessions:seen:{OTHER}")
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        deadline = time.monotonic() + 10
        while fleet.client().exists("wa-sessions:run:multitenant-cleanup"):
            assert time.monotonic() < deadline, "the run lock of a killed holder did not expire"
            time.sleep(0.1)
        after = wa(fleet, hosts[1], "multitenant-cleanup", "--json")
        assert after.returncode == 0, after.describe()
        assert json.loads(after.stdout)["tenants"]
        assert not fleet.client().exists("wa-sessions:run:multitenant-cleanup")  # released
    finally:
        holder.kill()
        holder.wait(timeout=10)


def test_capped_pre_keys_go_in_the_first_run(fleet: RedisServer, state_root: Path) -> None:
    run = wa(fleet, state_root, "cleanup", "--json", "--company", INSTANCE)
    assert run.returncode == 0, run.describe()
    assert deleted_names(run) == file_names(CAPPED)
