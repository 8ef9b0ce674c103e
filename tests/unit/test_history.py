"""history.py: history.jsonl (append-only, one encoder, tolerant reader)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from wa_sessions.history import HISTORY_FILE, History, open_history, read_history
from wa_sessions.state import StateError


def _write(history: History, record: dict[str, Any]) -> None:
    history.write_lines([json.dumps(record, ensure_ascii=False, separators=(",", ":"))])


RECORD = {
    "event": "deleted",
    "time": "2027-01-15T08:00:00Z",
    "company": "962302",
    "file": "pre-key-1.json",
    "category": "pre-key",
    "reason": "pre-key id 1 beyond the newest 50 (ids 763–812 kept)",
    "bytes": 120,
    "mtime": "2027-01-01T00:00:00Z",
}


def test_history_appends_one_json_line_per_record(tmp_path: Path) -> None:
    with open_history(tmp_path) as history:
        _write(history, RECORD)
        _write(history, {**RECORD, "file": "pre-key-2.json"})
    lines = (tmp_path / HISTORY_FILE).read_bytes().splitlines(keepends=True)
    assert len(lines) == 2
    assert all(line.endswith(b"\n") for line in lines)
    assert json.loads(lines[0]) == RECORD
    assert json.loads(lines[1])["file"] == "pre-key-2.json"


def test_history_keeps_what_earlier_runs_wrote(tmp_path: Path) -> None:
    with open_history(tmp_path) as history:
        _write(history, RECORD)
    with open_history(tmp_path) as history:
        _write(history, {**RECORD, "file": "pre-key-2.json"})
    assert [record["file"] for record in read_history(tmp_path)] == ["pre-key-1.json", "pre-key-2.json"]


def test_history_creates_the_state_dir_private(tmp_path: Path) -> None:
    state_dir = tmp_path / "root" / ".wa-sessions"
    with open_history(state_dir) as history:
        _write(history, RECORD)
    assert stat.S_IMODE(state_dir.stat().st_mode) & 0o077 == 0
    assert stat.S_IMODE((state_dir / HISTORY_FILE).stat().st_mode) & 0o077 == 0


def test_history_writes_non_ascii_as_utf8(tmp_path: Path) -> None:
    with open_history(tmp_path) as history:
        _write(history, RECORD)
    assert "763–812".encode() in (tmp_path / HISTORY_FILE).read_bytes()


def test_history_survives_a_surrogate_escaped_name_and_reads_it_back(tmp_path: Path) -> None:
    name = os.fsdecode(b"session-\xff.json")
    with open_history(tmp_path) as history:
        _write(history, {**RECORD, "file": name})
    (tmp_path / HISTORY_FILE).read_bytes().decode("utf-8")  # valid UTF-8 on disk
    assert [record["file"] for record in read_history(tmp_path)] == [name]


def test_history_ends_a_truncated_last_line_before_appending(tmp_path: Path) -> None:
    path = tmp_path / HISTORY_FILE
    path.write_bytes(json.dumps(RECORD).encode() + b'\n{"event": "deleted", "fi')
    with open_history(tmp_path) as history:
        _write(history, {**RECORD, "file": "pre-key-3.json"})
    assert [record["file"] for record in read_history(tmp_path)] == ["pre-key-1.json", "pre-key-3.json"]
    lines = path.read_bytes().split(b"\n")
    assert lines[1] == b'{"event": "deleted", "fi'
    assert json.loads(lines[2])["file"] == "pre-key-3.json"
    assert lines[3:] == [b""]


def test_read_history_passes_over_a_truncated_last_line(tmp_path: Path) -> None:
    (tmp_path / HISTORY_FILE).write_bytes(json.dumps(RECORD).encode() + b'\n{"event": "deleted", "fi')
    assert list(read_history(tmp_path)) == [RECORD]


def test_read_history_passes_over_lines_that_are_not_objects(tmp_path: Path) -> None:
    (tmp_path / HISTORY_FILE).write_bytes(
        b"\n".join([b"[1, 2]", b"42", b"", b"\xff\xfe garbage", json.dumps(RECORD).encode(), b"null"]) + b"\n"
    )
    assert list(read_history(tmp_path)) == [RECORD]


def test_read_history_of_a_missing_file_is_empty(tmp_path: Path) -> None:
    assert list(read_history(tmp_path / "never-written")) == []


def test_history_refuses_a_symlinked_history_file(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("")
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    (state_dir / HISTORY_FILE).symlink_to(target)
    with pytest.raises(StateError):
        History(state_dir)
    assert target.read_text() == ""
