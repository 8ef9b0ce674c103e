"""The folder store's checked delete: the last syscalls of the one deletion engine (apply.py
decides what, in what order and records it; this deletes one file if it is still as planned).

Baileys writes while we delete, so the last check cannot be a stat followed by an unlink (a write
landing in between would go to a deleted file). Each file is first renamed aside to
`.cleanup.unlinking.<its name>` (atomic: a writer that opens the name afterwards creates a new
file), then checked (the aside's type, inode, size and mtime against the plan's), then unlinked:
three syscalls per file, and no check before the rename (FolderKeys.changed looks at nothing; a
file gone or changed before its rename has its history record taken back). A writer that had already opened it truncated it (O_TRUNC
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
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from wa_sessions import layout
from wa_sessions.listing import dot_names

if TYPE_CHECKING:
    from wa_sessions.history import LazyHistory
    from wa_sessions.layout import Entry
    from wa_sessions.rules import Deletion

ASIDE_PREFIX = ".cleanup.unlinking."
RESTORING_PREFIX = ".cleanup.restoring."  # a file being put back from an archive, until linked
_NAME_MAX = 255


def aside_name(name: str) -> str | None:
    """Where `name` is set aside before its unlink, or None if that name would be too long."""
    aside = ASIDE_PREFIX + name
    if aside.isascii():  # nearly every name: as many bytes as characters, no encoding needed
        return aside if len(aside) <= _NAME_MAX else None
    return aside if len(os.fsencode(aside)) <= _NAME_MAX else None


def changed_since_plan(deletion: Deletion, tenant_fd: int, name: str | None = None) -> str | None:
    """Why the file (or the entry now called `name`) is no longer the one the plan judged, or None
    if it still is. Raise FileNotFoundError if it is gone."""
    return _changed(
        os.stat(name or deletion.entry.name, dir_fd=tenant_fd, follow_symlinks=False), deletion.entry
    )


def _changed(info: os.stat_result, entry: Entry) -> str | None:
    """Why `info` (an lstat) is not the entry the plan judged, or None if it is."""
    if not stat.S_ISREG(info.st_mode):
        return "no longer a regular file"
    if info.st_ino != entry.inode:
        return "replaced since the plan"
    if info.st_mtime_ns != entry.mtime_ns or info.st_size != entry.size:
        return "modified since the plan"
    return None


def unlink_unless_changed(deletion: Deletion, tenant_fd: int) -> str | None:
    """Move the file aside, check it, unlink it; return why it was put back instead, or None.
    Raise FileNotFoundError if it is gone, OSError if it cannot be moved (or put back).

    Run once per deleted file, so aside_name and changed_since_plan are inlined for the usual
    case (an ASCII name; still the planned file): the same three syscalls, less Python."""
    entry = deletion.entry
    name = entry.name
    aside = ASIDE_PREFIX + name
    if len(aside) > _NAME_MAX or (not aside.isascii() and aside_name(name) is None):
        # over 236 bytes: never a name Baileys writes; checked, then unlinked
        changed = changed_since_plan(deletion, tenant_fd)
        if changed is None:
            os.unlink(name, dir_fd=tenant_fd)
        return changed
    os.rename(name, aside, src_dir_fd=tenant_fd, dst_dir_fd=tenant_fd)
    try:
        info = os.stat(aside, dir_fd=tenant_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    except OSError as error:
        changed = f"cannot be checked ({error.strerror})"
    else:
        unchanged = (  # _changed(info, entry) is None, in one expression
            info.st_ino == entry.inode
            and info.st_mtime_ns == entry.mtime_ns
            and info.st_size == entry.size
            and stat.S_ISREG(info.st_mode)
        )
        changed = None if unchanged else _changed(info, entry)
    if changed is not None and not put_back(tenant_fd, aside, name):
        return changed
    try:  # noqa: SIM105 (contextlib.suppress costs an object and two calls per file; a try, nothing)
        os.unlink(aside, dir_fd=tenant_fd)
    except FileNotFoundError:
        pass
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
    names: list[str] = []
    with contextlib.suppress(OSError):
        names = [name for name in dot_names(tenant_fd) if name.startswith((ASIDE_PREFIX, RESTORING_PREFIX))]
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


def remove_own_entry(tenant_fd: int, name: str) -> None:
    """Remove one of our own temporary entries from a tenant folder (a file set aside or being put
    back: `.cleanup.unlinking.*`, `.cleanup.restoring.*`), if it is there. Raise ValueError for
    any other name: a tenant's key is only ever deleted through the checked delete above."""
    if not name.startswith((ASIDE_PREFIX, RESTORING_PREFIX)):
        raise ValueError(f"not one of our own entries: {name!r}")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(name, dir_fd=tenant_fd)


def remove_emptied_folder(root_fd: int, name: str, tenant_fd: int) -> None:
    """After a purge's plan emptied it: remove the folder's lock file, then the folder itself,
    if `name` under root is still the folder open as `tenant_fd`. Raise OSError (the folder
    was replaced, or is not empty: a file appeared)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(layout.LOCK_FILE, dir_fd=tenant_fd)
    if os.stat(name, dir_fd=root_fd, follow_symlinks=False).st_ino != os.fstat(tenant_fd).st_ino:
        raise OSError(0, "folder was replaced")
    os.rmdir(name, dir_fd=root_fd)
