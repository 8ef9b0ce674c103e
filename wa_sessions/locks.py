"""Per-tenant locks (`<tenant>/.cleanup.lock`) and the global run lock (`<state_dir>/run.lock`).

Both are flock locks (the tenant lock taken on our own descriptor, the state-dir locks through
filelock): the kernel drops them when the holder dies, so a lock left by a killed process never
blocks the next run.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import time
from collections.abc import Iterator

from wa_sessions import layout


class LockBusy(Exception):
    """Another process holds the lock."""


class LockUnsafe(Exception):
    """The lock file is not a regular file (a planted symlink, a FIFO...): the tenant is not touched."""


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


_LOCK_FLAGS = os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_POLL_SECONDS = 0.05


def _open_lock_file(tenant_fd: int, *, create: bool) -> int | None:
    """`.cleanup.lock` opened relative to the tenant's descriptor, never through a symlink and
    never anything but a regular file. Return None when it does not exist and not `create`.
    Raise LockUnsafe."""
    try:
        fd = os.open(layout.LOCK_FILE, _LOCK_FLAGS | (os.O_CREAT if create else 0), 0o600, dir_fd=tenant_fd)
    except FileNotFoundError:
        if create:
            raise LockUnsafe(f"cannot open {layout.LOCK_FILE}: the folder is gone") from None
        return None
    except OSError as error:
        raise LockUnsafe(f"cannot open {layout.LOCK_FILE}: {error.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise LockUnsafe(f"{layout.LOCK_FILE} is not a regular file")
        if create:
            _give_to_folder_owner(fd, info, os.fstat(tenant_fd))
    except BaseException:
        os.close(fd)
        raise
    return fd


def _flock(fd: int, operation: int, wait_seconds: float) -> bool:
    """Take the flock `operation` on `fd`, waiting up to `wait_seconds`; return whether it was taken."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            fcntl.flock(fd, operation | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(_POLL_SECONDS, left))


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
def tenant_lock(tenant_fd: int, wait_seconds: float) -> Iterator[None]:
    """Hold `<tenant>/.cleanup.lock`: opened relative to the tenant's descriptor and flock'ed on
    that very descriptor (no path through /proc or the folder's name, which a tenant owner can
    swap). Raise LockBusy if another process holds it, LockUnsafe if it is not a regular file."""
    fd = _open_lock_file(tenant_fd, create=True)
    assert fd is not None
    try:
        if not _flock(fd, fcntl.LOCK_EX, wait_seconds):
            raise LockBusy(layout.LOCK_FILE)
        yield
    finally:
        os.close(fd)  # drops the lock


def tenant_lock_is_held(tenant_fd: int) -> bool:
    """Whether another process holds the tenant's lock (without creating a lock file). Raise
    LockUnsafe if the lock file is not a regular file."""
    fd = _open_lock_file(tenant_fd, create=False)
    if fd is None:
        return False
    try:
        return not _flock(fd, fcntl.LOCK_SH, 0)
    finally:
        os.close(fd)
