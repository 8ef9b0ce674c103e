"""A small Result of each kind, built by hand, for the exact-output tests of output/."""

from __future__ import annotations

import pytest

from wa_sessions import layout
from wa_sessions.layout import Entry
from wa_sessions.results import ConfigValue, DiskUsage, Outcome, Result, TenantState
from wa_sessions.rules import Deletion

WHEN = "2030-01-15T12:00:00Z"
DISK = DiskUsage(bytes_total=4 * 1024**3, bytes_free=1024**3, inodes_total=1000, inodes_free=250)


def state(company: str, files: int, status: str = "healthy", **categories: int) -> TenantState:
    counts = dict.fromkeys(layout.CATEGORIES, 0)
    counts.update({name.replace("_", "-"): count for name, count in categories.items()})
    return TenantState(company, f"/srv/sessions/company_{company}", files, files * 100, status, counts, [])


def deletion(name: str, category: str, size: int, reason: str) -> Deletion:
    return Deletion(Entry(name, category, name, True, "file", 1, size, 0), reason, name)


@pytest.fixture
def scan_result() -> Result:
    busy = state("7", 180, "emergency", pre_key=150, session=29, creds=1)
    quiet = state("8", 3, creds=1, pre_key=1, unknown=1)
    quiet.problems.append("creds.json is unparseable")
    result = Result(
        "scan", "/srv/sessions", WHEN, [Outcome(busy), Outcome(quiet)], disk=DISK, fail_on="emergency"
    )
    result.rule_categories = frozenset({"pre-key", "session", "sender-key"})
    return result


@pytest.fixture
def cleanup_result() -> Result:
    before = state("7", 180, "emergency", pre_key=150, session=29, creds=1)
    outcome = Outcome(
        before,
        "cleanup",
        True,
        deleted=[
            deletion(
                "pre-key-1.json", "pre-key", 120, "pre-key id 1 beyond the newest 50 (ids 101–150 kept)"
            ),
            deletion("session-1.0.json", "session", 16, "older than 14d: last used 20d 3h ago"),
        ],
        files_after=178,
        notes=["a note"],
    )
    skipped = Outcome(state("8", 0), "skipped", True, skipped_reason="locked by another process")
    return Result("cleanup", "/srv/sessions", WHEN, [outcome, skipped], dry_run=True)


@pytest.fixture
def report_result() -> Result:
    cleaned = Outcome(state("7", 178, "emergency", pre_key=148, session=29, creds=1))
    cleaned.last_cleanup, cleaned.deleted_total, cleaned.freed_bytes_total = "2030-01-15T10:00:00Z", 2, 136
    never = Outcome(state("8", 3, creds=1, pre_key=2))
    return Result(
        "report",
        "/srv/sessions",
        WHEN,
        [cleaned, never],
        disk=DISK,
        last_success={"cleanup": 1_894_701_600.0},
        history_deleted=5,
        history_freed_bytes=400,
    )


@pytest.fixture
def config_result() -> Result:
    values = [
        ConfigValue("root", "/srv/sessions", "cli"),
        ConfigValue("locks.wait", "5s", "env WA_SESSIONS_LOCKS__WAIT"),
    ]
    return Result("config show", "/srv/sessions", WHEN, config_file=None, config_values=values)
