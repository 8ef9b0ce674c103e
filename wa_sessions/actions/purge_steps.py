"""The steps of a purge under the tenant's lock: put back what a killed run left, look again,
then archive (verified), note the purge, and remove the files through the one deletion engine
(creds.json last, stopping at the first change) and the folder; or roll back from the archive a
folder that came back to life.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime

from wa_sessions import layout
from wa_sessions.apply import Applied, apply_plan
from wa_sessions.backup import BACKUPS_DIR, BackupError, archive_folder, restore_missing
from wa_sessions.config import Settings
from wa_sessions.history import LazyHistory
from wa_sessions.purging import (
    PAIRED_REASON,
    PURGING_DIR,
    FolderListing,
    Marker,
    drop_archive,
    drop_marker,
    list_folder,
    read_marker,
    stale_reason,
    write_marker,
)
from wa_sessions.results import Outcome, Result, TenantState, skipped
from wa_sessions.rules import purge_plan
from wa_sessions.state import StateError
from wa_sessions.stores import Tenant
from wa_sessions.stores.folder import FolderKeys, read_creds
from wa_sessions.stores.folder_delete import recover_leftovers, remove_emptied_folder

ACTION = "emergency"


def purge_locked(
    settings: Settings,
    root_fd: int,
    tenant: Tenant,
    tenant_fd: int,
    seen: tuple[TenantState, FolderListing],
    result: Result,
    history: LazyHistory,
    when: datetime,
) -> Outcome:
    """Under the tenant lock: put back what a killed run left aside, look again, then finish or
    roll back an interrupted purge, or archive, note and remove."""
    before, unlocked = seen
    recovered = recover_leftovers(tenant_fd, before.company, history)
    listing = list_folder(tenant_fd)
    if not listing.entries and not unlocked.entries:
        # An empty folder is judged by its own mtime, which taking the lock (creating our lock
        # file in it) has just changed: judge it as it was before.
        listing = replace(listing, folder_mtime_ns=unlocked.folder_mtime_ns)
    marker = read_marker(settings, tenant, tenant_fd)
    if marker is not None and not listing.identity() <= marker.identity():
        return _roll_back(
            settings, tenant, tenant_fd, before, marker, "changed since an interrupted purge", history
        )
    # Pairing is judged again under the lock, after the recovery: a creds.json put back (or another
    # run's marker gone) since the folder was listed must not let a paired folder go.
    names = {entry.name for entry in listing.entries}
    if marker is None and not result.purge_include_paired and read_creds(tenant_fd, names).paired:
        return skipped(before, False, PAIRED_REASON)
    reason = stale_reason(listing, result.purge_older_than or 0, time.time(), marker)
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
    listing: FolderListing,
    result: Result,
    when: datetime,
    outcome: Outcome,
) -> Marker | None:
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
    marker = Marker(listing.newest_ns, subdir, path.name, tuple(members))
    if marker.kept:
        outcome.notes.append(f"archived to {marker.shown(settings)}")
    else:
        outcome.notes.append("no backup (--no-backup): the temporary archive was removed with the folder")
    if list_folder(tenant_fd).identity() != listing.identity() or marker.identity() != listing.identity():
        drop_archive(settings, marker)
        outcome.action, outcome.skipped_reason = "skipped", "changed while being archived; kept"
        return None
    try:
        write_marker(settings, tenant_fd, tenant, marker)
    except StateError as error:
        drop_archive(settings, marker)
        outcome.errors.append((layout.display_name(tenant.name), f"nothing removed: {error}"))
        return None
    return marker


def _remove(
    settings: Settings,
    root_fd: int,
    tenant: Tenant,
    tenant_fd: int,
    listing: FolderListing,
    marker: Marker,
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
        if list_folder(tenant_fd).entries:  # a file appeared: alive after all
            why = "came back to life (a file appeared)"
            return _roll_back(settings, tenant, tenant_fd, outcome.before, marker, why, history, applied)
        outcome.errors.append((layout.display_name(tenant.name), f"cannot remove folder: {error.strerror}"))
        outcome.deleted, outcome.files_after = applied.deleted, 0
        return outcome
    drop_marker(settings, tenant_fd, marker)
    outcome.deleted = applied.deleted
    outcome.files_after = 0
    return outcome


def _roll_back(
    settings: Settings,
    tenant: Tenant,
    tenant_fd: int,
    before: TenantState,
    marker: Marker,
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
        drop_marker(settings, tenant_fd, marker)
    outcome.skipped_reason = (
        f"{why}: purge stopped, {len(restored)} files put back from the archive; kept whole"
    )
    outcome.files_after = before.files
    return outcome
