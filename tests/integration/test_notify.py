"""The webhook against a real HTTP server on 127.0.0.1: one POST per run that has something to
say, with the documented payload; nothing for a dry run or a quiet fleet; a server that is down,
answers 500 or is too slow is a warning on stderr (never its secrets) and never changes the exit
code; the timeout holds."""

from __future__ import annotations

import base64
import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.commands import purge_args

from wa_sessions.notify import redact_url, send

from .fleet_helpers import Webhook, closed_port, make_fleet, tenants_by_company, write_fleet_config
from .helpers import run_cli

PAYLOAD_KEYS = {
    "schema",
    "source",
    "version",
    "host",
    "command",
    "root",
    "generated_at",
    "exit_code",
    "tenants_at_emergency",
    "emergency_cleanups",
    "purged",
    "failures",
    "text",
}


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


def _env(url: str, variable: str = "WA_SESSIONS_NOTIFY__WEBHOOK_URL") -> dict[str, str]:
    return {variable: url}


def test_a_run_with_something_to_say_posts_one_documented_payload(
    root: Path, tmp_path: Path, now: float, webhook: Webhook
) -> None:
    make_fleet(root, now, {"e": "emergency", "d": "danger", "t": "trigger", "h": "healthy"})
    config = write_fleet_config(tmp_path / "config.yaml", root)

    run = run_cli("multitenant-cleanup", "--config", config, "--json", env=_env(webhook.url("/hooks/abc")))

    assert run.returncode == 0, run.describe()
    assert run.stderr == b""
    assert run.doc["notified"] is True and run.doc["warnings"] == []
    assert len(webhook.received) == 1
    request = webhook.received[0]
    assert request.path == "/hooks/abc"
    assert request.headers["Content-Type"] == "application/json"
    payload = request.payload
    assert set(payload) == PAYLOAD_KEYS
    assert payload["schema"] == 1 and payload["source"] == "wa-sessions"
    assert payload["command"] == "multitenant-cleanup" and payload["root"] == str(root)
    assert payload["exit_code"] == 0 and payload["failures"] == [] and payload["purged"] == []
    assert payload["tenants_at_emergency"] == [
        {"company": "d", "status": "danger", "files": 65},
        {"company": "e", "status": "emergency", "files": 55},
    ]
    tenants = tenants_by_company(run.doc)
    assert payload["emergency_cleanups"] == [
        {
            "company": "d",
            "status_before": "danger",
            "files_before": 65,
            "files_after": tenants["d"]["files_after"],
            "deleted": len(tenants["d"]["deleted"]),
            "bytes_freed": tenants["d"]["bytes_freed"],
        }
    ]
    assert "2 tenant(s) at emergency or above" in payload["text"]
    assert "1 emergency cleanup(s)" in payload["text"]


def test_the_legacy_variable_works_too(root: Path, tmp_path: Path, now: float, webhook: Webhook) -> None:
    make_fleet(root, now, {"d": "danger"})
    config = write_fleet_config(tmp_path / "config.yaml", root)

    run = run_cli("multitenant-cleanup", "--config", config, env=_env(webhook.url(), "NOTIFICATION_WEBHOOK"))

    assert run.returncode == 0, run.describe()
    assert len(webhook.received) == 1


def test_nothing_to_say_and_dry_runs_send_nothing(
    root: Path, tmp_path: Path, now: float, webhook: Webhook
) -> None:
    make_fleet(root, now, {"t": "trigger", "h": "healthy"})
    quiet_config = write_fleet_config(tmp_path / "quiet.yaml", root)
    assert run_cli("multitenant-cleanup", "--config", quiet_config, env=_env(webhook.url())).returncode == 0

    make_fleet(root, now, {"d": "danger"})
    dry = run_cli("multitenant-cleanup", "--config", quiet_config, "--dry-run", env=_env(webhook.url()))
    dry_emergency = run_cli(
        "emergency-cleanup", "--config", quiet_config, "--dry-run", env=_env(webhook.url())
    )

    assert dry.returncode == 0 and dry_emergency.returncode == 0
    assert webhook.received == []


def test_failures_are_notified_and_the_exit_code_is_the_runs(
    root: Path, tmp_path: Path, now: float, webhook: Webhook
) -> None:
    fleet = make_fleet(root, now, {"broken": "trigger"})
    os.symlink(tmp_path / "elsewhere", fleet["broken"].path / ".cleanup.lock")
    config = write_fleet_config(tmp_path / "config.yaml", root)

    run = run_cli("multitenant-cleanup", "--config", config, env=_env(webhook.url()))

    assert run.returncode == 1, run.describe()
    payload = webhook.received[0].payload
    assert payload["exit_code"] == 1
    assert [failure["company"] for failure in payload["failures"]] == ["broken"]
    assert payload["failures"][0]["errors"][0]["file"] == ".cleanup.lock"


