"""state.py: history.jsonl (append-only, tolerant reader) and atomic writes."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from wa_sessions.state import (
    HISTORY_FILE,
    History,
    StateError,
    ensure_state_dir,
    open_history,
    read_history,
    read_json,
    write_atomically,
)

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
        history.write(RECORD)
        history.write({**RECORD, "file": "pre-key-2.json"})
    lines = (tmp_path / HISTORY_FILE).read_bytes().splitlines(keepends=True)
    assert len(lines) == 2
    assert all(line.endswith(b"\n") for line in lines)
    assert json.loads(lines[0]) == RECORD
    assert json.loads(lines[1])["file"] == "pre-key-2.json"


def test_history_keeps_what_earlier_runs_wrote(tmp_path: Path) -> None:
    with open_history(tmp_path) as history:
        history.write(RECORD)
    with open_history(tmp_path) as history:
        history.write({**RECORD, "file": "pre-key-2.json"})
    assert [record["file"] for record in read_history(tmp_path)] == ["pre-key-1.json", "pre-key-2.json"]


def test_history_creates_the_state_dir_private(tmp_path: Path) -> None:
    state_dir = tmp_path / "root" / ".wa-sessions"
    with open_history(state_dir) as history:
        history.write(RECORD)
    assert stat.S_IMODE(state_dir.stat().st_mode) & 0o077 == 0
    assert stat.S_IMODE((state_dir / HISTORY_FILE).stat().st_mode) & 0o077 == 0


def test_history_writes_non_ascii_as_utf8(tmp_path: Path) -> None:
    with open_history(tmp_path) as history:
        history.write(RECORD)
    assert "763–812".encode() in (tmp_path / HISTORY_FILE).read_bytes()


def test_history_survives_a_surrogate_escaped_name_and_reads_it_back(tmp_path: Path) -> None:
    name = os.fsdecode(b"session-\xff.json")
    with open_history(tmp_path) as history:
        history.write({**RECORD, "file": name})
    (tmp_path / HISTORY_FILE).read_bytes().decode("utf-8")  # valid UTF-8 on disk
    assert [record["file"] for record in read_history(tmp_path)] == [name]


def test_history_ends_a_truncated_last_line_before_appending(tmp_path: Path) -> None:
    path = tmp_path / HISTORY_FILE
    path.write_bytes(json.dumps(RECORD).encode() + b'\n{"event": "deleted", "fi')
    with open_history(tmp_path) as history:
        history.write({**RECORD, "file": "pre-key-3.json"})
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


def test_ensure_state_dir_refuses_a_path_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("")
    with pytest.raises(StateError):
        ensure_state_dir(tmp_path / "state")


def test_write_atomically_replaces_the_file_and_leaves_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "wa_sessions.prom"
    path.write_bytes(b"old")
    write_atomically(path, b"new contents\n")
    assert path.read_bytes() == b"new contents\n"
    assert sorted(os.listdir(tmp_path)) == ["wa_sessions.prom"]


def test_write_atomically_sets_the_mode(tmp_path: Path) -> None:
    path = tmp_path / "report.prom"
    write_atomically(path, b"x", mode=0o644)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    write_atomically(tmp_path / "cooldowns.json", b"{}")
    assert stat.S_IMODE((tmp_path / "cooldowns.json").stat().st_mode) == 0o600


def test_write_atomically_replaces_a_symlink_instead_of_writing_through_it(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_bytes(b"untouched")
    link = tmp_path / "cooldowns.json"
    link.symlink_to(target)
    write_atomically(link, b"{}")
    assert target.read_bytes() == b"untouched"
    assert not link.is_symlink()
    assert link.read_bytes() == b"{}"


def test_write_atomically_into_a_missing_folder_raises_state_error(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="cannot write"):
        write_atomically(tmp_path / "absent" / "file.json", b"{}")


def test_write_atomically_leaves_the_old_file_when_the_rename_fails(tmp_path: Path) -> None:
    path = tmp_path / "target"
    path.mkdir()  # os.replace of a file onto a directory fails
    with pytest.raises(StateError):
        write_atomically(path, b"{}")
    assert path.is_dir()
    assert os.listdir(tmp_path) == ["target"]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'{"962302": "2027-01-15T08:00:00Z"}', {"962302": "2027-01-15T08:00:00Z"}),
        (b"{trunc", {}),
        (b"[]", {}),
    ],
)
def test_read_json_gives_an_empty_mapping_for_anything_unusable(
    tmp_path: Path, data: bytes, expected: dict[str, str]
) -> None:
    (tmp_path / "cooldowns.json").write_bytes(data)
    assert read_json(tmp_path / "cooldowns.json") == expected


def test_read_json_of_a_missing_file_is_empty(tmp_path: Path) -> None:
    assert read_json(tmp_path / "absent.json") == {}
