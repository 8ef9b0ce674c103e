"""Hostile input to the Redis store, against a real redis-server: field names that are not UTF-8,
values that are not JSON, an instance deleted mid-run, and the server killed mid-cleanup (one
line, exit 1; nothing deleted beyond what compare-and-delete allows; the next run finishes)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import tenant_doc
from .redis_fleet import (
    AGED,
    INSTANCE,
    NEVER,
    OTHER,
    backdate,
    deleted_names,
    fields,
    file_names,
    requires_redis,
    wa,
)
from .redis_server import RedisServer, creds_value, evolution_value, instance_key, start_redis

pytestmark = requires_redis

BINARY_SESSION = b"session-\xff\xfe1555.0"
BINARY_UNKNOWN = b"\x80\x81-not-a-key"


def test_field_names_that_are_not_utf8_are_escaped_and_deleted_as_any_other(
    fleet: RedisServer, state_root: Path
) -> None:
    client = fleet.client()
    client.hset(instance_key(INSTANCE), BINARY_SESSION, evolution_value({"k": 1}))
    client.hset(instance_key(INSTANCE), BINARY_UNKNOWN, b"x")
    client.hset(b"evolution-cache:instance:\xfe\xff-instance", b"creds", evolution_value(creds_value()))
    scan = wa(fleet, state_root, "scan", "--json")  # strict UTF-8 on stdout (Run.doc)
    assert scan.returncode == 0, scan.describe()
    assert "\\xfe\\xff-instance" in [tenant["company"] for tenant in scan.doc["tenants"]]
    tenant = tenant_doc(scan.doc, INSTANCE)
    assert "unknown file (kept): \\x80\\x81-not-a-key.json" in tenant["problems"]
    assert wa(fleet, state_root, "cleanup", "--company", INSTANCE).returncode == 0
    backdate(fleet, 20)
    run = wa(fleet, state_root, "cleanup", "--json", "--company", INSTANCE)
    assert run.returncode == 0, run.describe()
    assert "session-\\xff\\xfe1555.0.json" in deleted_names(run)
    left = client.hgetall(instance_key(INSTANCE))
    assert BINARY_SESSION not in left and left[BINARY_UNKNOWN] == b"x"
    history = (state_root / ".wa-sessions" / "history.jsonl").read_bytes().decode("utf-8")
    assert '"file":"session-\\\\xff\\\\xfe1555.0.json"' in history


def test_values_that_are_not_json_are_aged_and_deleted_by_their_name(
    fleet: RedisServer, state_root: Path
) -> None:
    client = fleet.client()
    for field, value in (("session-15550000001.0", b"\x00\x01 not json"), ("tctoken-1@s.whatsapp.net", b"{")):
        client.hset(instance_key(INSTANCE), field, value)
    assert wa(fleet, state_root, "cleanup", "--company", INSTANCE).returncode == 0
    backdate(fleet, 20)
    run = wa(fleet, state_root, "cleanup", "--json", "--company", INSTANCE)
    assert run.returncode == 0, run.describe()
    assert deleted_names(run) == file_names(AGED)  # only keys' names and ages count, never values
    assert fields(fleet)["tctoken-1@s.whatsapp.net"] == b"{"


DELETE_HASH_AFTER_PLAN = """
import redis as _redis
import wa_sessions.actions.cleanup as _cleanup
_real_plan = _cleanup.plan_tenant
def _hooked_plan(*args, **kwargs):
    plan = _real_plan(*args, **kwargs)
    _redis.Redis(port={port}).delete({key!r})
    return plan
