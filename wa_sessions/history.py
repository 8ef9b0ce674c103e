"""history.jsonl: the deletion log. Append (one encoder for every line), rotation, totals.

history.jsonl is append-only, one JSON object per line. A deletion is recorded *before* the file
is unlinked, in batches of up to 64 records per write (a run killed in between leaves records of
files that still exist, at most one batch, never a deleted file without a record); an unlink that
then fails appends an `"event": "failed"` line taking it back.

Rotation: when history.jsonl reaches HISTORY_ROTATE_BYTES it is renamed to history.jsonl.1; the
generation that .1 held before is first folded into history-summary.json (per-company totals),
so totals survive while the disk use stays bounded (two generations).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wa_sessions import layout
from wa_sessions.locks import LockBusy, LockUnsafe, hold
from wa_sessions.state import StateError, ensure_state_dir, open_state_file, read_json, write_atomically
from wa_sessions.times import iso_datetime, iso_ns, iso_second

if TYPE_CHECKING:
    from wa_sessions.rules import Deletion

HISTORY_FILE = "history.jsonl"


class PartialWrite(StateError):
    """A batch of history lines was cut short: `complete` lines of it are in the file whole."""

    def __init__(self, message: str, complete: int):
        super().__init__(message)
        self.complete = complete


class History:
    """An open history.jsonl, appended one line per write(). `command` is the command whose
    deletions it records (written into each line; None: not known)."""

    def __init__(self, state_dir: Path, command: str | None = None):
        self.command = command
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
def open_history(state_dir: Path, command: str | None = None) -> Iterator[History]:
    history = History(state_dir, command)
    try:
        yield history
    finally:
        history.close()


def read_history(state_dir: Path) -> Iterator[dict[str, Any]]:
    """The records of history.jsonl, oldest first; unreadable lines (a killed run's truncated last
    line) are passed over."""
    yield from _read_records(state_dir / HISTORY_FILE)


HISTORY_ROTATED_FILE = HISTORY_FILE + ".1"


def read_both_generations(state_dir: Path) -> Iterator[dict[str, Any]]:
    """The records of history.jsonl.1 then history.jsonl (what rotation keeps line by line),
    oldest first; unreadable lines are passed over."""
    yield from _read_records(state_dir / HISTORY_ROTATED_FILE)
    yield from _read_records(state_dir / HISTORY_FILE)


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


# ---------------------------------------------------------------- the one encoder

_json_string = json.encoder.encode_basestring  # json.dumps(text, ensure_ascii=False), in C


def _head(event: str, when: datetime, company: str) -> str:
    return f'{{"event":"{event}","time":"{iso_datetime(when)}","company":{_json_string(company)},"file":'


def _body(name: str, category: str, reason: str, size: int, mtime_ns: int, command: str) -> str:
    return (
        f'{_json_string(layout.display_name(name))},"category":{_json_string(category)},'
        f'"reason":{_json_string(reason)},"bytes":{size},"mtime":"{iso_ns(mtime_ns)}","command":{command}'
    )


def _command(command: str | None) -> str:
    return "null" if command is None else _json_string(command)


def deleted_lines(
    company: str, deletions: Sequence[Deletion], when: datetime, command: str | None
) -> list[str]:
    """The `deleted` lines of a batch (compact JSON, one object each: event, time, company, file,
    category, reason, bytes, mtime, command), built without a dict per file: a fleet's cleanup
    writes millions. `command` (None: not known) is the command that deletes them."""
    head = _head("deleted", when, company)
    shown = _command(command)
    return [
        f"{head}{_body(entry.name, entry.category, deletion.reason, entry.size, entry.mtime_ns, shown)}}}"
        for deletion in deletions
        for entry in (deletion.entry,)
    ]


def failed_line(
    company: str,
    name: str,
    category: str,
    reason: str,
    size: int,
    mtime_ns: int,
    when: datetime,
    error: str,
    command: str | None,
) -> str:
    """A `failed` line: the `deleted` line of the same file, taken back, with the error."""
    body = _body(name, category, reason, size, mtime_ns, _command(command))
    return f'{_head("failed", when, company)}{body},"error":{_json_string(error)}}}'


class LazyHistory:
    """Opens history.jsonl only when the first file is about to be deleted; its lines name
    `command` as the command that deleted."""

    def __init__(self, state_dir: Path, command: str):
        self._state_dir = state_dir
        self.command = command
        self._history: History | None = None
        self._error: StateError | None = None

    def get(self) -> History:
        """The history, opened on first use. Raise StateError (the same one for the rest of the
        run: a refused state dir is not tried again for every tenant)."""
        if self._error is not None:
            raise self._error
        if self._history is None:
            try:
                self._history = History(self._state_dir, self.command)
            except StateError as error:
                self._error = error
                raise
        return self._history

    def take_back(self, company: str, name: str, size: int, mtime_ns: int, why: str) -> None:
        """Take back the `deleted` record of a file that is there again (put back after an
        interrupted run, or from a purge's archive) with a `failed` line. Best effort."""
        with contextlib.suppress(StateError):
            line = failed_line(
                company,
                name,
                layout.classify(name),
                "",
                size,
                mtime_ns,
                datetime.now(UTC),
                why,
                self.command,
            )
            self.get().write_lines([line])

    def close(self) -> None:
        if self._history is not None:
            self._history.close()


@contextlib.contextmanager
def lazy_history(state_dir: Path, command: str) -> Iterator[LazyHistory]:
    history = LazyHistory(state_dir, command)
    try:
        yield history
    finally:
        history.close()
