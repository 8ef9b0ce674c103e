"""state.py: the state dir and atomic writes of small state files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from wa_sessions.state import StateError, ensure_state_dir, read_json, write_atomically


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