def test_emergency_cleanup_and_purges_are_notified(
    root: Path, tmp_path: Path, now: float, webhook: Webhook
) -> None:
    make_fleet(root, now, {"d": "danger"})
    config = write_fleet_config(tmp_path / "config.yaml", root)

    run = run_cli("emergency-cleanup", "--config", config, env=_env(webhook.url()))

    assert run.returncode == 0, run.describe()
    payload = webhook.received[-1].payload
    assert payload["command"] == "emergency-cleanup"
    assert [cleanup["company"] for cleanup in payload["emergency_cleanups"]] == ["d"]

    stale = root / "company_stale"
    stale.mkdir()
    (stale / "creds.json").write_text("{}")
    os.utime(stale / "creds.json", (now - 7200, now - 7200))
    purge = run_cli(*purge_args(config, "1h"), "--yes", env=_env(webhook.url()))

    assert purge.returncode == 0, purge.describe()
    purged = webhook.received[-1].payload["purged"]
    assert [item["company"] for item in purged] == ["stale"]
    assert purged[0]["files"] == 1 and purged[0]["backup"].endswith(".tar.gz")


SECRET_URL = "http://alice:s3cr3t-pass@127.0.0.1:{port}/services/T0K3N-PATH?key=qu3ry-secret"


def _assert_no_secrets(text: str) -> None:
    for secret in ("alice", "s3cr3t-pass", "T0K3N-PATH", "qu3ry-secret"):
        assert secret not in text, text


def test_a_server_that_is_down_is_a_warning_and_the_exit_code_is_unchanged(
    root: Path, tmp_path: Path, now: float
) -> None:
    make_fleet(root, now, {"d": "danger"})
    config = write_fleet_config(tmp_path / "config.yaml", root)
    port = closed_port()

    run = run_cli("multitenant-cleanup", "--config", config, "--json", env=_env(SECRET_URL.format(port=port)))

    assert run.returncode == 0, run.describe()
    stderr = run.stderr.decode()
    assert re.match(r"wa-sessions: \S+Z warning: notification to http://127\.0\.0\.1:", stderr), stderr
    assert "failed" in stderr
    assert len(stderr.splitlines()) == 1
    _assert_no_secrets(stderr + run.stdout.decode())
    assert run.doc["notified"] is False and len(run.doc["warnings"]) == 1
    assert tenants_by_company(run.doc)["d"]["action"] == "emergency", "the run itself went ahead"


def test_an_http_error_is_a_warning(root: Path, tmp_path: Path, now: float) -> None:
    hook = Webhook(status=500)
    try:
        make_fleet(root, now, {"d": "danger"})
        config = write_fleet_config(tmp_path / "config.yaml", root)
        run = run_cli(
            "multitenant-cleanup", "--config", config, "--quiet", env=_env(SECRET_URL.format(port=hook.port))
        )
    finally:
        hook.close()
    assert run.returncode == 0, run.describe()
    assert run.stdout == b""
    assert b"HTTP 500" in run.stderr
    _assert_no_secrets(run.stderr.decode())
    assert len(hook.received) == 1
    request = hook.received[0]
    assert request.path == "/services/T0K3N-PATH?key=qu3ry-secret"
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"alice:s3cr3t-pass").decode()


def test_a_slow_server_cannot_hold_the_run_beyond_the_timeout(root: Path, tmp_path: Path, now: float) -> None:
    hook = Webhook(delay=20)
    try:
        make_fleet(root, now, {"d": "danger"})
        config = write_fleet_config(tmp_path / "config.yaml", root, notify={"timeout": "1s"})
        started = time.monotonic()
        run = run_cli("multitenant-cleanup", "--config", config, env=_env(hook.url()))
        elapsed = time.monotonic() - started
    finally:
        hook.delay = 0
        hook.close()
    assert run.returncode == 0, run.describe()
    assert b"timed out" in run.stderr
    assert elapsed < 10, f"the run took {elapsed:.1f}s with a 1s webhook timeout"


def test_send_keeps_its_deadline_against_a_server_that_trickles() -> None:
    hook = Webhook(delay=5)
    try:
        started = time.monotonic()
        warning = send(hook.url(), {"x": 1}, 0.5)
        elapsed = time.monotonic() - started
    finally:
        hook.delay = 0
        hook.close()
    assert warning is not None and "timed out" in warning
    assert elapsed < 2.5


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:pw@hooks.example.com/services/T/B/X", "https://hooks.example.com/…"),
        ("http://127.0.0.1:8080/hook?token=abc", "http://127.0.0.1:8080/…"),
        ("https://hooks.example.com", "https://hooks.example.com"),
        ("http://[::1]:9/x", "http://[::1]:9/…"),
    ],
)
def test_redact_url_keeps_only_scheme_host_and_port(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_a_url_that_is_not_http_is_a_warning_not_a_crash() -> None:
    warning = send("file:///etc/passwd", {}, 1)
    assert warning is not None and "not an http(s) URL" in warning


def test_notification_payload_is_valid_json_for_odd_names(
    root: Path, tmp_path: Path, now: float, webhook: Webhook
) -> None:
    make_fleet(root, now, {"d": "danger"})
    os.rename(root / "company_d", os.fsencode(root) + b"/company_d\xff")
    config = write_fleet_config(tmp_path / "config.yaml", root)

    run = run_cli("multitenant-cleanup", "--config", config, env=_env(webhook.url()))

    assert run.returncode == 0, run.describe()
    payload = json.loads(webhook.received[0].body.decode("utf-8"))
    assert payload["tenants_at_emergency"][0]["company"] == "d\\xff"
