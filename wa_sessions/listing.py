"""The one directory listing: the entries of a folder but dot-entries, lstat'ed relative to its
descriptor, as (name, st_mode, st_ino, st_size, st_mtime_ns) tuples.

Done in C by wa_sessions/_listing.c (readdir + fstatat(AT_SYMLINK_NOFOLLOW), no DirEntry and no
stat_result per file) when it was built at install, and by os.scandir otherwise: the same
entries either way. `wa-sessions --version` says which.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Iterator
from typing import Protocol

#: One listed entry: (name, st_mode, st_ino, st_size, st_mtime_ns), or (name, -1, errno, 0, 0)
#: when its lstat failed with anything but ENOENT (a vanished entry is left out).
ListedEntry = tuple[str, int, int, int, int]


class Listing(Protocol):
    """What a listing returns: its entries, one at a time, and `close()` to let go early."""

    def __iter__(self) -> Iterator[ListedEntry]: ...

    def close(self) -> None: ...


def python_listing(tenant_fd: int, *, dots: bool = False) -> Generator[ListedEntry, None, None]:
    """Given a directory descriptor, yield its entries but dot-entries (with `dots`, those too:
    what a purge archives and the recovery of a killed run looks for), lstat'ed relative to it:
    what the C listing (wa_sessions/_listing.c) yields, with os.scandir and DirEntry.stat. Both
    start at the beginning of the directory and leave its offset there."""
    os.lseek(tenant_fd, 0, os.SEEK_SET)  # os.scandir(fd) lists from the descriptor's offset
    with os.scandir(tenant_fd) as entries:
        for entry in entries:
            name = entry.name
            if name[0] == "." and not dots:
                continue
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            except OSError as error:
                yield name, -1, error.errno or 0, 0, 0
                continue
            yield name, info.st_mode, info.st_ino, info.st_size, info.st_mtime_ns


#: The listing the scan uses: the C one (no DirEntry and no stat_result per file) when it was
#: built at install, else python_listing. `wa-sessions --version` says which.
listing: Callable[[int], Listing]
try:
    from wa_sessions._listing import listing as _c_listing

    listing = _c_listing
    LISTING = "C"
except ImportError:  # not built (no compiler at install): the pure-Python listing does the same
    listing = python_listing
    LISTING = "Python"


def dot_names(folder_fd: int) -> list[str]:
    """The names of a folder's dot-entries (ours: lock file, files set aside), nothing stat'ed:
    what the recovery of a killed run looks for under every lock taken."""
    os.lseek(folder_fd, 0, os.SEEK_SET)
    with os.scandir(folder_fd) as entries:
        return [entry.name for entry in entries if entry.name[0] == "."]
