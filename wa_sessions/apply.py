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
import math
import os
import stat
from dataclasses import dataclass, field
from datetime import UTC, datetime

from wa_sessions import layout
from wa_sessions.rules import Deletion, Plan
from wa_sessions.state import History, StateError


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


@functools.lru_cache(maxsize=4096)
def _iso_second(epoch_second: int) -> str:
    """An epoch second as ISO 8601 UTC (`2026-11-22T03:12:28Z`). Cached: a cleanup writes one
    record per file, and its times (and the mtimes of a pre-key batch) repeat."""
    return datetime.fromtimestamp(epoch_second, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


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


def apply_plan(tenant_fd: int, company: str, plan: Plan, history: History) -> Applied:
    """Given an open tenant folder and its plan, delete what is still as planned.

    Each deletion is recorded in the history before the unlink; a history write that fails stops
    the tenant (nothing more is deleted) and is reported as an error.
    """
    applied = Applied()
    held: set[str] = set()  # units of which an entry stays: the rest of the unit stays too
    for deletion in plan.deletions:
        name = deletion.entry.name
        shown = layout.display_name(name)
        if deletion.unit and deletion.unit in held:
            applied.kept.append(f"{shown}: kept with {layout.display_name(deletion.unit)}")
            continue
        try:
            changed = _changed(deletion, tenant_fd)
        except FileNotFoundError:
            applied.vanished += 1
            continue
        except OSError as error:
            held.add(deletion.unit)
            applied.errors.append((shown, f"cannot stat: {error.strerror}"))
            continue
        if changed is not None:
            held.add(deletion.unit)
            applied.kept.append(f"{shown}: {changed}; kept")
            continue
        record = history_record(company, deletion, datetime.now(UTC))
        try:
            history.write(record)
        except StateError as error:
            applied.errors.append((shown, f"not deleted: {error}"))
            break
        try:
            changed = _unlink_unless_changed(deletion, tenant_fd)
        except FileNotFoundError:
            applied.vanished += 1
            _record_failure(history, record, "already gone")
            continue
        except OSError as error:
            held.add(deletion.unit)
            applied.errors.append((shown, f"cannot delete: {error.strerror}"))
            _record_failure(history, record, error.strerror or str(error))
            continue
        if changed is not None:
            held.add(deletion.unit)
            applied.kept.append(f"{shown}: {changed} while being deleted; kept")
            _record_failure(history, record, f"kept: {changed} while being deleted")
            continue
        applied.deleted.append(deletion)
    return applied


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


def _record_failure(history: History, record: dict[str, object], error: str) -> None:
    with contextlib.suppress(StateError):
        history.write({**record, "event": "failed", "error": error})
