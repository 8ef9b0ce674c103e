"""`rediss://`: the Redis store over TLS against a real redis-server listening only with TLS, its
certificate signed by a throwaway CA made with openssl. The CA is trusted the way every OpenSSL
client trusts one, with SSL_CERT_FILE; a certificate that cannot be verified, or plain text to a
TLS port, is one line naming host:port, exit 1."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import run_cli, tenant_doc
from .redis_fleet import CAPPED, INSTANCE, deleted_names, file_names, requires_redis
from .redis_server import RedisServer, TlsFiles, make_tls_files, start_redis, write_standard_instance

pytestmark = [
    requires_redis,
    pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed"),
]


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[RedisServer]:
    files = make_tls_files(tmp_path / "tls")
    started = start_redis(tmp_path / "redis", tls=files)
    write_standard_instance(started.client(), INSTANCE)
    yield started
    started.stop()


def _ca(server: RedisServer) -> TlsFiles:
    assert server.tls is not None
    return server.tls


def test_a_cleanup_over_tls(tls_server: RedisServer, state_root: Path) -> None:
    trusted = {"SSL_CERT_FILE": str(_ca(tls_server).ca)}
    url = tls_server.url()
    assert url.startswith("rediss://")
    scan = run_cli("scan", "--json", "--store", url, "--root", str(state_root), env=trusted)
    assert scan.returncode == 0, scan.describe()
    assert scan.doc["memory"]["used_bytes"] > 0
    run = run_cli(
        "cleanup", "--json", "--company", INSTANCE, "--store", url, "--root", str(state_root), env=trusted
    )
    assert run.returncode == 0, run.describe()
    assert deleted_names(run) == file_names(CAPPED)
    assert tenant_doc(run.doc, INSTANCE)["errors"] == []
    assert tls_server.client().exists(f"wa-sessions:seen:{INSTANCE}")


def test_an_unverified_certificate_is_one_line_exit_1(tls_server: RedisServer, state_root: Path) -> None:
    run = run_cli("scan", "--store", tls_server.url(), "--root", str(state_root))  # the CA is not trusted
    assert run.returncode == 1, run.describe()
    stderr = run.stderr.decode()
    assert stderr.count("\n") == 1 and f"127.0.0.1:{tls_server.port}" in stderr
    assert "certificate verify failed" in stderr and "Traceback" not in stderr


def test_plain_text_to_a_tls_port_is_one_line_exit_1(tls_server: RedisServer, state_root: Path) -> None:
    plain = tls_server.url(password="s3cr3t-pw").replace("rediss://", "redis://")
    run = run_cli("scan", "--store", plain, "--root", str(state_root), timeout=120)
    assert run.returncode == 1, run.describe()
    stderr = run.stderr.decode()
    assert stderr.count("\n") == 1 and f"127.0.0.1:{tls_server.port}" in stderr
    assert "s3cr3t-pw" not in stderr and "Traceback" not in stderr
