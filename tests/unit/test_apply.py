"""apply.py's batched history: the lines history.py writes without a dict per file are the
documented records as JSON, and a batch cut short deletes exactly the files whose records are
whole (record first, then delete)."""

from __future__ import annotations

import errno
import json
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wa_sessions import layout
from wa_sessions.apply import HISTORY_BATCH, apply_plan
from wa_sessions.history import (
    HISTORY_FILE,
    History,
    PartialWrite,
    deleted_lines,
    failed_line,
    open_history,
    read_history,
)
from wa_sessions.layout import Entry
from wa_sessions.rules import Deletion, Plan
from wa_sessions.stores.folder import FolderKeys
from wa_sessions.times import iso_second

# Names as os.scandir gives them: any text, non-UTF-8 bytes as lone surrogates (surrogateescape).
_names = st.text(
    st.characters(blacklist_categories=("Cs",)) | st.sampled_from(["\udc80", "\udcff", "\n", '"', "\\"]),
    min_size=1,
    max_size=40,
)
_seconds = st.integers(
    min_value=int(datetime(1900, 1, 1, tzinfo=UTC).timestamp()),
    max_value=int(datetime(9999, 12, 31, tzinfo=UTC).timestamp()),
)


@given(
    name=_names,
    category=st.sampled_from(layout.CATEGORIES),
    reason=_names,
    company=_names,
    size=st.integers(min_value=0, max_value=2**40),
    mtime_ns=_seconds.map(lambda second: second * 1_000_000_000) | st.integers(0, 2**62),
    now=_seconds,
    command=st.none() | _names,
)
def test_history_lines_are_the_documented_records_as_compact_json(
    name: str,
    category: str,
    reason: str,
    company: str,
    size: int,
    mtime_ns: int,
    now: int,
    command: str | None,
) -> None:
    deletion = Deletion(Entry(name, category, name, True, "file", 1, size, mtime_ns), reason)
    time = datetime.fromtimestamp(now, UTC) + timedelta(microseconds=999_999)
    record = {
        "event": "deleted",
        "time": iso_second(now),
        "company": company,
        "file": layout.display_name(name),
        "category": category,
        "reason": reason,
        "bytes": size,
        "mtime": iso_second(mtime_ns // 1_000_000_000),
        "command": command,
    }
    [line] = deleted_lines(company, [deletion], time, command)
    assert line == json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    failed = failed_line(company, name, category, reason, size, mtime_ns, time, "gone", command)
    assert failed == json.dumps(
        {**record, "event": "failed", "error": "gone"}, ensure_ascii=False, separators=(",", ":")
    )


@given(_seconds)
def test_iso_second_matches_datetime(second: int) -> None:
    expected = datetime.fromtimestamp(second, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    assert iso_second(second) == expected


def _records(count: int) -> list[str]:
    return [json.dumps({"event": "deleted", "file": f"session-{index}.json"}) for index in range(count)]


def test_write_lines_appends_the_batch_in_one_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writes: list[int] = []
    real_write = os.write

    with open_history(tmp_path) as history:

        def counting_write(fd: int, data: bytes | memoryview) -> int:
            if fd == history._fd:
                writes.append(len(data))
            return real_write(fd, data)

        monkeypatch.setattr(os, "write", counting_write)
        history.write_lines(_records(5))
        monkeypatch.undo()
    assert len(writes) == 1
    records = list(read_history(tmp_path))
    assert [record["file"] for record in records] == [f"session-{index}.json" for index in range(5)]


_LINE = len(_records(1)[0])  # each record of _records(3) is this long (one-digit indexes)


def _filling_write(history: History, budget: list[int]) -> Callable[[int, bytes | memoryview], int]:
    """os.write, with the history's file full after `budget[0]` more bytes (ENOSPC)."""
    real_write = os.write

    def filling_write(fd: int, data: bytes | memoryview) -> int:
        if fd != history._fd:
            return real_write(fd, data)
        if budget[0] == 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written = real_write(fd, bytes(data[: budget[0]]))
        budget[0] -= written
        return written

    return filling_write


@pytest.mark.parametrize(
    "cut", [0, 1, 40, _LINE - 1, _LINE, _LINE + 1, 2 * _LINE + 1, 3 * _LINE + 1, 3 * _LINE + 2]
)
def test_write_lines_cut_short_says_how_many_lines_are_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cut: int
) -> None:
    """The disk fills after `cut` bytes: PartialWrite counts the lines written whole, that is the
    records the history holds once the next run has ended its last line (a line written but for
    its newline is one: the apply step deletes its file, as the record says)."""
    lines = _records(3)
    with open_history(tmp_path) as history:
        monkeypatch.setattr(os, "write", _filling_write(history, [cut]))
        with pytest.raises(PartialWrite) as raised:
            history.write_lines(lines)
        monkeypatch.undo()
    data = (tmp_path / HISTORY_FILE).read_bytes()
    assert len(data) == cut
    with open_history(tmp_path):  # the next run: ends a line cut before its newline
        pass
    records = [record["file"] for record in read_history(tmp_path)]
    assert raised.value.complete == len(records)
    assert records == [json.loads(line)["file"] for line in lines][: raised.value.complete]
    assert "No space left" in str(raised.value)


@pytest.mark.parametrize("cut", [_LINE - 5, _LINE])
def test_a_write_after_one_cut_short_starts_on_its_own_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cut: int
) -> None:
    """Space comes back within the run: the next batch does not join the line the cut one left
    unended (its first record would be lost while its file is deleted)."""
    budget = [cut]
    with open_history(tmp_path) as history:
        monkeypatch.setattr(os, "write", _filling_write(history, budget))
        with pytest.raises(PartialWrite) as raised:
            history.write_lines(_records(2))
        budget[0] = 10_000
        history.write_lines([json.dumps({"event": "deleted", "file": "session-later.json"})])
        monkeypatch.undo()
    files = [record["file"] for record in read_history(tmp_path)]
    assert files == [*["session-0.json"][: raised.value.complete], "session-later.json"]


