"""A webhook host that answers with a redirect (issue "Safety on every path", bug 9).

urllib follows 301/302/303 by sending the request again, as a GET, to whatever host the Location
names, and it used to send the Basic credentials of the URL along; the run then reported the
notification as delivered. Redirects are never followed now: a 3xx is a failed notification (a
warning naming the redirect, never its Location or the URL's secrets), the other host gets nothing,
and the exit code stays the run's own. Two real HTTP servers on 127.0.0.1.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from wa_sessions.notify import send

from .fleet_helpers import Webhook, make_fleet, write_fleet_config
from .helpers import run_cli

SECRET_URL = "http://alice:s3cr3t-pass@127.0.0.1:{port}/services/T0K3N-PATH?key=qu3ry-secret"
SECRETS = ("alice", "s3cr3t-pass", "T0K3N-PATH", "qu3ry-secret", "elsewhere-t0ken")


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_a_failed_notification_and_nothing_reaches_the_other_host(
    root: Path, tmp_path: Path, now: float, status: int
) -> None:
    elsewhere = Webhook()
    hook = Webhook(status=status, location=elsewhere.url("/elsewhere-t0ken"))
    try:
        make_fleet(root, now, {"d": "danger"})
        config = write_fleet_config(tmp_path / "config.yaml", root)
        run = run_cli(
            "multitenant-cleanup",
            "--config",
            config,
            "--json",
            env={"WA_SESSIONS_NOTIFY__WEBHOOK_URL": SECRET_URL.format(port=hook.port)},
        )
    finally:
        hook.close()
        elsewhere.close()

    assert run.returncode == 0, run.describe()
    assert run.doc["notified"] is False, run.describe()
    assert len(run.doc["warnings"]) == 1, run.doc["warnings"]
    warning = run.doc["warnings"][0]
    assert f"HTTP {status}" in warning and "redirect" in warning, warning
    everything = run.stdout.decode() + run.stderr.decode()
    for secret in SECRETS:
        assert secret not in everything, f"{secret!r} shown: {everything}"
    assert [request.method for request in hook.received] == ["POST"]
    assert elsewhere.received == [], "the redirect was followed"


def test_send_reports_a_redirect_as_a_failure(tmp_path: Path) -> None:
    elsewhere = Webhook()
    hook = Webhook(status=302, location=elsewhere.url("/next"))
    try:
        warning = send(hook.url("/hook"), {"text": "hello"}, timeout=5)
    finally:
        hook.close()
        elsewhere.close()
    assert warning is not None and "HTTP 302" in warning
    assert elsewhere.received == []
