"""A real `redis-server` for the Redis store's tests, and auth state written as Evolution API does.

The server runs as a child process on 127.0.0.1 with a random free port, no persistence and its
files in the test's tmp folder; it is killed at teardown. Values are written as Evolution API v2
writes them (src/api/services/cache.service.ts then src/cache/rediscache.ts): the key's value is
JSON.stringify'ed with BufferJSON.replacer ({"type": "Buffer", "data": base64}), and that text is
JSON.stringify'ed again, into the field `<type>-<id>` (ids unescaped) of `<prefix>:instance:<id>`.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from .auth_state import (  # noqa: F401 (the test data, re-exported for the Redis tests)
    GROUP,
    OTHER_GROUP,
    OWN_LID,
    OWN_PHONE,
    PRE_KEYS,
    STANDARD_KEYS,
    buffer,
    creds_value,
    digest,
    standard_values,
)

PREFIX = "evolution-cache"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class RedisServer:
    """A running redis-server: its port, its process and a client."""

    port: int
    process: subprocess.Popen[bytes]
    password: str | None = None

    def url(self, db: int = 0, password: str | None = None) -> str:
        auth = f":{password}@" if password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/{db}"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, password=self.password)

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)


def start_redis(folder: Path, password: str | None = None) -> RedisServer:
    """Start redis-server on a free port of 127.0.0.1, its files under `folder`; wait for PING."""
    executable = shutil.which("redis-server")
    assert executable is not None
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    argv = [executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    argv += ["--dir", str(folder), "--daemonize", "no", "--loglevel", "warning"]
    if password:
        argv += ["--requirepass", password]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = RedisServer(port, process, password)
    deadline = time.monotonic() + 10
    while True:
        try:
            server.client().ping()
            return server
        except redis.ConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(f"redis-server did not start on port {port}") from None
            time.sleep(0.05)


def evolution_value(value: Any) -> bytes:
    """A value as Evolution API stores it: JSON text of the JSON text (stringified twice)."""
    return json.dumps(json.dumps(value, separators=(",", ":"))).encode()


def instance_key(instance: str) -> str:
    return f"{PREFIX}:instance:{instance}"


def write_key(client: redis.Redis, instance: str, field: str, value: Any) -> None:
    client.hset(instance_key(instance), field, evolution_value(value))


def write_standard_instance(client: redis.Redis, instance: str) -> None:
    """One instance with a key of every category and pre-keys 1..60 (nextPreKeyId 61)."""
    for field, value in standard_values():
        write_key(client, instance, field, value)
