"""`wa-sessions history`: what was deleted, when, by which command and why, newest first.

Read from the two generations of the history that keep every line (history.jsonl.1, then
history.jsonl); older generations survive only as totals (history-summary.json) and are not shown.
A `failed` line takes back the latest `deleted` line of the same company and file before it: that
deletion is shown as not done, with the error. A `failed` line with no such `deleted` line (its
generation was rotated out) is passed over. Read only, no lock.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from wa_sessions import layout
from wa_sessions.actions.common import validate_companies
from wa_sessions.config import Settings
from wa_sessions.durations import parse_duration
from wa_sessions.errors import UsageError
from wa_sessions.history import read_both_generations
from wa_sessions.results import HistoryRecord, Result
from wa_sessions.stores import open_store
from wa_sessions.times import iso_datetime, iso_second, utc_now

COMMAND = "history"
UNKNOWN_COMMAND = "unknown"


def run_history(
    settings: Settings, companies: Sequence[str], *, since: str | None = None, file_glob: str | None = None
) -> Result:
    """Given filters (companies by id or folder name, an age, a file-name glob), return the
    matching deletions of the history, newest first. Raise UsageError for a bad company, age or
    root (exit 2). A company with no folder is no error: a purged tenant still has a history.
    With a store, the companies are instance ids or session names, and the store is not
    contacted."""
    validate_companies(companies)
    oldest = None
    if since is not None:
        try:
            oldest = iso_second(time.time() - parse_duration(since))
        except ValueError as error:
            raise UsageError(f"invalid --since: {error}") from None
    if settings.store is None:
        with open_store(settings):  # the root must be there (exit 2), as for every command
            pass
        wanted = {layout.company_id(company, settings.tenant_pattern) for company in companies}
    else:  # the history is local: the store is not asked (it may be down); ids as given
        wanted = set(companies)
    result = Result(COMMAND, settings.shown_store or str(settings.root), iso_datetime(utc_now()))
    records = paired(read_both_generations(settings.effective_state_dir))
    result.history = [
        record
        for record in records
        if (not wanted or record.company in wanted)
        and (oldest is None or record.time >= oldest)
        and (file_glob is None or fnmatch.fnmatchcase(record.file, file_glob))
    ]
    return result


def paired(raw: Iterable[Mapping[str, Any]]) -> list[HistoryRecord]:
    """Given history lines oldest first, return their deletions newest first, each taken back by
    the `failed` line that follows it (same company and file), if any."""
    records: list[HistoryRecord] = []
    latest: dict[tuple[str, str], int] = {}  # (company, file) -> its last deletion not taken back
    for line in raw:
        company, file = _text(line.get("company")), _text(line.get("file"))
        event = line.get("event", "deleted")
        if event == "deleted":
            latest[(company, file)] = len(records)
            records.append(_record(line, company, file))
        elif event == "failed" and (index := latest.pop((company, file), None)) is not None:
            taken = records[index]
            records[index] = HistoryRecord(
                taken.time,
                taken.company,
                taken.command,
                taken.file,
                taken.category,
                taken.reason,
                taken.bytes,
                taken.mtime,
                deleted=False,
                error=_text(line.get("error")) or "failed",
            )
    order = sorted(range(len(records)), key=lambda index: (records[index].time, index), reverse=True)
    return [records[index] for index in order]


def _record(line: Mapping[str, Any], company: str, file: str) -> HistoryRecord:
    size = line.get("bytes")
    return HistoryRecord(
        time=_time(line.get("time")),
        company=company,
        command=_text(line.get("command")) or UNKNOWN_COMMAND,
        file=file,
        category=_text(line.get("category")) or layout.classify(file),
        reason=_text(line.get("reason")),
        bytes=size if isinstance(size, int) and not isinstance(size, bool) else 0,
        mtime=_time(line.get("mtime")) or None,
    )


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _time(value: object) -> str:
    """An ISO 8601 time as `YYYY-MM-DDTHH:MM:SSZ` (comparable as text), or "" if it is not one."""
    if not isinstance(value, str):
        return ""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return iso_datetime(moment)
