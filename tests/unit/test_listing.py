"""The C listing (wa_sessions/_listing.c) yields exactly what scan.python_listing yields."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.privileges import NOBODY, drop_privileges

from wa_sessions.listing import ListedEntry, python_listing

c_listing = pytest.importorskip("wa_sessions._listing", reason="the C listing was not built").listing


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "company_1"
    path.mkdir()
    return path


def opened(path: Path) -> int:
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY)


@contextlib.contextmanager
def descriptor(path: Path) -> Iterator[int]:
    """A directory descriptor of `path`, closed afterwards."""
    fd = opened(path)
    try:
        yield fd
    finally:
        os.close(fd)


def both(path: Path) -> tuple[list[ListedEntry], list[ListedEntry]]:
    """Both listings of the same descriptor, one after the other."""
    with descriptor(path) as fd:
        return sorted(c_listing(fd)), sorted(python_listing(fd))


def hostile_tree(folder: Path) -> None:
    """Every kind of entry a tenant folder may hold, with names that are not plain ASCII."""
    (folder / "creds.json").write_text('{"nextPreKeyId": 3}')
    (folder / "pre-key-1.json").write_bytes(b"")
    (folder / "session-1.0.json").write_bytes(b"x" * 4097)
    os.utime(folder / "session-1.0.json", ns=(1_000_000_123, 1_700_000_000_987_654_321))
    os.link(folder / "creds.json", folder / "hard-link.json")
    (folder / "sub-directory").mkdir()
    os.symlink("/etc/passwd", folder / "session-2.0.json")
    os.symlink("missing-target", folder / "dangling.json")
    os.mkfifo(folder / "fifo.json")
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(folder / "socket.json"))
    finally:
        sock.close()
    with open(os.path.join(os.fsencode(folder), b"sender-key-\xff\xfe.json"), "wb") as out:
        out.write(b"{}")
    (folder / "tctoken-caf\u00e9@s.whatsapp.net.json").write_text("{}")
    (folder / "new\nline.json").write_text("{}")
    for own in (".cleanup.lock", ".cleanup.unlinking", ".hidden"):
        (folder / own).write_text("ours")


def test_c_listing_yields_what_scandir_yields_for_every_kind_of_entry(folder: Path) -> None:
    hostile_tree(folder)

    from_c, from_python = both(folder)

    assert from_c == from_python
    names = {entry[0] for entry in from_c}
    assert ".cleanup.lock" not in names and ".hidden" not in names
    assert os.fsdecode(b"sender-key-\xff\xfe.json") in names  # surrogateescape, as os.fsdecode
    assert len(from_c) == 12


def test_c_listing_reports_what_lstat_says_without_following_symlinks(folder: Path) -> None:
    hostile_tree(folder)

    entries = {entry[0]: entry for entry in both(folder)[0]}

    name, mode, inode, size, mtime_ns = entries["session-1.0.json"]
    info = os.lstat(folder / name)
    assert (mode, inode, size, mtime_ns) == (info.st_mode, info.st_ino, 4097, 1_700_000_000_987_654_321)
    assert stat.S_ISLNK(entries["session-2.0.json"][1])  # the link, not /etc/passwd
    assert entries["session-2.0.json"][3] == len("/etc/passwd")
    assert stat.S_ISDIR(entries["sub-directory"][1])
    assert stat.S_ISFIFO(entries["fifo.json"][1])
    assert stat.S_ISSOCK(entries["socket.json"][1])
    assert entries["hard-link.json"][2] == entries["creds.json"][2]


@pytest.mark.parametrize("list_entries", [c_listing, python_listing], ids=["C", "Python"])
def test_a_listing_starts_at_the_beginning_and_leaves_the_descriptor_open_and_rewound(
    folder: Path, list_entries: Any
) -> None:
    for index in range(50):
        (folder / f"pre-key-{index}.json").write_text("{}")
    with descriptor(folder) as fd:
        os.lseek(fd, 0, os.SEEK_END)  # whatever read the descriptor before
        first = list(list_entries(fd))
        again = list(list_entries(fd))
        partly = list_entries(fd)
        next(partly)
        del partly  # abandoned half-way
        with os.scandir(fd) as entries:  # what emergency-cleanup lists after its scan
            after = [entry.name for entry in entries]
        os.fstat(fd)  # still open
    assert len(first) == len(again) == len(after) == 50


def test_c_listing_of_a_closed_descriptor_is_an_os_error(folder: Path) -> None:
    fd = opened(folder)
    os.close(fd)

    with pytest.raises(OSError) as raised:
        c_listing(fd)

    assert raised.value.errno == errno.EBADF


def test_c_listing_refuses_what_is_not_a_descriptor() -> None:
    with pytest.raises(ValueError):
        c_listing(-1)
    with pytest.raises(TypeError):
        c_listing("3")


def test_c_listing_closed_early_yields_nothing_more(folder: Path) -> None:
    for index in range(5):
        (folder / f"pre-key-{index}.json").write_text("{}")
    with descriptor(folder) as fd:
        entries = c_listing(fd)
        next(entries)
        entries.close()
        assert list(entries) == []


def test_c_listing_leaves_out_entries_deleted_while_it_lists(folder: Path) -> None:
    for index in range(2000):
        (folder / f"session-{index}.0.json").write_text("{}")
    with descriptor(folder) as fd:
        entries = c_listing(fd)
        seen = [next(entries)[0]]
        for path in folder.iterdir():  # what a concurrent Baileys or cleanup may do
            if path.name != seen[0]:
                path.unlink()
        seen += [entry[0] for entry in entries]
    # readdir still returns the names it had read ahead; fstatat finds them gone: left out, no error
    assert seen == [seen[0]]
    assert (folder / seen[0]).exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another user for a real EACCES")
def test_c_listing_reports_an_entry_it_cannot_stat_with_its_errno(tmp_path: Path) -> None:
    """A folder that may be read but not searched (mode r--): readdir works, every fstatat fails
    with EACCES. Both listings, run by an unprivileged user in a forked child, say so per entry."""
    base = tmp_path / "base"
    base.mkdir()
    folder = base / "company_1"
    folder.mkdir()
    for name in ("creds.json", "session-1.0.json"):
        (folder / name).write_text("{}")
    os.chmod(base, 0o755)
    os.chmod(tmp_path, 0o755)
    os.chmod(folder, 0o444)
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        try:
            os.close(reader)
            drop_privileges(NOBODY, NOBODY)
            result = {"c": sorted(c_listing(fd)), "python": sorted(python_listing(fd))}
            os.write(writer, json.dumps(result).encode())
        finally:
            os._exit(0)
    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:
        output = pipe.read()
    os.waitpid(child, 0)
    os.close(fd)
    os.chmod(folder, 0o755)
    result = json.loads(output)
    expected = [[name, -1, errno.EACCES, 0, 0] for name in ("creds.json", "session-1.0.json")]
    assert result["c"] == expected
    assert result["python"] == expected


@pytest.mark.parametrize("list_entries", [c_listing, python_listing], ids=["C", "Python"])
@pytest.mark.parametrize(
    "mtime_ns",
    [10**19 + 5, 2**63 - 1, 2**63 + 10**9, -1, -1_500_000_000_123_456_789],
    ids=["year-2286", "int64-max", "past-int64", "just-before-1970", "year-1922"],
)
def test_a_listing_reports_any_mtime_exactly_far_future_and_before_1970_included(
    folder: Path, list_entries: Any, mtime_ns: int
) -> None:
    """A crafted mtime (`touch -d 2300-01-01`) must not wrap round into the past: the rules would
    judge the file very old. Integer nanoseconds, as os.stat's st_mtime_ns, whatever their size."""
    path = folder / "session-1.0.json"
    path.write_text("{}")
    try:
        os.utime(path, ns=(0, mtime_ns))
    except OverflowError:
        pytest.skip("this Python cannot set such an mtime")
    with descriptor(folder) as fd:
        (entry,) = list(list_entries(fd))
    assert entry[4] == os.lstat(path).st_mtime_ns
    if mtime_ns < 2**63:
        assert entry[4] == mtime_ns


def test_c_listing_holds_one_entry_at_a_time(folder: Path) -> None:
    """An iterator, not a list: a folder of millions of files is not held in memory by the scan."""
    for index in range(300):
        (folder / f"pre-key-{index}.json").write_text("{}")
    with descriptor(folder) as fd:
        entries = c_listing(fd)
        assert iter(entries) is entries
        assert not isinstance(entries, list | tuple)
        assert sum(1 for _ in entries) == 300