_cleanup.plan_tenant = _hooked_plan
"""


def test_an_instance_deleted_mid_run_is_no_error_and_nothing_is_recreated(
    fleet: RedisServer, state_root: Path
) -> None:
    assert wa(fleet, state_root, "cleanup", "--company", INSTANCE).returncode == 0
    backdate(fleet, 20)
    prelude = DELETE_HASH_AFTER_PLAN.format(port=fleet.port, key=instance_key(INSTANCE))
    run = wa(fleet, state_root, "cleanup", "--json", "--company", INSTANCE, prelude=prelude)
    assert run.returncode == 0, run.describe()
    tenant = tenant_doc(run.doc, INSTANCE)
    assert tenant["deleted"] == [] and tenant["errors"] == []
    assert not fleet.client().exists(instance_key(INSTANCE))  # a HDEL never makes a hash again
    gone = wa(fleet, state_root, "cleanup", "--json")
    assert gone.returncode == 0, gone.describe()
    assert [tenant["company"] for tenant in gone.doc["tenants"]] == [OTHER]


MANY = 1250

KILL_AFTER_FIRST_BATCH = """
import os, signal
from wa_sessions.stores import redis as _store
_store.LOCK_TTL_MS = 2000  # the lock of a run whose server died expires (the AOF keeps it)
from wa_sessions.stores import redis_keys as _keys
_real = _keys.RedisKeys.delete_many
def _hooked(self, deletions):
    outcomes = _real(self, deletions)
    os.kill({pid}, signal.SIGKILL)
    return outcomes
_keys.RedisKeys.delete_many = _hooked
"""


@pytest.fixture
def durable(tmp_path: Path) -> Iterator[RedisServer]:
    started = start_redis(tmp_path / "durable", persist=True)
    yield started
    started.stop()


def test_the_server_killed_mid_cleanup_is_one_line_and_the_next_run_finishes(
    durable: RedisServer, tmp_path: Path, state_root: Path
) -> None:
    client = durable.client()
    pipeline = client.pipeline(transaction=False)
    pipeline.hset(instance_key(INSTANCE), "creds", evolution_value(creds_value(MANY + 1)))
    for field in NEVER - {"creds"}:
        pipeline.hset(instance_key(INSTANCE), field, evolution_value({"field": field}))
    for number in range(1, MANY + 1):
        pipeline.hset(instance_key(INSTANCE), f"pre-key-{number}", evolution_value({"id": number}))
    pipeline.execute()
    kept_before = {
        field: value for field, value in fields(durable).items() if not field.startswith("pre-key")
    }
    prelude = KILL_AFTER_FIRST_BATCH.format(pid=durable.process.pid)
    killed = wa(durable, state_root, "cleanup", "--json", "--company", INSTANCE, prelude=prelude)
    assert killed.returncode == 1, killed.describe()
    stderr = killed.stderr.decode()
    assert stderr.count("\n") == 1 and f"127.0.0.1:{durable.port}" in stderr and "Traceback" not in stderr
    [error] = killed.doc["errors"]  # the --json document still ends: the run stopped, as if killed
    assert error.startswith(f"lost Redis at 127.0.0.1:{durable.port}")
    durable.process.wait(timeout=10)

    again = start_redis(tmp_path / "durable", port=durable.port, persist=True)
    try:
        left = fields(again)
        deleted_first = {f"pre-key-{n}" for n in range(1, MANY + 1)} - set(left)
        assert len(deleted_first) == 500  # exactly the first batch, nothing half-done
        history = state_root / ".wa-sessions" / "history.jsonl"
        assert len(history.read_text().splitlines()) == 500  # the batch that was not tried: not recorded
        deadline = time.monotonic() + 10
        while again.client().exists(f"wa-sessions:lock:{INSTANCE}"):
            assert time.monotonic() < deadline, "the lock of the stopped run did not expire"
            time.sleep(0.1)
        run = wa(again, state_root, "cleanup", "--json", "--company", INSTANCE)
        assert run.returncode == 0, run.describe()
        expected = {f"pre-key-{n}" for n in range(1, MANY - 50 + 1)}
        assert deleted_names(run) | file_names(deleted_first) == file_names(expected)
        final = fields(again)
        assert set(final) == set(kept_before) | {f"pre-key-{n}" for n in range(MANY - 49, MANY + 1)}
        assert {field: final[field] for field in kept_before} == kept_before  # byte-identical
        records = [json.loads(line) for line in history.read_text().splitlines()]
        assert sorted(record["file"] for record in records) == sorted(file_names(expected))
    finally:
        again.stop()
