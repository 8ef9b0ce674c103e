"""What a purge (emergency-cleanup --purge-stale-dirs) keeps under `<state_dir>/purging/` and how
it sees a folder: the marker of a purge under way (`<dev>-<inode>.json`: the files as archived and
the archive), trusted only when its archive verifies, and the leftovers of killed runs.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass

from wa_sessions import layout
from wa_sessions.backup import BACKUPS_DIR, BackupError, Member, remove_archive, verify_archive
from wa_sessions.config import Settings
from wa_sessions.durations import format_age
from wa_sessions.layout import Entry
from wa_sessions.listing import python_listing
from wa_sessions.state import (
    STALE_TEMP_AGE,
    StateError,
    open_state_folder,
    read_json,
    remove_stale_temps,
    remove_state_file,
    write_atomically,
)
from wa_sessions.stores import Tenant

PURGING_DIR = "purging"
MARKER_SCHEMA = 2
PAIRED_REASON = (
    "paired (creds.json has `me`): only folders that never completed pairing are purged; "
    "add --include-paired to purge it too"
)


Identity = frozenset[tuple[str, int, int, int]]  # (name, inode, size, mtime_ns) of each file


@dataclass(frozen=True, slots=True)
class FolderListing:
    """Every entry of a tenant folder except our lock file; `other` names what is not a regular file."""

    entries: tuple[Entry, ...]
    other: tuple[str, ...]
    folder_mtime_ns: int

    @property
    def newest_ns(self) -> int:
        return max((entry.mtime_ns for entry in self.entries), default=self.folder_mtime_ns)

    def identity(self) -> Identity:
        return frozenset((e.name, e.inode, e.size, e.mtime_ns) for e in self.entries)


def list_folder(tenant_fd: int) -> FolderListing:
    """Every entry of the folder, dot-entries included, but our lock file. Raise OSError."""
    entries, other = [], []
    for name, mode, inode, size, mtime_ns in python_listing(tenant_fd, dots=True):
        if name == layout.LOCK_FILE:
            continue
        if mode < 0:
            raise OSError(inode, os.strerror(inode))
        if not stat.S_ISREG(mode):
            other.append(layout.display_name(name))
            continue
        category, key_name, _ = layout.classify_name(name)
        entries.append(Entry(name, category, key_name, True, "file", inode, size, mtime_ns))
    entries.sort(key=lambda entry: entry.name)
    return FolderListing(tuple(entries), tuple(sorted(other)), os.fstat(tenant_fd).st_mtime_ns)


@dataclass(frozen=True, slots=True)
class Marker:
    """A purge of one folder under way: what it archived, where, and the newest file it saw."""

    newest_ns: int
    subdir: str  # backups (kept) or purging (the temporary archive of --no-backup)
    archive: str
    members: tuple[Member, ...]

    def identity(self) -> Identity:
        return frozenset((m.name, m.inode, m.size, m.mtime_ns) for m in self.members)

    @property
    def kept(self) -> bool:
        return self.subdir == BACKUPS_DIR

    def shown(self, settings: Settings) -> str:
        return layout.display_name(str(settings.effective_state_dir / self.subdir / self.archive))


def marker_name(tenant_fd: int) -> str:
    info = os.fstat(tenant_fd)
    return f"{info.st_dev}-{info.st_ino}.json"


def read_marker(settings: Settings, tenant: Tenant, tenant_fd: int) -> Marker | None:
    """The marker of a purge of this very folder, if it can be trusted: its archive exists and
    reads back holding exactly the files it lists. A marker of an older version, a planted one,
    or one whose archive is gone is ignored (the folder is judged as it is)."""
    document = read_json(settings.effective_state_dir / PURGING_DIR / marker_name(tenant_fd))
    try:
        if document.get("schema") != MARKER_SCHEMA or document.get("folder") != tenant.name:
            return None
        newest, subdir, archive = document["newest_ns"], document["subdir"], document["archive"]
        if (
            type(newest) is not int
            or subdir not in (BACKUPS_DIR, PURGING_DIR)
            or not isinstance(archive, str)
        ):
            return None
        members = tuple(
            Member(str(name), int(inode), int(size), int(mtime), str(digest))
            for name, inode, size, mtime, digest in document["files"]
        )
    except (KeyError, TypeError, ValueError):
        return None
    try:
        verify_archive(settings.effective_state_dir, subdir, archive, tenant.name, members)
    except BackupError:
        return None
    return Marker(newest, subdir, archive, members)


def write_marker(settings: Settings, tenant_fd: int, tenant: Tenant, marker: Marker) -> None:
    """Note the purge about to remove the folder's files. Raise StateError."""
    folder = settings.effective_state_dir / PURGING_DIR
    os.close(open_state_folder(settings.effective_state_dir))
    os.close(open_state_folder(folder))
    document = {
        "schema": MARKER_SCHEMA,
        "folder": tenant.name,
        "newest_ns": marker.newest_ns,
        "subdir": marker.subdir,
        "archive": marker.archive,
        "files": [[m.name, m.inode, m.size, m.mtime_ns, m.sha256] for m in marker.members],
    }
    write_atomically(folder / marker_name(tenant_fd), json.dumps(document).encode("ascii"))


