"""State under `<state_dir>`: the deletion history and per-tenant cooldowns.

history.jsonl is append-only, one JSON object per line. A deletion is recorded *before* the file
is unlinked (a run killed in between leaves a record of a file that still exists, never a deleted
file without a record); an unlink that then fails appends an `"event": "failed"` line. Other state
files are replaced atomically (temp file, fsync, rename).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

HISTORY_FILE = "history.jsonl"
COOLDOWNS_FILE = "cooldowns.json"


class StateError(Exception):
    """The state directory or one of its files could not be written."""


def ensure_state_dir(state_dir: Path) -> None:
    """Create the state directory (0700). Raise StateError if it cannot be created."""
    try:
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as error:
        raise StateError(f"cannot create state dir {state_dir}: {error.strerror}") from None
    if state_dir.is_symlink() or not state_dir.is_dir():
        raise StateError(f"state dir {state_dir} is not a directory")


class History:
    """An open history.jsonl, appended one line per write()."""

    def __init__(self, state_dir: Path):
        ensure_state_dir(state_dir)
        path = state_dir / HISTORY_FILE
        try:
            self._fd = os.open(
                path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
            )
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
            with open(self.path, "rb") as reader:
                reader.seek(size - 1)
                last = reader.read(1)
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
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
        try:
            self._write_bytes(line.encode("utf-8", "backslashreplace"))
        except OSError as error:
            raise StateError(f"cannot write {self.path}: {error.strerror}") from None

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
    path = state_dir / HISTORY_FILE
    try:
        reader = path.open("rb")
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
    """A JSON state file, or {} when it is missing or unreadable (the next write replaces it)."""
    try:
        document = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}
