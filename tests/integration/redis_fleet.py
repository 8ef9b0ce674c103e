"""What the Redis store's tests share: a real redis-server per test (redis_server.py), a fleet of
two Evolution API instances with a key of every category, and the CLI run against it."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .auth_state import AGED, CAPPED, NEVER, OWN_SENDER_KEY, file_names
from .helpers import DAY, Run, run_cli, tenant_doc
from .redis_server import (
    PRE_KEYS,
    STANDARD_KEYS,
    RedisServer,
    instance_key,
    start_redis,
    write_standard_instance,
)

__all__ = ["AGED", "CAPPED", "NEVER", "OWN_SENDER_KEY", "PRE_KEYS", "STANDARD_KEYS", "file_names"]

# Skipped where redis-server is missing, except in CI (.ci/run installs it; CI=true there): a
# missing server must fail CI, not pass it as skipped.
requires_redis = pytest.mark.skipif(
    shutil.which("redis-server") is None and not os.environ.get("CI"),
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
def state_root(root: Path) -> Path:
    """`--root`: with a store, only where the state dir (history.jsonl) is."""
    return root


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
