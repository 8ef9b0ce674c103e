"""The store benchmark's Redis: its own redis-server, the fleet in Evolution API v2's layout.

The fleet (bench/store_data.py) goes into database 1, as Evolution API writes it (one hash
`evolution-cache:instance:<id>` per instance, each value its BufferJSON text stringified once
more) with wa-sessions' seen records beside it (`wa-sessions:seen:<id>`: field -> `<sha1 of the
stored value> <first seen>`); `reset` copies it into database 0 (COPY, on the server), where
wa-sessions and the floor work.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sys
from pathlib import Path

import redis

from bench import store_data
from tests.integration.redis_server import start_redis

PREFIX = "evolution-cache"
SEEN_PREFIX = "wa-sessions:seen:"
PRISTINE_DB = 1
_PIPELINE_INSTANCES = 20


def _write(port: int, keys: int, now: float, indexes: range) -> tuple[int, int]:
    """Write instances `indexes` into the pristine database; return (keys, value bytes)."""
    client = redis.Redis(port=port, db=PRISTINE_DB)
    written = size = 0
    pipeline = client.pipeline(transaction=False)
    for position, index in enumerate(indexes, 1):
        instance = store_data.instance_id(index)
        fields: dict[str, bytes] = {}
        seen: dict[str, str] = {}
        for field, text, first_seen in store_data.instance_keys(index, keys, now):
            value = json.dumps(text).encode()
            fields[field] = value
            size += len(value)
            if first_seen is not None:
                seen[field] = f"{hashlib.sha1(value).hexdigest()} {int(first_seen)}"
        pipeline.hset(f"{PREFIX}:instance:{instance}", mapping=fields)  # type: ignore[arg-type]
        if seen:
            pipeline.hset(f"{SEEN_PREFIX}{instance}", mapping=seen)  # type: ignore[arg-type]
        written += len(fields)
        if position % _PIPELINE_INSTANCES == 0:
            pipeline.execute()
    pipeline.execute()
    client.close()
    return written, size


class RedisBackend:
    """A redis-server started for the benchmark (a child process, 127.0.0.1, a random port)."""

    name = "Redis"
    floor_name = "pipelined `HGETALL` (redis-py)"

    def __init__(self, workdir: Path):
        self.server = start_redis(workdir / "redis")
        self.url = self.server.url(0)

    def populate(self, instances: int, keys_per_instance: int, now: float) -> tuple[int, int]:
        return store_data.in_processes(
            functools.partial(_write, self.server.port, keys_per_instance, now), instances
        )

    def reset(self) -> None:
        redis.Redis(port=self.server.port, db=0).flushdb()
        pristine = redis.Redis(port=self.server.port, db=PRISTINE_DB)
        pipeline = pristine.pipeline(transaction=False)
        for key in pristine.scan_iter(count=1000):
            pipeline.copy(key, key, destination_db=0)
        pipeline.execute()
        pristine.close()

    def key_count(self) -> int:
        client = redis.Redis(port=self.server.port, db=0)
        pipeline = client.pipeline(transaction=False)
        for key in client.scan_iter(match=f"{PREFIX}:instance:*".encode(), count=1000):
            pipeline.hlen(key)
        return sum(pipeline.execute())

    def floor(self) -> list[str]:
        return [sys.executable, "-m", "bench.store_floors", self.url, PREFIX]

    def describe(self) -> str:
        info = redis.Redis(port=self.server.port).info()
        return f"redis-server {info['redis_version']}, used_memory {info['used_memory_human']} (both copies)"

    def stop(self) -> None:
        self.server.stop()
