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

import time
from collections.abc import Sequence
from datetime import datetime

from wa_sessions import layout
from wa_sessions.actions.common import (
    UsageError,
    failed,
    finish,
    new_result,
    tenant_state,
    unavailable,
    validate_companies,
)
from wa_sessions.actions.purge_steps import purge_locked
from wa_sessions.backup import (
    BACKUPS_DIR,
    archive_name,
)
from wa_sessions.config import ConfigError, Settings, parse_bounded_duration
from wa_sessions.durations import OLDER_THAN_BOUNDS
from wa_sessions.history import LazyHistory, lazy_history
from wa_sessions.locks import LockBusy, LockUnsafe, tenant_lock, tenant_lock_is_held
from wa_sessions.purging import (
    PAIRED_REASON,
    FolderListing,
    Marker,
    list_folder,
    read_marker,
    remove_leftovers,
    stale_reason,
)
from wa_sessions.results import LOCK_BUSY, Outcome, Result, TenantState, skipped
from wa_sessions.rules import purge_plan
from wa_sessions.stores import Tenant, TenantUnavailable
from wa_sessions.stores.folder import open_folder_store, open_tenant, scan_tenant
from wa_sessions.times import iso_ns, utc_now

COMMAND = "emergency-cleanup"
ACTION = "emergency"


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
    include_paired: bool = False,
) -> Result:
    """Archive and remove every tenant folder whose newest file is older than `older_than`.
    Raise UsageError without `yes` unless `dry_run`, or for a bad age."""
    validate_companies(companies)
    max_age = parse_older_than(older_than)
    if not yes and not dry_run:
        raise UsageError(
            "--purge-stale-dirs removes whole folders: add --yes to confirm, or --dry-run to see what it would remove"
        )
    result = new_result(
        settings,
        COMMAND,
        dry_run=dry_run,
        notified=False,
        purge_older_than=max_age,
        purge_backup=backup,
        purge_include_paired=include_paired,
        busy_is_error=bool(companies),  # run without --company, a busy folder is skipped (SPEC §5)
    )
    with open_folder_store(settings) as store, lazy_history(settings.effective_state_dir, COMMAND) as history:
        root_fd = store.root_fd
        tenants = store.tenants(companies)
        if not dry_run:
            remove_leftovers(settings)
        for tenant in tenants:
            result.tenants.append(_purge_tenant(settings, root_fd, tenant, result, history, utc_now()))
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
    scanned = scan_tenant(tenant_fd, now)
    before = tenant_state(tenant, scanned, settings)
    try:
        listing = list_folder(tenant_fd)
    except OSError as error:
        raise TenantUnavailable(f"cannot list tenant folder: {error.strerror}") from None
    marker = read_marker(settings, tenant, tenant_fd)
    finishing = marker if marker is not None and listing.identity() <= marker.identity() else None
    newest = iso_ns(listing.newest_ns if finishing is None else finishing.newest_ns)
    outcome = _purge_judged(
        settings,
        root_fd,
        tenant,
        tenant_fd,
        (before, listing, marker, scanned.creds.paired),
        result,
        history,
        when,
    )
    outcome.newest_file_at = newest
    return outcome


def _purge_judged(
    settings: Settings,
    root_fd: int,
    tenant: Tenant,
    tenant_fd: int,
    seen: tuple[TenantState, FolderListing, Marker | None, bool],
    result: Result,
    history: LazyHistory,
    when: datetime,
) -> Outcome:
    """A folder as listed before its lock (and whether creds.json says it is paired): kept,
    skipped, or (under the lock) purged."""
    before, listing, marker, paired = seen
    finishing = marker if marker is not None and listing.identity() <= marker.identity() else None
    reason = stale_reason(listing, result.purge_older_than or 0, time.time(), finishing)
    if reason is None and marker is None:
        return Outcome(before, "none", result.dry_run, files_after=before.files)
    if paired and marker is None and not result.purge_include_paired:
        return skipped(before, result.dry_run, PAIRED_REASON)
    if listing.other and marker is None:
        why = f"holds {', '.join(listing.other[:5])}: only folders of regular files are purged"
        return skipped(before, result.dry_run, why)
    try:
        if result.dry_run:
            if tenant_lock_is_held(tenant_fd):
                return skipped(before, True, LOCK_BUSY)
            return _purge_plan(settings, tenant, before, listing, marker, reason, result, when)
        with tenant_lock(tenant_fd, settings.locks.wait):
            return purge_locked(
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
    listing: FolderListing,
    marker: Marker | None,
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
