"""history.jsonl across its generations: rotation and per-company totals.

When history.jsonl reaches HISTORY_ROTATE_BYTES it is renamed to history.jsonl.1; the generation
that .1 held before is first folded into history-summary.json (per-company totals), so totals
survive while the disk use stays bounded (two generations).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wa_sessions.history import HISTORY_FILE, HISTORY_ROTATED_FILE, read_records
from wa_sessions.locks import LockBusy, LockUnsafe, hold
from wa_sessions.state import StateError, read_json, write_atomically
from wa_sessions.times import iso_second

HISTORY_SUMMARY_FILE = "history-summary.json"
HISTORY_LOCK_FILE = "history.lock"
HISTORY_ROTATE_BYTES = 16 * 1024 * 1024


@dataclass(slots=True)
class DeletionTotals:
    """What the history says was deleted in one company: files, bytes, and the latest deletion."""

    deleted: int = 0
    bytes: int = 0
    last_cleanup: str | None = None

    def add(self, record: Mapping[str, Any]) -> None:
        """Count a `deleted` record; a `failed` record takes back the deletion it follows."""
        event = record.get("event", "deleted")
        size = record.get("bytes")
        size = size if isinstance(size, int) and not isinstance(size, bool) else 0
        if event == "deleted":
            self.deleted += 1
            self.bytes += size
            when = _normal_time(record.get("time"))
            if when is not None and (self.last_cleanup is None or when > self.last_cleanup):
                self.last_cleanup = when
        elif event == "failed":
            self.deleted -= 1
            self.bytes -= size

    def merge(self, other: DeletionTotals) -> None:
        self.deleted += other.deleted
        self.bytes += other.bytes
        if other.last_cleanup is not None and (
            self.last_cleanup is None or other.last_cleanup > self.last_cleanup
        ):
            self.last_cleanup = other.last_cleanup


def _normal_time(value: object) -> str | None:
    """An ISO 8601 time as `YYYY-MM-DDTHH:MM:SSZ` (UTC; comparable as text), or None if it is not one."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return iso_second(moment.timestamp())


def _identity(path: Path) -> list[int] | None:
    try:
        info = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    return [info.st_dev, info.st_ino]


def _read_summary(state_dir: Path) -> tuple[dict[str, DeletionTotals], list[int] | None]:
    document = read_json(state_dir / HISTORY_SUMMARY_FILE)
    companies = document.get("companies")
    totals: dict[str, DeletionTotals] = {}
    if isinstance(companies, dict):
        for company, values in companies.items():
            if not isinstance(values, dict):
                continue
            deleted, size, last = values.get("deleted"), values.get("bytes"), values.get("last_cleanup")
            totals[str(company)] = DeletionTotals(
                deleted if isinstance(deleted, int) else 0,
                size if isinstance(size, int) else 0,
                _normal_time(last),
            )
    folded = document.get("folded")
    return totals, folded if isinstance(folded, list) else None


def _totals_of_file(path: Path, totals: dict[str, DeletionTotals]) -> None:
    for record in read_records(path):
        company = record.get("company")
        if isinstance(company, str):
            totals.setdefault(company, DeletionTotals()).add(record)


def history_totals(state_dir: Path) -> dict[str, DeletionTotals]:
    """Per company, what the whole history says was deleted: the compacted summary of rotated-out
    generations, history.jsonl.1 (unless already folded into the summary) and history.jsonl.

    Truncated or unreadable lines are passed over; a `failed` line takes back its `deleted` line.
    """
    totals, folded = _read_summary(state_dir)
    rotated = state_dir / HISTORY_ROTATED_FILE
    if folded is None or _identity(rotated) != folded:
        _totals_of_file(rotated, totals)
    _totals_of_file(state_dir / HISTORY_FILE, totals)
    return totals


def rotate_history(state_dir: Path, max_bytes: int | None = None) -> bool:
    """Rotate history.jsonl to history.jsonl.1 once it reaches `max_bytes` (default
    HISTORY_ROTATE_BYTES, 16 MiB); return whether it did.

    The generation that history.jsonl.1 held is first compacted into history-summary.json (per
    company: files and bytes deleted, last cleanup), which records the identity of the file it
    folded, so a run killed between the two steps never counts a generation twice. Both steps are
    atomic (temp file + rename). Another process rotating at the same time makes this a no-op.
    """
    current = state_dir / HISTORY_FILE
    max_bytes = HISTORY_ROTATE_BYTES if max_bytes is None else max_bytes
    try:
        if os.stat(current, follow_symlinks=False).st_size < max_bytes:
            return False
    except OSError:
        return False
    try:
        with hold(str(state_dir / HISTORY_LOCK_FILE), 0):
            if os.stat(current, follow_symlinks=False).st_size < max_bytes:
                return False
            rotated = state_dir / HISTORY_ROTATED_FILE
            totals, folded = _read_summary(state_dir)
            identity = _identity(rotated)
            if identity is not None and identity != folded:
                _totals_of_file(rotated, totals)
                _write_summary(state_dir, totals, identity)
            os.replace(current, rotated)
            return True
    except LockBusy:
        return False
    except LockUnsafe as error:
        raise StateError(f"cannot rotate {current}: {error}") from None
    except OSError as error:
        raise StateError(f"cannot rotate {current}: {error.strerror}") from None


def _write_summary(state_dir: Path, totals: Mapping[str, DeletionTotals], folded: list[int]) -> None:
    document = {
        "schema": 1,
        "folded": folded,
        "companies": {
            company: {"deleted": total.deleted, "bytes": total.bytes, "last_cleanup": total.last_cleanup}
            for company, total in sorted(totals.items())
        },
    }
    write_atomically(state_dir / HISTORY_SUMMARY_FILE, json.dumps(document, indent=1).encode("utf-8"))
