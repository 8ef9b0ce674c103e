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


@dataclass(frozen=True)
class TlsFiles:
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it (make_tls_files)."""

    ca: Path
    cert: Path
    key: Path


def make_tls_files(folder: Path) -> TlsFiles:
    """With openssl: a CA (valid 2 days) and a certificate for IP 127.0.0.1 and localhost."""
    folder.mkdir(parents=True, exist_ok=True)

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True, timeout=60)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=wa-sessions test CA")  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=127.0.0.1")  # fmt: skip
    (folder / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "san.cnf")  # fmt: skip
    return TlsFiles(folder / "ca.pem", folder / "server.pem", folder / "server.key")


@dataclass
class RedisServer:
    """A running redis-server: its port, its process and a client."""

    port: int
    process: subprocess.Popen[bytes]
    password: str | None = None
    tls: TlsFiles | None = None  # TLS only (no plain port), with these files

    def url(self, db: int = 0, password: str | None = None) -> str:
        auth = f":{password}@" if password else ""
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://{auth}127.0.0.1:{self.port}/{db}"

    def client(self) -> redis.Redis:
        if self.tls is None:
            return redis.Redis(port=self.port, password=self.password)
        return redis.Redis(port=self.port, password=self.password, ssl=True, ssl_ca_certs=str(self.tls.ca))

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)


def start_redis(
    folder: Path,
    password: str | None = None,
    *,
    port: int | None = None,
    persist: bool = False,
    tls: TlsFiles | None = None,
) -> RedisServer:
    """Start redis-server on a free port (or `port`) of 127.0.0.1, its files under `folder`; wait
    for PING. `persist`: an append-only file synced at every write, so a server killed and started
    again on the same folder has every write it acknowledged."""
    executable = shutil.which("redis-server")
    assert executable is not None
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port() if port is None else port
    argv = [executable, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    if tls is not None:
        argv[1:3] = ["--port", "0", "--tls-port", str(port), "--tls-auth-clients", "no"]
        argv += [
            "--tls-cert-file",
            str(tls.cert),
            "--tls-key-file",
            str(tls.key),
            "--tls-ca-cert-file",
            str(tls.ca),
        ]
    argv += ["--appendonly", "yes", "--appendfsync", "always"] if persist else ["--appendonly", "no"]
    argv += ["--dir", str(folder), "--daemonize", "no", "--loglevel", "warning"]
    if password:
        argv += ["--requirepass", password]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = RedisServer(port, process, password, tls)
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
