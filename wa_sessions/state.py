"""Small state files under `<state_dir>`: per-tenant cooldowns, pending runs, successful runs,
and the folder itself (created 0700, refused unless only we can write to it). Every file is
replaced atomically (temp file, fsync, rename). The history log is history.py's.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from wa_sessions.locks import LockBusy, LockUnsafe, hold
from wa_sessions.times import iso_second

COOLDOWNS_FILE = "cooldowns.json"


class StateError(Exception):
    """The state directory or one of its files could not be written."""


STALE_TEMP_AGE = 600  # seconds untouched before a killed run's temp file is removed
_cleaned_temps: set[str] = set()


def _check_own_directory(fd: int, path: Path) -> None:
    """Refuse a state folder someone else could write to: owned by another user, or group- or
    world-writable. Raise StateError."""
    info = os.fstat(fd)
    if not stat.S_ISDIR(info.st_mode):
        raise StateError(f"state dir {path} is not a directory")
    if info.st_uid != os.geteuid():
        raise StateError(f"state dir {path} is owned by uid {info.st_uid}, not by this user; refused")
    if info.st_mode & 0o022:
        raise StateError(
            f"state dir {path} is group- or world-writable (mode {stat.S_IMODE(info.st_mode):o}); "
            "refused (check what is in it, then chmod go-w it)"
        )


def _make_parents(path: Path) -> None:
    """Create the missing parents of `path` with mode 0755 at most (whatever the umask)."""
    missing = []
    parent = path.parent
    while not os.path.lexists(parent) and parent != parent.parent:
        missing.append(parent)
        parent = parent.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(folder, 0o755)


def open_state_folder(path: Path) -> int:
    """`path` (the state dir, or a folder in it) as a directory descriptor, created 0700 if
    missing, never through a symlink, and refused unless only we can write to it. Raise StateError."""
    try:
        try:
            os.mkdir(path, 0o700)
        except FileNotFoundError:
            _make_parents(path)
            os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as error:
        raise StateError(f"cannot create state dir {path}: {error.strerror}") from None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as error:
        why = "is a symlink" if os.path.islink(path) else f"cannot be opened: {error.strerror}"
        raise StateError(f"state dir {path} {why}; refused") from None
    try:
        _check_own_directory(fd, path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def ensure_state_dir(state_dir: Path) -> None:
    """Create the state directory (0700, parents 0755 at most) or check the one there: a real
    directory (not a symlink), ours, not group/world-writable. Raise StateError. The first call
    of a process also removes the temp files of killed runs (`.<file>.<random>.tmp`)."""
    fd = open_state_folder(state_dir)
    try:
        key = str(state_dir)
        if key not in _cleaned_temps:
            _cleaned_temps.add(key)
            remove_stale_temps(fd)
    finally:
        os.close(fd)


_TEMP_NAME = re.compile(r"\..+\.[A-Za-z0-9_]{6,}\.tmp", re.DOTALL)  # write_atomically's temp names


def remove_stale_temps(folder_fd: int) -> None:
    """Remove the temp files killed runs left in a state folder (regular files named like
    write_atomically's temps, untouched for 10 minutes). Best effort."""
    with contextlib.suppress(OSError), os.scandir(folder_fd) as entries:
        for entry in entries:
            if not _TEMP_NAME.fullmatch(entry.name):
                continue
            with contextlib.suppress(OSError):
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISREG(info.st_mode) and time.time() - info.st_mtime > STALE_TEMP_AGE:
                    os.unlink(entry.name, dir_fd=folder_fd)


def remove_state_file(folder: Path, name: str, *, older_than: float | None = None) -> None:
    """Remove our own file `name` from a state folder (never a tenant's file): with `older_than`,
    only a regular file untouched for that many seconds. Best effort, never through a symlink."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            if older_than is not None:
                info = os.stat(name, dir_fd=fd, follow_symlinks=False)
                if not stat.S_ISREG(info.st_mode) or time.time() - info.st_mtime <= older_than:
                    return
            os.unlink(name, dir_fd=fd)
        finally:
            os.close(fd)


def open_state_file(path: Path, flags: int, mode: int = 0o600) -> int:
    """A state file opened without following a symlink, refused unless it is a regular file with
    one link (a hard link planted to an outside file must not be appended to or read). Raise
    OSError, StateError."""
    fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, mode)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise StateError(f"{path} is not a regular file; refused")
        if info.st_nlink != 1:
            raise StateError(f"{path} has {info.st_nlink} links; refused")
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_atomically(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace `path` with `data`: temp file in the same folder, fsync, rename. Raise StateError."""
    try:
        fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        raise StateError(f"cannot write {path}: {error.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as writer:
            writer.write(data)
            writer.flush()
            os.fsync(writer.fileno())
        os.chmod(temp_name, mode)
        os.replace(temp_name, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise StateError(f"cannot write {path}: {error.strerror}") from None


def read_json(path: Path) -> dict[str, Any]:
    """A JSON state file, or {} when it is missing, unreadable, not a regular file of one link,
    or in a folder others can write to (the next write replaces it)."""
    try:
        folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            _check_own_directory(folder, path.parent)
        finally:
            os.close(folder)
        fd = open_state_file(path, os.O_RDONLY)
        with os.fdopen(fd, "rb") as reader:
            document = json.loads(reader.read())
    except (OSError, ValueError, StateError):
        return {}
    return document if isinstance(document, dict) else {}


# ---------------------------------------------------------------- cooldowns and successful runs

RUNS_FILE = "runs.json"
RUNS_LOCK_FILE = "runs.lock"


def read_cooldowns(state_dir: Path) -> dict[str, float]:
    """Per tenant folder name, when multitenant-cleanup last cleaned it (epoch seconds)."""
    tenants = read_json(state_dir / COOLDOWNS_FILE).get("tenants")
    if not isinstance(tenants, dict):
        return {}
    cleaned: dict[str, float] = {}
    for name, value in tenants.items():
        epoch = value.get("epoch") if isinstance(value, dict) else None
        if isinstance(epoch, int | float) and not isinstance(epoch, bool):
            cleaned[str(name)] = float(epoch)
    return cleaned


def write_cooldowns(state_dir: Path, cleaned: Mapping[str, float]) -> None:
    """Replace cooldowns.json atomically. Raise StateError."""
    ensure_state_dir(state_dir)
    document = {
        "schema": 1,
        "tenants": {
            name: {"cleaned_at": iso_second(epoch), "epoch": epoch} for name, epoch in sorted(cleaned.items())
        },
    }
    write_atomically(state_dir / COOLDOWNS_FILE, json.dumps(document, indent=1).encode("utf-8"))


PENDING_FILE = "pending.json"


def read_pending(state_dir: Path) -> dict[str, str]:
    """Per tenant folder name, the action (`cleanup`/`emergency`) of a multitenant-cleanup that
    started on it and did not finish (a killed run): the next run completes it whatever the
    tenant's status or cooldown now says."""
    tenants = read_json(state_dir / PENDING_FILE).get("tenants")
    if not isinstance(tenants, dict):
        return {}
    return {str(name): action for name, action in tenants.items() if action in ("cleanup", "emergency")}


def write_pending(state_dir: Path, pending: Mapping[str, str]) -> None:
    """Replace pending.json atomically. Raise StateError."""
    ensure_state_dir(state_dir)
    document = {"schema": 1, "tenants": dict(sorted(pending.items()))}
    write_atomically(state_dir / PENDING_FILE, json.dumps(document, indent=1).encode("utf-8"))


def read_last_successes(state_dir: Path) -> dict[str, float]:
    """Per command, when it last finished successfully (epoch seconds)."""
    commands = read_json(state_dir / RUNS_FILE).get("commands")
    if not isinstance(commands, dict):
        return {}
    successes: dict[str, float] = {}
    for command, value in commands.items():
        epoch = value.get("epoch") if isinstance(value, dict) else None
        if isinstance(epoch, int | float) and not isinstance(epoch, bool):
            successes[str(command)] = float(epoch)
    return successes


def record_success(state_dir: Path, command: str, epoch: float) -> None:
    """Note in runs.json that `command` finished successfully at `epoch`. Raise StateError."""
    ensure_state_dir(state_dir)
    try:
        with hold(str(state_dir / RUNS_LOCK_FILE), 5):
            successes = read_last_successes(state_dir)
            successes[command] = epoch
            document = {
                "schema": 1,
                "commands": {
                    name: {"last_success": iso_second(when), "epoch": when}
                    for name, when in sorted(successes.items())
                },
            }
            write_atomically(state_dir / RUNS_FILE, json.dumps(document, indent=1).encode("utf-8"))
    except LockBusy:
        raise StateError(f"{state_dir / RUNS_LOCK_FILE} stayed busy") from None
    except LockUnsafe as error:
        raise StateError(f"{state_dir}: {error}") from None
