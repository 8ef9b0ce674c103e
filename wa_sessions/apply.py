"""Execute a Plan: the one deletion engine. Nothing else unlinks a tenant's files.

The apply step never re-decides policy: a file is deleted only if it is still the very file the
plan judged (same inode, still a regular file, same mtime); anything else is kept and reported.

Baileys writes while we delete, so the last check cannot be a stat followed by an unlink (a write
landing in between would go to a deleted file). Each file is first renamed aside to
`.cleanup.unlinking.<its name>` (atomic: a writer that opens the name afterwards creates a new
file), then checked, then unlinked. A writer that had already opened it truncated it (O_TRUNC
sets the mtime), so the check sees the change and the file is put back under its name, where its
later writes land. Putting back never replaces a file: `link` (or `renameat2(RENAME_NOREPLACE)`
where links are refused); a name the writer has taken since keeps the writer's file.

A run killed between the rename and the unlink leaves the aside name, which carries the original
name: the next run (under the tenant lock) puts it back unless the name was taken since, and
its rules decide again. A leftover is never deleted unseen, so a key found in use is never lost.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple, cast

from wa_sessions import layout
from wa_sessions.history import History, LazyHistory, PartialWrite, deleted_lines, failed_line
from wa_sessions.rules import Deletion, Plan
from wa_sessions.state import StateError


@dataclass(slots=True)
class Applied:
    """What applying a plan did. `stopped` says why a plan applied with `stop_on_change` stopped."""

    deleted: list[Deletion] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    vanished: int = 0
    stopped: str | None = None


ASIDE_PREFIX = ".cleanup.unlinking."
RESTORING_PREFIX = ".cleanup.restoring."  # a file being put back from an archive, until linked
LEGACY_ASIDE = ".cleanup.unlinking"  # versions before 2026-12 set every file aside under one name
_NAME_MAX = 255


def aside_name(name: str) -> str | None:
    """Where `name` is set aside before its unlink, or None if that name would be too long."""
    aside = ASIDE_PREFIX + name
    return aside if len(os.fsencode(aside)) <= _NAME_MAX else None


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


# History lines are written in batches of up to this many deletions, each batch before its unlinks.
HISTORY_BATCH = 64


def apply_plan(
    tenant_fd: int, company: str, plan: Plan, history: History, *, stop_on_change: bool = False
) -> Applied:
    """Given an open tenant folder and its plan, delete what is still as planned.

    Deletions go in batches: each file of a batch is re-checked, the batch's records are appended
    to the history in one write, then its files are unlinked. Every unlinked file has its record
    (a run killed inside a batch leaves records of files it did not reach; the next run deletes
    them). A history write that fails stops the tenant: the files whose records are whole are still
    deleted, nothing more is, and the failure is reported as an error.

    With `stop_on_change` (a purge), the first file that is not as planned, or cannot be deleted,
    stops the whole plan: `Applied.stopped` says why, and nothing after it is deleted.
    """
    applied = Applied()
    held: set[str] = set()  # units of which an entry stays: the rest of the unit stays too
    pending = iter(plan.deletions)
    while applied.stopped is None and (
        batch := _checked_batch(pending, tenant_fd, applied, held, stop_on_change)
    ):
        recorded = _Recorded(company, datetime.now(UTC), history)
        lines = deleted_lines(company, batch, recorded.time)
        try:
            history.write_lines(lines)
        except PartialWrite as error:
            _unlink_batch(batch[: error.complete], recorded, tenant_fd, applied, held, stop_on_change)
            applied.errors.append(
                (layout.display_name(batch[error.complete].entry.name), f"not deleted: {error}")
            )
            applied.stopped = applied.stopped or f"history not written: {error}"
            break
        _unlink_batch(batch, recorded, tenant_fd, applied, held, stop_on_change)
    return applied


def _checked_batch(
    pending: Iterator[Deletion], tenant_fd: int, applied: Applied, held: set[str], stop_on_change: bool
) -> list[Deletion]:
    """The next deletions (up to HISTORY_BATCH) that are still the files the plan judged; the
    others are counted as vanished, kept or failed on the way. With `stop_on_change`, a file
    that is not as planned stops the plan and the batch is dropped unrecorded."""
    batch: list[Deletion] = []
    for deletion in pending:
        shown = layout.display_name(deletion.entry.name)
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
            changed = f"cannot stat: {error.strerror}"
            if stop_on_change:
                applied.stopped = f"{shown}: {changed}"
                return []
            continue
        if changed is not None:
            held.add(deletion.unit)
            applied.kept.append(f"{shown}: {changed}; kept")
            if stop_on_change:
                applied.stopped = f"{shown}: {changed}"
                return []
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
    batch: Sequence[Deletion],
    recorded: _Recorded,
    tenant_fd: int,
    applied: Applied,
    held: set[str],
    stop_on_change: bool = False,
) -> None:
    """Unlink the files of a recorded batch; a file that stays gets a `failed` line."""
    for deletion in batch:
        shown = layout.display_name(deletion.entry.name)
        if applied.stopped is not None:  # a purge that stopped: the rest of the batch stays
            _record_failure(recorded, deletion, f"kept: {applied.stopped}")
            continue
        if deletion.unit and deletion.unit in held:  # another file of its unit stayed in this batch
            why = f"kept with {layout.display_name(deletion.unit)}"
            applied.kept.append(f"{shown}: {why}")
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
            applied.errors.append((shown, f"cannot delete: {error.strerror or error}"))
            _record_failure(recorded, deletion, error.strerror or str(error))
            if stop_on_change:
                applied.stopped = f"{shown}: cannot delete ({error.strerror or error})"
            continue
        if changed is not None:
            held.add(deletion.unit)
            applied.kept.append(f"{shown}: {changed} while being deleted; kept")
            _record_failure(recorded, deletion, f"kept: {changed} while being deleted")
            if stop_on_change:
                applied.stopped = f"{shown}: {changed} while being deleted"
            continue
        applied.deleted.append(deletion)


def _unlink_unless_changed(deletion: Deletion, tenant_fd: int) -> str | None:
    """Move the file aside, check it, unlink it; return why it was put back instead, or None.
    Raise FileNotFoundError if it is gone, OSError if it cannot be moved (or put back)."""
    name = deletion.entry.name
    aside = aside_name(name)
    if aside is None:  # over 236 bytes: never a name Baileys writes; checked, then unlinked
        changed = _changed(deletion, tenant_fd)
        if changed is None:
            os.unlink(name, dir_fd=tenant_fd)
        return changed
    os.rename(name, aside, src_dir_fd=tenant_fd, dst_dir_fd=tenant_fd)
    try:
        changed = _changed(deletion, tenant_fd, aside)
    except FileNotFoundError:
        return None
    except OSError as error:
        changed = f"cannot be checked ({error.strerror})"
    if changed is not None and not put_back(tenant_fd, aside, name):
        return changed
    with contextlib.suppress(FileNotFoundError):
        os.unlink(aside, dir_fd=tenant_fd)
    return changed


# ---------------------------------------------------------------- putting back, never replacing

_RENAME_NOREPLACE = 1


def _libc_renameat2() -> Callable[[int, bytes, int, bytes, int], int] | None:
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return cast(Callable[[int, bytes, int, bytes, int], int], function)


_renameat2 = _libc_renameat2()


def rename_noreplace(source: str, target: str, dir_fd: int) -> None:
    """Rename `source` to `target` in one folder unless `target` exists (renameat2 with
    RENAME_NOREPLACE). Raise FileExistsError if it does, OSError if the kernel or filesystem
    cannot rename without replacing."""
    if _renameat2 is None:
        raise OSError(errno.ENOSYS, "renameat2 is not available")
    if _renameat2(dir_fd, os.fsencode(source), dir_fd, os.fsencode(target), _RENAME_NOREPLACE) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def link_noreplace(source: str, target: str, dir_fd: int) -> bool:
    """Give the entry `source` the name `target` too, never replacing a `target` that exists.
    Return whether `source` is still there (a hard link was made, or `target` existed: the
    caller drops `source`); False when `source` was renamed to `target` (no hard links here).
    Raise OSError when neither can be done."""
    try:
        os.link(source, target, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
    except FileExistsError:
        return True
    except OSError:  # no hard links on this filesystem, or too many: rename, still never replacing
        try:
            rename_noreplace(source, target, dir_fd)
        except FileExistsError:
            return True
        return False
    return True


def put_back(tenant_fd: int, aside: str, name: str) -> bool:
    """Give the entry set aside its name again, unless a writer already made a new one. Return
    whether the aside name is still there (a second name to drop)."""
    return link_noreplace(aside, name, tenant_fd)


def recover_leftovers(tenant_fd: int, company: str, history: LazyHistory) -> list[str]:
    """Put back what a killed run left set aside, under the tenant's lock: each
    `.cleanup.unlinking.<name>` gets its name again unless that name was taken since (then the
    newer file stays and the aside copy goes). Its deletion was recorded before it was set aside,
    so a `failed` line takes that record back; the rules decide again. Return notes."""
    notes: list[str] = []
    with contextlib.suppress(OSError), os.scandir(tenant_fd) as entries:
        names = [entry.name for entry in entries if entry.name.startswith((ASIDE_PREFIX, RESTORING_PREFIX))]
    for temp in (name for name in names if name.startswith(RESTORING_PREFIX)):
        with contextlib.suppress(OSError):  # a put-back from an archive killed before its link
            os.unlink(temp, dir_fd=tenant_fd)
    for aside in (name for name in names if name.startswith(ASIDE_PREFIX)):
        name = aside[len(ASIDE_PREFIX) :]
        shown = layout.display_name(name)
        try:
            info = os.stat(aside, dir_fd=tenant_fd, follow_symlinks=False)
            try:
                current: os.stat_result | None = os.stat(name, dir_fd=tenant_fd, follow_symlinks=False)
            except FileNotFoundError:
                current = None
            if current is None and not put_back(tenant_fd, aside, name):
                pass  # renamed back: nothing left to drop
            else:
                os.unlink(aside, dir_fd=tenant_fd)
        except FileNotFoundError:
            continue
        except OSError as error:
            notes.append(f"{shown}: left set aside by an interrupted run; cannot put back ({error.strerror})")
            continue
        if current is not None and current.st_ino != info.st_ino:
            continue  # a newer file took the name: the set-aside copy was the planned deletion
        notes.append(f"{shown}: put back after an interrupted run")
        if stat.S_ISREG(info.st_mode):
            why = "put back: the run deleting it was interrupted"
            history.take_back(company, name, info.st_size, info.st_mtime_ns, why)
    return notes


def remove_emptied_folder(root_fd: int, name: str, tenant_fd: int) -> None:
    """After a purge's plan emptied it: remove the folder's lock file, then the folder itself,
    if `name` under root is still the folder open as `tenant_fd`. Raise OSError (the folder
    was replaced, or is not empty: a file appeared)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(layout.LOCK_FILE, dir_fd=tenant_fd)
    if os.stat(name, dir_fd=root_fd, follow_symlinks=False).st_ino != os.fstat(tenant_fd).st_ino:
        raise OSError(0, "folder was replaced")
    os.rmdir(name, dir_fd=root_fd)


def _record_failure(recorded: _Recorded, deletion: Deletion, error: str) -> None:
    """Take back a deletion's record: the file is still there (or was not ours to delete)."""
    entry = deletion.entry
    line = failed_line(
        recorded.company,
        entry.name,
        entry.category,
        deletion.reason,
        entry.size,
        entry.mtime_ns,
        recorded.time,
        error,
    )
    with contextlib.suppress(StateError):
        recorded.history.write_lines([line])
