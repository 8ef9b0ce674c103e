"""`wa-sessions emergency-cleanup --purge-stale-dirs`: remove whole stale tenant folders.

A folder whose newest file is older than `--older-than` is archived (to
`<state_dir>/backups/<name>-<UTC timestamp>.tar.gz`; with `--no-backup` to a temporary archive in
`<state_dir>/purging/`, removed once the folder is gone) and the archive read back and verified.
Then `<state_dir>/purging/<dev>-<inode>.json` notes the purge (the folder's files as archived,
with their SHA-256, and the archive), and the one deletion engine (apply.py) removes the files
from a frozen plan whose order keeps the folder usable longest: creds.json goes last.

A tenant that comes back to life stops the purge: the first file not as archived (or a file
that appears before the folder can be removed) ends the deletions, and every file removed is put
back from the verified archive, never replacing a file the writer made since. The folder is left
whole and the tenant reported skipped.

A run killed part-way leaves the marker. The next run trusts it only when its archive exists and
verifies; then a folder still holding only files as archived is finished (judged by the newest
file it had), and one that changed since is rolled back from the archive.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from wa_sessions import layout
from wa_sessions.actions.common import (
    UsageError,
    failed,
    finish,
    tenant_state,
    unavailable,
    validate_companies,
)
from wa_sessions.apply import Applied, apply_plan
from wa_sessions.backup import (
    BACKUPS_DIR,
    BackupError,
    Member,
    archive_folder,
    archive_name,
    remove_archive,
    restore_missing,
    verify_archive,
)
from wa_sessions.config import ConfigError, Settings, parse_bounded_duration
from wa_sessions.durations import OLDER_THAN_BOUNDS, format_age
from wa_sessions.history import LazyHistory, lazy_history
from wa_sessions.layout import Entry
from wa_sessions.listing import python_listing
from wa_sessions.locks import LockBusy, LockUnsafe, tenant_lock, tenant_lock_is_held
from wa_sessions.results import LOCK_BUSY, Outcome, Result, TenantState, skipped
from wa_sessions.rules import purge_plan
from wa_sessions.state import (
    STALE_TEMP_AGE,
    StateError,
    open_state_folder,
    read_json,
    remove_stale_temps,
    write_atomically,
)
from wa_sessions.stores import Tenant, TenantUnavailable
from wa_sessions.stores.folder import FolderKeys, open_folder_store, open_tenant, scan_tenant
from wa_sessions.stores.folder_delete import recover_leftovers, remove_emptied_folder
from wa_sessions.times import iso_datetime, iso_ns, utc_now

COMMAND = "emergency-cleanup"
ACTION = "emergency"
PURGING_DIR = "purging"
MARKER_SCHEMA = 2


Identity = frozenset[tuple[str, int, int, int]]  # (name, inode, size, mtime_ns) of each file


@dataclass(frozen=True, slots=True)
class _Listing:
    """Every entry of a tenant folder except our lock file; `other` names what is not a regular file."""

    entries: tuple[Entry, ...]
    other: tuple[str, ...]
    folder_mtime_ns: int

    @property
    def newest_ns(self) -> int:
        return max((entry.mtime_ns for entry in self.entries), default=self.folder_mtime_ns)

    def identity(self) -> Identity:
        return frozenset((e.name, e.inode, e.size, e.mtime_ns) for e in self.entries)


def _list_folder(tenant_fd: int) -> _Listing:
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
    return _Listing(tuple(entries), tuple(sorted(other)), os.fstat(tenant_fd).st_mtime_ns)


@dataclass(frozen=True, slots=True)
class _Marker:
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


def _marker_name(tenant_fd: int) -> str:
    info = os.fstat(tenant_fd)
    return f"{info.st_dev}-{info.st_ino}.json"


def _read_marker(settings: Settings, tenant: Tenant, tenant_fd: int) -> _Marker | None:
    """The marker of a purge of this very folder, if it can be trusted: its archive exists and
    reads back holding exactly the files it lists. A marker of an older version, a planted one,
    or one whose archive is gone is ignored (the folder is judged as it is)."""
    document = read_json(settings.effective_state_dir / PURGING_DIR / _marker_name(tenant_fd))
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
    return _Marker(newest, subdir, archive, members)


def _write_marker(settings: Settings, tenant_fd: int, tenant: Tenant, marker: _Marker) -> None:
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
    write_atomically(folder / _marker_name(tenant_fd), json.dumps(document).encode("ascii"))


def _drop_marker(settings: Settings, tenant_fd: int, marker: _Marker) -> None:
    """The purge is over (done or rolled back): remove its marker, then its temporary archive."""
    with contextlib.suppress(OSError):
        os.unlink(settings.effective_state_dir / PURGING_DIR / _marker_name(tenant_fd))
    if not marker.kept:
        remove_archive(settings.effective_state_dir, marker.subdir, marker.archive)


def _stale_reason(
    listing: _Listing, older_than: int, now: float, marker: _Marker | None = None
) -> str | None:
    """Why the folder is stale, or None when it is not."""
    newest = listing.newest_ns if marker is None else marker.newest_ns
    age = now - newest / 1e9
    if age <= older_than:
        return None
    what = "newest file" if listing.entries or marker else "empty folder, modified"
    finishing = "; finishing an interrupted purge" if marker else ""
    return f"stale folder: {what} {format_age(age)} ago, older than {format_age(older_than)}{finishing}; folder removed"


def parse_older_than(older_than: str | None) -> int:
    """`--older-than` in seconds, within OLDER_THAN_BOUNDS (1m..3650d). Raise UsageError."""
    if older_than is None:
        raise UsageError("--purge-stale-dirs needs --older-than AGE (e.g. 10m, 6h, 30d)")
    try:
        return parse_bounded_duration(older_than, "--older-than", *OLDER_THAN_BOUNDS)
    except ConfigError as error:
        raise UsageError(str(error)) from None


def run_purge(
    settings: Settings,
    companies: Sequence[str],
    *,
    older_than: str | None,
    yes: bool,
    backup: bool,
    dry_run: bool,
) -> Result:
    """Archive and remove every tenant folder whose newest file is older than `older_than`.
    Raise UsageError without `yes` unless `dry_run`, or for a bad age."""
    validate_companies(companies)
    max_age = parse_older_than(older_than)
    if not yes and not dry_run:
        raise UsageError(
            "--purge-stale-dirs removes whole folders: add --yes to confirm, or --dry-run to see what it would remove"
        )
    generated_at = utc_now()
    result = Result(
        COMMAND,
        str(settings.root),
        iso_datetime(generated_at),
        dry_run=dry_run,
        notified=False,
        purge_older_than=max_age,
        purge_backup=backup,
    )
    with open_folder_store(settings) as store, lazy_history(settings.effective_state_dir, COMMAND) as history:
        root_fd = store.root_fd
        tenants = store.tenants(companies)
        if not dry_run:
            _remove_leftovers(settings)
        for tenant in tenants:
            result.tenants.append(_purge_tenant(settings, root_fd, tenant, result, history, generated_at))
    purged = [
        {
            "company": outcome.before.company,
            "path": outcome.before.path,
            "files": len(outcome.deleted),
            "bytes": outcome.bytes_freed,
            "backup": outcome.backup,
        }
        for outcome in result.tenants
        if outcome.action == ACTION and outcome.skipped_reason is None and outcome.files_after == 0
    ]
    finish(settings, result, purged=purged)
    return result


def _remove_leftovers(settings: Settings) -> None:
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
                with contextlib.suppress(OSError):
                    os.unlink(marker, dir_fd=fd)
                continue
            archive = document.get("archive")
            if isinstance(archive, str):
                named.add(archive)
        for name in names - named:
            if not name.endswith(".tar.gz") or name.startswith("."):
                continue
            with contextlib.suppress(OSError):
                info = os.stat(name, dir_fd=fd, follow_symlinks=False)
                if stat.S_ISREG(info.st_mode) and time.time() - info.st_mtime > STALE_TEMP_AGE:
                    os.unlink(name, dir_fd=fd)
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


def _purge_tenant(
    settings: Settings,
    root_fd: int,
    tenant: Tenant,
    result: Result,
    history: LazyHistory,
    when: datetime,
) -> Outcome:
    """One folder; anything its files make go wrong is that tenant's error, never the run's."""
    try:
        with open_tenant(root_fd, tenant) as tenant_fd:
            return _purge_open_tenant(settings, root_fd, tenant, tenant_fd, result, history, when)
    except TenantUnavailable as error:
        return unavailable(settings, tenant, error, result.dry_run)
    except Exception as error:
        return failed(settings, tenant, error, result.dry_run)


def _purge_open_tenant(
    settings: Settings,
    root_fd: int,
    tenant: Tenant,
    tenant_fd: int,
    result: Result,
    history: LazyHistory,
    when: datetime,
) -> Outcome:
    now = time.time()
    before = tenant_state(tenant, scan_tenant(tenant_fd, now), settings)
    try:
        listing = _list_folder(tenant_fd)
    except OSError as error:
        raise TenantUnavailable(f"cannot list tenant folder: {error.strerror}") from None
    marker = _read_marker(settings, tenant, tenant_fd)
    finishing = marker if marker is not None and listing.identity() <= marker.identity() else None
    newest = iso_ns(listing.newest_ns if finishing is None else finishing.newest_ns)
    outcome = _purge_judged(
        settings, root_fd, tenant, tenant_fd, (before, listing, marker), result, history, when
    )
    outcome.newest_file_at = newest
    return outcome


def _purge_judged(
    settings: Settings,
    root_fd: int,
    tenant: Tenant,
    tenant_fd: int,
    seen: tuple[TenantState, _Listing, _Marker | None],
    result: Result,
    history: LazyHistory,
    when: datetime,
) -> Outcome:
    """A folder as listed before its lock: kept, skipped, or (under the lock) purged."""
    before, listing, marker = seen
    finishing = marker if marker is not None and listing.identity() <= marker.identity() else None
    reason = _stale_reason(listing, result.purge_older_than or 0, time.time(), finishing)
    if reason is None and marker is None:
        return Outcome(before, "none", result.dry_run, files_after=before.files)
    if listing.other and marker is None:
        why = f"holds {', '.join(listing.other[:5])}: only folders of regular files are purged"
        return skipped(before, result.dry_run, why)
    try:
        if result.dry_run:
            if tenant_lock_is_held(tenant_fd):
                return skipped(before, True, LOCK_BUSY)
            return _purge_plan(settings, tenant, before, listing, marker, reason, result, when)
        with tenant_lock(tenant_fd, settings.locks.wait):
            return _purge_locked(
                settings, root_fd, tenant, tenant_fd, (before, listing), result, history, when
            )
    except LockBusy:
        return skipped(before, result.dry_run, LOCK_BUSY)
    except LockUnsafe as error:
        return skipped(before, result.dry_run, str(error), (layout.LOCK_FILE, str(error)))


def _purge_plan(
    settings: Settings,
    tenant: Tenant,
    before: TenantState,
    listing: _Listing,
    marker: _Marker | None,
    reason: str | None,
    result: Result,
    when: datetime,
) -> Outcome:
    """A dry run: what a real purge would archive and remove (no lock taken, nothing created)."""
    if marker is not None and not listing.identity() <= marker.identity():
        note = f"changed since an interrupted purge: would be put back whole from {marker.shown(settings)}"
        outcome = Outcome(before, "skipped", True, skipped_reason=note, files_after=before.files)
        return outcome
    if reason is None:
        return Outcome(before, "none", True, files_after=before.files)
    plan = purge_plan(listing.entries, reason)
    outcome = Outcome(before, ACTION, True, deleted=list(plan.deletions), files_after=0)
    if marker is not None:
        outcome.notes.append(f"archived to {marker.shown(settings)} by the interrupted run")
    elif result.purge_backup:
        target = settings.effective_state_dir / BACKUPS_DIR / archive_name(tenant.name, when)
        outcome.notes.append(f"would archive to {layout.display_name(str(target))}")
    else:
        outcome.notes.append("no backup (--no-backup): a temporary archive is kept until the folder is gone")
    return outcome


def _purge_locked(
    settings: Settings,
    root_fd: int,
    tenant: Tenant,
    tenant_fd: int,
    seen: tuple[TenantState, _Listing],
    result: Result,
    history: LazyHistory,
    when: datetime,
) -> Outcome:
    """Under the tenant lock: put back what a killed run left aside, look again, then finish or
    roll back an interrupted purge, or archive, note and remove."""
    before, unlocked = seen
    recovered = recover_leftovers(tenant_fd, before.company, history)
    listing = _list_folder(tenant_fd)
    if not listing.entries and not unlocked.entries:
        # An empty folder is judged by its own mtime, which taking the lock (creating our lock
        # file in it) has just changed: judge it as it was before.
        listing = replace(listing, folder_mtime_ns=unlocked.folder_mtime_ns)
    marker = _read_marker(settings, tenant, tenant_fd)
    if marker is not None and not listing.identity() <= marker.identity():
        return _roll_back(
            settings, tenant, tenant_fd, before, marker, "changed since an interrupted purge", history
        )
    reason = _stale_reason(listing, result.purge_older_than or 0, time.time(), marker)
    if reason is None or listing.other:
        return skipped(before, False, "changed before the lock was taken; kept")
    outcome = Outcome(before, ACTION, False, files_after=before.files, notes=recovered)
    if marker is None:
        marker = _archive(settings, tenant, tenant_fd, listing, result, when, outcome)
        if marker is None:
            return outcome
        reason = f"{reason}; backup {marker.shown(settings)}" if marker.kept else reason
    else:
        outcome.notes.append(f"archived to {marker.shown(settings)} by the interrupted run")
    removed = _remove(settings, root_fd, tenant, tenant_fd, listing, marker, reason, outcome, history)
    if marker.kept:
        removed.backup = marker.shown(settings)
    return removed


def _archive(
    settings: Settings,
    tenant: Tenant,
    tenant_fd: int,
    listing: _Listing,
    result: Result,
    when: datetime,
    outcome: Outcome,
) -> _Marker | None:
    """Archive the folder, check it did not change meanwhile, write the marker; None (with the
    outcome saying why) when the purge must not go on."""
    subdir = BACKUPS_DIR if result.purge_backup else PURGING_DIR
    try:
        path, members = archive_folder(
            settings.effective_state_dir,
            tenant_fd,
            tenant.name,
            [e.name for e in listing.entries],
            when,
            subdir,
        )
    except BackupError as error:
        outcome.errors.append((layout.display_name(tenant.name), f"backup failed, nothing removed: {error}"))
        return None
    marker = _Marker(listing.newest_ns, subdir, path.name, tuple(members))
    if marker.kept:
        outcome.notes.append(f"archived to {marker.shown(settings)}")
    else:
        outcome.notes.append("no backup (--no-backup): the temporary archive was removed with the folder")
    if _list_folder(tenant_fd).identity() != listing.identity() or marker.identity() != listing.identity():
        _drop_archive(settings, marker)
        outcome.action, outcome.skipped_reason = "skipped", "changed while being archived; kept"
        return None
    try:
        _write_marker(settings, tenant_fd, tenant, marker)
    except StateError as error:
        _drop_archive(settings, marker)
        outcome.errors.append((layout.display_name(tenant.name), f"nothing removed: {error}"))
        return None
    return marker


def _drop_archive(settings: Settings, marker: _Marker) -> None:
    if not marker.kept:
        remove_archive(settings.effective_state_dir, marker.subdir, marker.archive)


def _remove(
    settings: Settings,
    root_fd: int,
    tenant: Tenant,
    tenant_fd: int,
    listing: _Listing,
    marker: _Marker,
    reason: str,
    outcome: Outcome,
    history: LazyHistory,
) -> Outcome:
    """Delete the files through the deletion engine (creds last, stopping at the first change),
    then the folder; a tenant found alive is rolled back from the archive."""
    try:
        opened = history.get()
    except StateError as error:
        outcome.errors.append(("history.jsonl", f"nothing removed: {error}"))
        return outcome
    applied = apply_plan(
        FolderKeys(tenant_fd),
        outcome.before.company,
        purge_plan(listing.entries, reason),
        opened,
        stop_on_change=True,
    )
    if applied.stopped is not None:
        why = f"came back to life ({applied.stopped})"
        return _roll_back(settings, tenant, tenant_fd, outcome.before, marker, why, history, applied)
    try:
        remove_emptied_folder(root_fd, tenant.name, tenant_fd)
    except OSError as error:
        if _list_folder(tenant_fd).entries:  # a file appeared: alive after all
            why = "came back to life (a file appeared)"
            return _roll_back(settings, tenant, tenant_fd, outcome.before, marker, why, history, applied)
        outcome.errors.append((layout.display_name(tenant.name), f"cannot remove folder: {error.strerror}"))
        outcome.deleted, outcome.files_after = applied.deleted, 0
        return outcome
    _drop_marker(settings, tenant_fd, marker)
    outcome.deleted = applied.deleted
    outcome.files_after = 0
    return outcome


def _roll_back(
    settings: Settings,
    tenant: Tenant,
    tenant_fd: int,
    before: TenantState,
    marker: _Marker,
    why: str,
    history: LazyHistory,
    applied: Applied | None = None,
) -> Outcome:
    """Put every file of the folder that is gone back from the verified archive (never over a file
    a writer made since), take back their history records, drop the marker: the folder is whole."""
    state_dir = settings.effective_state_dir
    restored, errors = restore_missing(state_dir, marker.subdir, marker.archive, tenant.name, tenant_fd)
    outcome = Outcome(before, "skipped", False, files_after=before.files)
    if applied is not None:
        outcome.errors.extend(applied.errors)
    outcome.errors.extend(errors)
    members = {member.name: member for member in marker.members}
    for name in restored:
        member = members.get(name)
        if member is not None:
            history.take_back(before.company, name, member.size, member.mtime_ns, "put back from the archive")
    if not errors:
        _drop_marker(settings, tenant_fd, marker)
    outcome.skipped_reason = (
        f"{why}: purge stopped, {len(restored)} files put back from the archive; kept whole"
    )
    outcome.files_after = before.files
    return outcome
