"""The checked delete's fast paths (stores/folder_delete.py) decide as the general ones do: the
aside name's length in bytes (an ASCII name is not encoded), the check of the aside, and the
times of the history lines (times.iso_ns)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wa_sessions.layout import Entry
from wa_sessions.rules import Deletion
from wa_sessions.stores import folder_delete
from wa_sessions.stores.folder_delete import ASIDE_PREFIX, aside_name, unlink_unless_changed
from wa_sessions.times import clamp_second, iso_ns, iso_second

_ROOM = 255 - len(ASIDE_PREFIX)  # the longest name, in bytes, that can be set aside


@pytest.mark.parametrize(
    ("name", "fits"),
    [
        ("s" * _ROOM, True),
        ("s" * (_ROOM + 1), False),
        ("é" * (_ROOM // 2), True),  # 2 bytes a character
        ("é" * (_ROOM // 2 + 1), False),  # fewer characters than room, more bytes
        ("日" * (_ROOM // 3 + 1), False),
        (os.fsdecode(b"\xff" * _ROOM), True),  # a byte that is not UTF-8: one byte on disk
        (os.fsdecode(b"\xff" * (_ROOM + 1)), False),
    ],
)
def test_aside_name_counts_bytes_not_characters(name: str, fits: bool) -> None:
    assert (aside_name(name) is not None) is fits
    assert (len(os.fsencode(ASIDE_PREFIX + name)) <= 255) is fits


def _deletion(folder: Path, name: str) -> Deletion:
    info = os.lstat(os.path.join(os.fsencode(folder), os.fsencode(name)))
    entry = Entry(name, "session", name, True, "file", info.st_ino, info.st_size, info.st_mtime_ns)
    return Deletion(entry, "older than 14d")


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield tmp_path, fd
    finally:
        os.close(fd)


def _write(folder: Path, name: str, data: bytes) -> None:
    with open(os.path.join(os.fsencode(folder), os.fsencode(name)), "wb") as file:
        file.write(data)


_NAMES = [
    "session-1555.0.json",
    "session-é.0.json",
    "session-" + "s" * (_ROOM - 8),  # the longest that is set aside
    "session-" + "s" * (_ROOM - 7),  # too long to set aside: checked, then unlinked
    "session-" + "é" * ((_ROOM - 8) // 2 + 1),  # too long in bytes only
]


@pytest.mark.parametrize("name", _NAMES)
def test_a_file_as_planned_is_deleted_set_aside_only_when_the_name_allows(
    folder: tuple[Path, int], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, fd = folder
    _write(path, name, b"{}")
    deletion = _deletion(path, name)
    renamed: list[str] = []
    real_rename = os.rename

    def rename(source: str, target: str, **kwargs: int) -> None:
        renamed.append(target)
        real_rename(source, target, **kwargs)

    monkeypatch.setattr(os, "rename", rename)
    assert unlink_unless_changed(deletion, fd) is None
    assert os.listdir(path) == []
    assert renamed == ([] if aside_name(name) is None else [ASIDE_PREFIX + name])


@pytest.mark.parametrize("name", _NAMES)
def test_a_file_changed_after_the_plan_is_kept_under_its_name(folder: tuple[Path, int], name: str) -> None:
    path, fd = folder
    _write(path, name, b"{}")
    deletion = _deletion(path, name)
    _write(path, name, b'{"rewritten": true}')  # same inode, new size
    assert unlink_unless_changed(deletion, fd) == "modified since the plan"
    assert os.listdir(os.fsencode(path)) == [os.fsencode(name)]


def test_a_file_replaced_or_turned_into_a_link_is_kept(folder: tuple[Path, int]) -> None:
    path, fd = folder
    _write(path, "session-1.0.json", b"{}")
    _write(path, "session-2.0.json", b"{}")
    replaced = _deletion(path, "session-1.0.json")
    linked = _deletion(path, "session-2.0.json")
    os.unlink(path / "session-1.0.json")
    _write(path, "session-keep.0.json", b"{}")  # holds the old inode number away from the new file
    _write(path, "session-1.0.json", b"{}")
    os.unlink(path / "session-2.0.json")
    os.symlink("session-keep.0.json", path / "session-2.0.json")
    assert unlink_unless_changed(replaced, fd) == "replaced since the plan"
    assert unlink_unless_changed(linked, fd) == "no longer a regular file"
    assert sorted(os.listdir(path)) == ["session-1.0.json", "session-2.0.json", "session-keep.0.json"]
    assert folder_delete.changed_since_plan(linked, fd) == "no longer a regular file"


_BOUNDS = [-62135596800, 253402300799]  # what datetime can show, first and last second


@given(st.one_of(st.integers(min_value=-(2**63), max_value=2**63 - 1), st.sampled_from(_BOUNDS)))
def test_iso_ns_is_iso_second_of_the_whole_seconds(epoch_ns: int) -> None:
    assert iso_ns(epoch_ns) == iso_second(epoch_ns // 1_000_000_000)


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_iso_ns_matches_datetime_clamped(second: int) -> None:
    moment = datetime.fromtimestamp(clamp_second(second), UTC)
    assert iso_ns(second * 1_000_000_000 + 999_999_999) == moment.isoformat().replace("+00:00", "Z")