def drop_marker(settings: Settings, tenant_fd: int, marker: Marker) -> None:
    """The purge is over (done or rolled back): remove its marker, then its temporary archive."""
    remove_state_file(settings.effective_state_dir / PURGING_DIR, marker_name(tenant_fd))
    if not marker.kept:
        remove_archive(settings.effective_state_dir, marker.subdir, marker.archive)


def drop_archive(settings: Settings, marker: Marker) -> None:
    if not marker.kept:
        remove_archive(settings.effective_state_dir, marker.subdir, marker.archive)


def remove_leftovers(settings: Settings) -> None:
    """In `purging/`: the temp files of killed marker writes, and temporary archives (of
    `--no-backup`) that no marker names, untouched for 10 minutes. Best effort."""
    folder = settings.effective_state_dir / PURGING_DIR
    if not os.path.isdir(folder):
        return
    try:
        fd = open_state_folder(folder)
    except StateError:
        return
    try:
        remove_stale_temps(fd)
        with os.scandir(fd) as entries:
            names = {entry.name for entry in entries}
        named = set()
        for marker in (name for name in names if name.endswith(".json") and not name.startswith(".")):
            document = read_json(folder / marker)
            if _orphaned(settings, marker, document):
                remove_state_file(folder, marker)
                continue
            archive = document.get("archive")
            if isinstance(archive, str):
                named.add(archive)
        for name in names - named:
            if not name.endswith(".tar.gz") or name.startswith("."):
                continue
            remove_state_file(folder, name, older_than=STALE_TEMP_AGE)
    except OSError:
        pass
    finally:
        os.close(fd)


def _orphaned(settings: Settings, marker: str, document: dict[str, object]) -> bool:
    """Whether a marker outlived its folder (a run killed between the rmdir and the marker's
    removal): no folder of that name under root, or another folder (not that device and inode)."""
    folder = document.get("folder")
    if not isinstance(folder, str) or not folder or "/" in folder:
        return False
    try:
        info = os.stat(settings.root / folder, follow_symlinks=False)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return marker != f"{info.st_dev}-{info.st_ino}.json"


def stale_reason(
    listing: FolderListing, older_than: int, now: float, marker: Marker | None = None
) -> str | None:
    """Why the folder is stale, or None when it is not."""
    newest = listing.newest_ns if marker is None else marker.newest_ns
    age = now - newest / 1e9
    if age <= older_than:
        return None
    what = "newest file" if listing.entries or marker else "empty folder, modified"
    finishing = "; finishing an interrupted purge" if marker else ""
    return f"stale folder: {what} {format_age(age)} ago, older than {format_age(older_than)}{finishing}; folder removed"
