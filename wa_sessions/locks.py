"""Per-tenant locks (`<tenant>/.cleanup.lock`) and the global run lock (`<state_dir>/run.lock`).

Both are filelock's flock-based locks: the kernel drops them when the holder dies, so a lock
left by a killed process never blocks the next run.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from wa_sessions import layout


class LockBusy(Exception):
    """Another process holds the lock."""


class LockUnsafe(Exception):
    """The lock file is not a regular file (a planted symlink, a FIFO...): the tenant is not touched."""


def _tenant_lock_path(tenant_fd: int, tenant_path: Path) -> str:
    """The lock file's path, pinned to the already opened folder where /proc allows it, so a folder
    swapped for a symlink after it was opened cannot redirect the lock file."""
    pinned = f"/proc/self/fd/{tenant_fd}"
    if os.path.isdir(pinned):
        return f"{pinned}/{layout.LOCK_FILE}"
    return str(tenant_path / layout.LOCK_FILE)


@contextlib.contextmanager
def hold(path: str, wait_seconds: float) -> Iterator[None]:
    """Hold the lock file at `path`, waiting up to `wait_seconds`. Raise LockBusy if it stays busy,
    LockUnsafe if it cannot be opened (e.g. swapped for a symlink: filelock opens with O_NOFOLLOW)."""
    # Imported here: scan, report and config never take a lock, and should not pay for filelock.
    from filelock import FileLock, Timeout

    lock = FileLock(path, timeout=wait_seconds, mode=0o600)
    try:
        lock.acquire()
    except Timeout:
        raise LockBusy(path) from None
    except OSError as error:
        raise LockUnsafe(f"cannot lock {os.path.basename(path)}: {error.strerror or error}") from None
    try:
        yield
    finally:
        lock.release()


def _create_lock_file(tenant_fd: int) -> None:
    """Create `.cleanup.lock` relative to the tenant's descriptor, refusing to follow a symlink
    or open anything but a regular file, before filelock opens it by path."""
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(layout.LOCK_FILE, flags, 0o600, dir_fd=tenant_fd)
    except OSError as error:
        raise LockUnsafe(f"cannot open {layout.LOCK_FILE}: {error.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise LockUnsafe(f"{layout.LOCK_FILE} is not a regular file")
        _give_to_folder_owner(fd, info, os.fstat(tenant_fd))
    finally:
        os.close(fd)


def _give_to_folder_owner(fd: int, lock: os.stat_result, folder: os.stat_result) -> None:
    """Run as root, hand the lock file to the tenant folder's owner: a root-owned 0600 lock would
    lock that owner (the Baileys user) out of cleaning its own folder. Only an empty file with no
    other name is handed over, so a planted hard link to a file of value never is."""
    if os.geteuid() != 0 or (lock.st_uid, lock.st_gid) == (folder.st_uid, folder.st_gid):
        return
    if lock.st_nlink == 1 and lock.st_size == 0:
        with contextlib.suppress(OSError):
            os.fchown(fd, folder.st_uid, folder.st_gid)


@contextlib.contextmanager
def tenant_lock(tenant_fd: int, tenant_path: Path, wait_seconds: float) -> Iterator[None]:
    """Hold `<tenant>/.cleanup.lock`. Raise LockBusy if another process holds it, LockUnsafe if
    the lock file is not a regular file."""
    _create_lock_file(tenant_fd)
    with hold(_tenant_lock_path(tenant_fd, tenant_path), wait_seconds):
        yield


def tenant_lock_is_held(tenant_fd: int, tenant_path: Path) -> bool:
    """Whether another process holds the tenant's lock (without creating a lock file)."""
    path = _tenant_lock_path(tenant_fd, tenant_path)
    if not os.path.lexists(path):
        return False
    try:
        with hold(path, 0):
            return False
    except LockBusy:
        return True
