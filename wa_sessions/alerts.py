"""What the webhook is told about a finished run of emergency-cleanup or multitenant-cleanup.

The webhook hears about tenants at `emergency` or above, emergency cleanups done, stale folders
purged, and failures: one POST per run that has something to say, none for a dry run. The
payload is documented in the README ("Notifications").
"""

from __future__ import annotations

import socket
from typing import Any

from wa_sessions import __version__, layout, notify
from wa_sessions.config import Settings
from wa_sessions.notify import PAYLOAD_SCHEMA
from wa_sessions.results import Outcome, Result

ALERT_LEVEL = "emergency"


def notify_run(settings: Settings, result: Result, purged: list[dict[str, Any]] | None = None) -> None:
    """Notify the webhook if the run has something to say; a failed notification is a warning."""
    payload = payload_for(result, purged=purged)
    if payload is None or not settings.notify.webhook_url:
        return
    warning = notify.send(settings.notify.webhook_url, payload, settings.notify.timeout)
    if warning is None:
        result.notified = True
    else:
        result.warnings.append(warning)


def _alert(outcome: Outcome) -> dict[str, Any]:
    return {"company": outcome.before.company, "status": outcome.before.status, "files": outcome.before.files}


def _cleanup(outcome: Outcome) -> dict[str, Any]:
    return {
        "company": outcome.before.company,
        "status_before": outcome.before.status,
        "files_before": outcome.before.files,
        "files_after": outcome.files_after,
        "deleted": outcome.deleted_count,
        "bytes_freed": outcome.bytes_freed,
    }


def _failure(outcome: Outcome) -> dict[str, Any]:
    return {
        "company": outcome.before.company,
        "errors": [{"file": file, "error": error} for file, error in outcome.errors],
    }


def _summary(command: str, host: str, payload: dict[str, Any]) -> str:
    parts = []
    if payload["tenants_at_emergency"]:
        shown = ", ".join(
            f"{alert['company']} {alert['status']} ({alert['files']} files)"
            for alert in payload["tenants_at_emergency"][:5]
        )
        more = len(payload["tenants_at_emergency"]) - 5
        parts.append(
            f"{len(payload['tenants_at_emergency'])} tenant(s) at emergency or above: {shown}"
            + (f" and {more} more" if more > 0 else "")
        )
    if payload["emergency_cleanups"]:
        freed = sum(cleanup["deleted"] for cleanup in payload["emergency_cleanups"])
        parts.append(f"{len(payload['emergency_cleanups'])} emergency cleanup(s), {freed} files deleted")
    if payload["purged"]:
        parts.append(f"{len(payload['purged'])} stale folder(s) purged")
    if payload["failures"]:
        companies = ", ".join(failure["company"] or "the run" for failure in payload["failures"][:5])
        parts.append(f"{len(payload['failures'])} failure(s): {companies}")
    return f"wa-sessions {command} on {host}: " + "; ".join(parts)


def payload_for(
    result: Result, *, purged: list[dict[str, Any]] | None = None, host: str | None = None
) -> dict[str, Any] | None:
    """Given a finished (not dry) run, return the webhook payload, or None if it has nothing to say."""
    if result.dry_run:
        return None
    floor = layout.status_rank(ALERT_LEVEL)
    alerts = [
        _alert(t)
        for t in result.tenants
        if t.before.status in layout.STATUS_LEVELS and layout.status_rank(t.before.status) >= floor
    ]
    cleanups = [_cleanup(t) for t in result.tenants if t.action == "emergency" and t.skipped_reason is None]
    failures = [_failure(t) for t in result.tenants if t.errors]
    failures.extend({"company": None, "errors": [{"file": None, "error": e}]} for e in result.errors)
    if not (alerts or cleanups or failures or purged):
        return None
    host = host or socket.gethostname()
    payload: dict[str, Any] = {
        "schema": PAYLOAD_SCHEMA,
        "source": "wa-sessions",
        "version": __version__,
        "host": host,
        "command": result.command,
        "root": result.root,
        "generated_at": result.generated_at,
        "exit_code": result.exit_code,
        "tenants_at_emergency": alerts,
        "emergency_cleanups": cleanups,
        "purged": list(purged or []),
        "failures": failures,
    }
    payload["text"] = _summary(result.command, host, payload)
    return payload