class _FailingHistory(History):
    """A history whose `fail_at`-th batch gets only `complete` of its lines written."""

    def __init__(self, state_dir: Path, fail_at: int, complete: int):
        super().__init__(state_dir)
        self.batches = 0
        self.fail_at = fail_at
        self.complete = complete

    def write_lines(self, lines: list[str]) -> None:  # type: ignore[override]
        self.batches += 1
        if self.batches == self.fail_at:
            super().write_lines(lines[: self.complete])
            raise PartialWrite("cannot write history.jsonl: No space left on device", self.complete)
        super().write_lines(lines)


def _folder_with_sessions(folder: Path, count: int) -> tuple[int, Plan]:
    folder.mkdir()
    deletions = []
    for index in range(count):
        path = folder / f"session-1555{index:07d}.0.json"
        path.write_bytes(b"{}")
        info = path.stat()
        entry = Entry(path.name, layout.SESSION, path.name, True, "file", info.st_ino, 2, info.st_mtime_ns)
        deletions.append(Deletion(entry, "older than 14d", path.name))
    return os.open(folder, os.O_RDONLY | os.O_DIRECTORY), Plan(tuple(deletions))


@pytest.mark.parametrize("complete", [10, HISTORY_BATCH])
def test_a_batch_cut_short_deletes_exactly_the_recorded_files(tmp_path: Path, complete: int) -> None:
    """`complete` of the second batch's lines whole (all of them: only its last newline cut)."""
    count = 3 * HISTORY_BATCH
    fd, plan = _folder_with_sessions(tmp_path / "company_1", count)
    history = _FailingHistory(tmp_path / "state", fail_at=2, complete=complete)
    try:
        applied = apply_plan(FolderKeys(fd), "1", plan, history)
    finally:
        history.close()
        os.close(fd)

    recorded = [record["file"] for record in read_history(tmp_path / "state")]
    deleted = [deletion.entry.name for deletion in applied.deleted]
    assert len(recorded) == HISTORY_BATCH + complete
    assert deleted == recorded
    assert set(os.listdir(tmp_path / "company_1")) == {d.entry.name for d in plan.deletions} - set(deleted)
    [(file, error)] = applied.errors
    if complete < HISTORY_BATCH:
        assert file == plan.deletions[HISTORY_BATCH + complete].entry.name
    else:  # nothing of the batch stays: the run stops before the next one
        assert file == "history.jsonl" and "the rest not deleted" in error
    assert "No space left" in error


def test_a_full_plan_goes_in_batches_each_recorded_before_its_unlinks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    count = 2 * HISTORY_BATCH + 5
    fd, plan = _folder_with_sessions(tmp_path / "company_1", count)
    folder = tmp_path / "company_1"
    seen: list[tuple[int, int]] = []  # (records in the history, files left) at each batch write
    history = History(tmp_path / "state")
    real_write_lines = history.write_lines

    def watching(lines: list[str]) -> None:
        seen.append((len(list(read_history(tmp_path / "state"))), len(os.listdir(folder))))
        real_write_lines(lines)

    monkeypatch.setattr(history, "write_lines", watching)
    try:
        applied = apply_plan(FolderKeys(fd), "1", plan, history)
    finally:
        history.close()
        os.close(fd)
    assert len(applied.deleted) == count and applied.errors == []
    assert seen == [(0, count), (HISTORY_BATCH, count - HISTORY_BATCH), (2 * HISTORY_BATCH, 5)]
    assert os.listdir(folder) == []


def test_a_run_opening_the_history_waits_for_a_write_in_progress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another run opening the history while a write is half done (a large batch grows the file
    page by page) does not take it for a line cut short: no newline lands inside the batch."""
    real_write = os.write
    half_written = threading.Event()
    lines = _records(3)
    with open_history(tmp_path) as history:

        def slow_write(fd: int, data: bytes | memoryview) -> int:
            if fd != history._fd or half_written.is_set():
                return real_write(fd, data)
            written = real_write(fd, bytes(data[:20]))  # mid-line
            half_written.set()
            time.sleep(0.3)  # the other run looks now
            return written

        def other_run() -> None:
            half_written.wait(5)
            with open_history(tmp_path):
                pass

        monkeypatch.setattr(os, "write", slow_write)
        other = threading.Thread(target=other_run)
        other.start()
        history.write_lines(lines)
        other.join()
        monkeypatch.undo()
    data = (tmp_path / HISTORY_FILE).read_bytes()
    assert data.split(b"\n") == [line.encode() for line in lines] + [b""]
