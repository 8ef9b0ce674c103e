"""history.jsonl: the deletion log. Append (one encoder for every line) and read; rotation and
the totals across generations are history_totals.py's.

history.jsonl is append-only, one JSON object per line. A deletion is recorded *before* the file
is unlinked, in batches of up to 64 records per write (a run killed in between leaves records of
files that still exist, at most one batch, never a deleted file without a record); an unlink that
then fails appends an `"event": "failed"` line taking it back.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wa_sessions import layout
from wa_sessions.state import StateError, ensure_state_dir, open_state_file
from wa_sessions.times import iso_datetime, iso_ns

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
        from wa_sessions.history_totals import rotate_history  # it reads what this module writes

        with contextlib.suppress(StateError):
            rotate_history(state_dir)
        path = state_dir / HISTORY_FILE
        try:
            self._fd = open_state_file(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        except OSError as error:
            raise StateError(f"cannot open {path}: {error.strerror}") from None
        self.path = path
        self._cut = False  # a write of this run was cut short: the file may end inside a line
        self._repair_last_line()

    @contextlib.contextmanager
    def _appending(self) -> Iterator[None]:
        """Our processes' appends one at a time (`flock` on the file): a write of several pages
        grows the file page by page, and another run looking at its last byte meanwhile would
        take it for a line cut short and end it, leaving an empty line once the write is done."""
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _repair_last_line(self) -> None:
        """A run killed mid-write leaves a line without its newline: end it so ours start clean."""
        try:
            with self._appending():
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
        PartialWrite, saying how many of them are in the file whole, if not all could be written.

        A line written but for its newline is whole: it reads back as a record once ended (by
        the next write of this run, or the next run), so the caller deletes its file as it says."""
        if self._cut:  # an earlier write of this run was cut short: end its line first
            try:
                self._repair_last_line()
            except StateError as error:
                raise PartialWrite(str(error), 0) from None
            self._cut = False
        data = ("\n".join(lines) + "\n").encode("utf-8", "backslashreplace")
        view = memoryview(data)
        try:
            with self._appending():
                while view:
                    view = view[os.write(self._fd, view) :]
        except OSError as error:
            self._cut = True
            complete = data.count(b"\n", 0, len(data) - len(view) + 1)
            raise PartialWrite(f"cannot write {self.path}: {error.strerror}", complete) from None

    def close(self) -> None:
        os.close(self._fd)


def open_history(state_dir: Path, command: str | None = None) -> contextlib.closing[History]:
    """history.jsonl opened for appending (its lines naming `command`), closed at the end of the
    `with`. Raise StateError."""
    return contextlib.closing(History(state_dir, command))


def read_records(path: Path) -> Iterator[dict[str, Any]]:
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


HISTORY_ROTATED_FILE = HISTORY_FILE + ".1"


def read_both_generations(state_dir: Path) -> Iterator[dict[str, Any]]:
    """The records of history.jsonl.1 then history.jsonl (what rotation keeps line by line),
    oldest first; unreadable lines are passed over."""
    yield from read_records(state_dir / HISTORY_ROTATED_FILE)
    yield from read_records(state_dir / HISTORY_FILE)


def read_history(state_dir: Path) -> Iterator[dict[str, Any]]:
    """The records of history.jsonl, oldest first; unreadable lines (a killed run's truncated last
    line) are passed over."""
    yield from read_records(state_dir / HISTORY_FILE)


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
    tail = f',"command":{_command(command)}}}'
    display = layout.display_name
    return [  # _body's text, inlined: a call less per file
        f"{head}{_json_string(name if (name := entry.name).isascii() else display(name))},"
        f'"category":{_json_string(entry.category)},"reason":{_json_string(deletion.reason)},'
        f'"bytes":{entry.size},"mtime":"{iso_ns(entry.mtime_ns)}"{tail}'
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


def lazy_history(state_dir: Path, command: str) -> contextlib.closing[LazyHistory]:
    """A LazyHistory for `command`'s deletions, closed (if it was ever opened) at the end of the `with`."""
    return contextlib.closing(LazyHistory(state_dir, command))
