"""State under `<state_dir>`: the deletion history, per-tenant cooldowns, successful runs.

history.jsonl is append-only, one JSON object per line. A deletion is recorded *before* the file
is unlinked, in batches of up to 64 records per write (a run killed in between leaves records of
files that still exist, at most one batch, never a deleted file without a record); an unlink that
then fails appends an `"event": "failed"` line. Other state
files are replaced atomically (temp file, fsync, rename).

History rotation: when history.jsonl reaches HISTORY_ROTATE_BYTES it is renamed to
history.jsonl.1; the generation that .1 held before is first folded into history-summary.json
(per-company totals), so totals survive while the disk use stays bounded (two generations).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wa_sessions.locks import LockBusy, LockUnsafe, hold

HISTORY_FILE = "history.jsonl"
COOLDOWNS_FILE = "cooldowns.json"


# One encoder for every history line (json.dumps with options builds a new one per call).
_encode_record = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class StateError(Exception):
    """The state directory or one of its files could not be written."""


class PartialWrite(StateError):
    """A batch of history lines was cut short: `complete` lines of it are in the file whole."""

    def __init__(self, message: str, complete: int):
        super().__init__(message)
        self.complete = complete


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


class History:
    """An open history.jsonl, appended one line per write()."""

    def __init__(self, state_dir: Path):
        ensure_state_dir(state_dir)
        with contextlib.suppress(StateError):
            rotate_history(state_dir)
        path = state_dir / HISTORY_FILE
        try:
            self._fd = open_state_file(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        except OSError as error:
            raise StateError(f"cannot open {path}: {error.strerror}") from None
        self.path = path
        self._repair_last_line()

    def _repair_last_line(self) -> None:
        """A run killed mid-write leaves a line without its newline: end it so ours start clean."""
        try:
            size = os.fstat(self._fd).st_size
            if size == 0:
                return
            reader = open_state_file(self.path, os.O_RDONLY)
            try:
                last = os.pread(reader, 1, size - 1)
            finally:
                os.close(reader)
            if last != b"\n":
                self._write_bytes(b"\n")
        except OSError as error:
            raise StateError(f"cannot write {self.path}: {error.strerror}") from None

    def _write_bytes(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def write(self, record: Mapping[str, Any]) -> None:
        """Append one record. Raise StateError if it could not be written whole."""
        self.write_lines([_encode_record(record)])

    def write_lines(self, lines: Sequence[str]) -> None:
        """Append encoded records (one JSON object each, no newline) in one write. Raise
        PartialWrite, saying how many of them are in the file whole, if not all could be written."""
        data = ("\n".join(lines) + "\n").encode("utf-8", "backslashreplace")
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as error:
            complete = data.count(b"\n", 0, len(data) - len(view))
            raise PartialWrite(f"cannot write {self.path}: {error.strerror}", complete) from None

    def close(self) -> None:
        os.close(self._fd)


@contextlib.contextmanager
def open_history(state_dir: Path) -> Iterator[History]:
    history = History(state_dir)
    try:
        yield history
    finally:
        history.close()


def read_history(state_dir: Path) -> Iterator[dict[str, Any]]:
    """The records of history.jsonl, oldest first; unreadable lines (a killed run's truncated last
    line) are passed over."""
    yield from _read_records(state_dir / HISTORY_FILE)


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


# ---------------------------------------------------------------- history rotation and totals

HISTORY_ROTATED_FILE = HISTORY_FILE + ".1"
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
    return _iso(moment.timestamp())


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
    for record in _read_records(path):
        company = record.get("company")
        if isinstance(company, str):
            totals.setdefault(company, DeletionTotals()).add(record)


def _read_records(path: Path) -> Iterator[dict[str, Any]]:
    try:
        reader = os.fdopen(open_state_file(path, os.O_RDONLY), "rb")
    except FileNotFoundError:
        return
    except OSError as error:
        raise StateError(f"cannot read {path}: {error.strerror}") from None
    with reader:
        for raw in reader:
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            if isinstance(record, dict):
                yield record


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
            name: {"cleaned_at": _iso(epoch), "epoch": epoch} for name, epoch in sorted(cleaned.items())
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
                    name: {"last_success": _iso(when), "epoch": when}
                    for name, when in sorted(successes.items())
                },
            }
            write_atomically(state_dir / RUNS_FILE, json.dumps(document, indent=1).encode("utf-8"))
    except LockBusy:
        raise StateError(f"{state_dir / RUNS_LOCK_FILE} stayed busy") from None
    except LockUnsafe as error:
        raise StateError(f"{state_dir}: {error}") from None


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
