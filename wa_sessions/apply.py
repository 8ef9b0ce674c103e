"""Execute a Plan: re-check each file just before unlinking it relative to the tenant's descriptor.

The apply step never re-decides policy: a file is deleted only if it is still the very file the
plan judged (same inode, still a regular file, same mtime); anything else is kept and reported.

Baileys writes while we delete, so the last check cannot be a stat followed by an unlink (a write
landing in between would go to a deleted file). Each file is first renamed to `.cleanup.unlinking`
(atomic: a writer that opens the name afterwards creates a new file), then checked, then
unlinked. A writer that had already opened it truncated it (O_TRUNC sets the mtime), so the check
sees the change and the file is linked back under its name; its later writes land there.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

from wa_sessions import layout
from wa_sessions.rules import Deletion, Plan
from wa_sessions.state import History, PartialWrite, StateError


@dataclass(slots=True)
class Applied:
    """What applying a plan did."""

    deleted: list[Deletion] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    vanished: int = 0


UNLINKING = ".cleanup.unlinking"


def _changed(deletion: Deletion, tenant_fd: int, name: str | None = None) -> str | None:
    """Why the file (or the entry now called `name`) is no longer the one the plan judged, or None
    if it still is. Raise FileNotFoundError if it is gone."""
    entry = deletion.entry
    info = os.stat(name or entry.name, dir_fd=tenant_fd, follow_symlinks=False)
    if not stat.S_ISREG(info.st_mode):
        return "no longer a regular file"
    if info.st_ino != entry.inode:
        return "replaced since the plan"
    if info.st_mtime_ns != entry.mtime_ns:
        return "modified since the plan"
    return None


@functools.lru_cache(maxsize=1024)
def _iso_day(day: int) -> str:
    return datetime.fromtimestamp(day * 86400, UTC).date().isoformat()


def _iso_second(epoch_second: int) -> str:
    """An epoch second as ISO 8601 UTC (`2026-11-22T03:12:28Z`). A cleanup writes one record per
    file: the date part is worked out once per day, the time of day by arithmetic."""
    day, second = divmod(epoch_second, 86400)
    hour, second = divmod(second, 3600)
    minute, second = divmod(second, 60)
    return f"{_iso_day(day)}T{hour:02d}:{minute:02d}:{second:02d}Z"


def history_record(company: str, deletion: Deletion, time: datetime) -> dict[str, object]:
    entry = deletion.entry
    return {
        "event": "deleted",
        "time": _iso_second(math.floor(time.timestamp())),
        "company": company,
        "file": layout.display_name(entry.name),
        "category": entry.category,
        "reason": deletion.reason,
        "bytes": entry.size,
        "mtime": _iso_second(entry.mtime_ns // 1_000_000_000),
    }


_json_string = json.encoder.encode_basestring  # json.dumps(text, ensure_ascii=False), in C


def history_lines(company: str, deletions: Sequence[Deletion], time: datetime) -> list[str]:
    """The history lines of `history_record` for each deletion, encoded as the history encodes a
    record (compact JSON), without a dict per file: a cleanup of a fleet writes millions."""
    head = f'{{"event":"deleted","time":"{_iso_second(math.floor(time.timestamp()))}","company":{_json_string(company)},"file":'
    return [
        f'{head}{_json_string(layout.display_name(entry.name))},"category":{_json_string(entry.category)},'
        f'"reason":{_json_string(deletion.reason)},"bytes":{entry.size},'
        f'"mtime":"{_iso_second(entry.mtime_ns // 1_000_000_000)}"}}'
        for deletion in deletions
        for entry in (deletion.entry,)
    ]


# History lines are written in batches of up to this many deletions, each batch before its unlinks.
HISTORY_BATCH = 64


def apply_plan(tenant_fd: int, company: str, plan: Plan, history: History) -> Applied:
    """Given an open tenant folder and its plan, delete what is still as planned.

    Deletions go in batches: each file of a batch is re-checked, the batch's records are appended
    to the history in one write, then its files are unlinked. Every unlinked file has its record
    (a run killed inside a batch leaves records of files it did not reach; the next run deletes
    them). A history write that fails stops the tenant: the files whose records are whole are still
    deleted, nothing more is, and the failure is reported as an error.
    """
    applied = Applied()
    held: set[str] = set()  # units of which an entry stays: the rest of the unit stays too
    pending = iter(plan.deletions)
    while batch := _checked_batch(pending, tenant_fd, applied, held):
        recorded = _Recorded(company, datetime.now(UTC), history)
        lines = history_lines(company, batch, recorded.time)
        try:
            history.write_lines(lines)
        except PartialWrite as error:
            _unlink_batch(batch[: error.complete], recorded, tenant_fd, applied, held)
            applied.errors.append(
                (layout.display_name(batch[error.complete].entry.name), f"not deleted: {error}")
            )
            break
        _unlink_batch(batch, recorded, tenant_fd, applied, held)
    return applied


def _checked_batch(
    pending: Iterator[Deletion], tenant_fd: int, applied: Applied, held: set[str]
) -> list[Deletion]:
    """The next deletions (up to HISTORY_BATCH) that are still the files the plan judged; the
    others are counted as vanished, kept or failed on the way."""
    batch: list[Deletion] = []
    for deletion in pending:
        if deletion.unit and deletion.unit in held:
            shown = layout.display_name(deletion.entry.name)
            applied.kept.append(f"{shown}: kept with {layout.display_name(deletion.unit)}")
            continue
        try:
            changed = _changed(deletion, tenant_fd)
        except FileNotFoundError:
            applied.vanished += 1
            continue
        except OSError as error:
            held.add(deletion.unit)
            applied.errors.append(
                (layout.display_name(deletion.entry.name), f"cannot stat: {error.strerror}")
            )
            continue
        if changed is not None:
            held.add(deletion.unit)
            applied.kept.append(f"{layout.display_name(deletion.entry.name)}: {changed}; kept")
            continue
        batch.append(deletion)
        if len(batch) == HISTORY_BATCH:
            break
    return batch


class _Recorded(NamedTuple):
    """Where and when a batch was recorded: what a `failed` line taking one back repeats."""

    company: str
    time: datetime
    history: History


def _unlink_batch(
    batch: Sequence[Deletion], recorded: _Recorded, tenant_fd: int, applied: Applied, held: set[str]
) -> None:
    """Unlink the files of a recorded batch; a file that stays gets a `failed` line."""
    for deletion in batch:
        if deletion.unit and deletion.unit in held:  # another file of its unit stayed in this batch
            why = f"kept with {layout.display_name(deletion.unit)}"
            applied.kept.append(f"{layout.display_name(deletion.entry.name)}: {why}")
            _record_failure(recorded, deletion, why)
            continue
        try:
            changed = _unlink_unless_changed(deletion, tenant_fd)
        except FileNotFoundError:
            applied.vanished += 1
            _record_failure(recorded, deletion, "already gone")
            continue
        except OSError as error:
            held.add(deletion.unit)
            applied.errors.append(
                (layout.display_name(deletion.entry.name), f"cannot delete: {error.strerror}")
            )
            _record_failure(recorded, deletion, error.strerror or str(error))
            continue
        if changed is not None:
            held.add(deletion.unit)
            applied.kept.append(
                f"{layout.display_name(deletion.entry.name)}: {changed} while being deleted; kept"
            )
            _record_failure(recorded, deletion, f"kept: {changed} while being deleted")
            continue
        applied.deleted.append(deletion)


def discard_leftover(tenant_fd: int) -> None:
    """Remove the `.cleanup.unlinking` a killed run may have left (its deletion is in the history).
    Call only under the tenant's lock."""
    with contextlib.suppress(OSError):
        os.unlink(UNLINKING, dir_fd=tenant_fd)


def _unlink_unless_changed(deletion: Deletion, tenant_fd: int) -> str | None:
    """Move the file aside, check it, unlink it; return why it was put back instead, or None.
    Raise FileNotFoundError if it is gone, OSError if it cannot be moved."""
    name = deletion.entry.name
    os.rename(name, UNLINKING, src_dir_fd=tenant_fd, dst_dir_fd=tenant_fd)
    try:
        changed = _changed(deletion, tenant_fd, UNLINKING)
    except FileNotFoundError:
        return None
    except OSError as error:
        changed = f"cannot be checked ({error.strerror})"
    if changed is not None and not _put_back(tenant_fd, name):
        return changed
    with contextlib.suppress(FileNotFoundError):
        os.unlink(UNLINKING, dir_fd=tenant_fd)
    return changed


def _put_back(tenant_fd: int, name: str) -> bool:
    """Give the moved entry its name again, unless the writer already made a new one. Return
    whether `.cleanup.unlinking` is still there (a second name to drop)."""
    try:
        os.link(UNLINKING, name, src_dir_fd=tenant_fd, dst_dir_fd=tenant_fd, follow_symlinks=False)
    except FileExistsError:
        return True  # a newer file took the name: the older copy goes
    except OSError:  # no hard links here, or a directory: rename it back if the name is free
        with contextlib.suppress(OSError):
            os.stat(name, dir_fd=tenant_fd, follow_symlinks=False)
            return True
        os.rename(UNLINKING, name, src_dir_fd=tenant_fd, dst_dir_fd=tenant_fd)
        return False
    return True


def _record_failure(recorded: _Recorded, deletion: Deletion, error: str) -> None:
    """Take back a deletion's record: the file is still there (or was not ours to delete)."""
    record = history_record(recorded.company, deletion, recorded.time)
    with contextlib.suppress(StateError):
        recorded.history.write({**record, "event": "failed", "error": error})
