"""`wa-sessions emergency-cleanup`: the emergency profile, and `--purge-stale-dirs`.

Without `--purge-stale-dirs`, the emergency profile (`emergency.rules`) is applied to the named
tenants, or to every tenant at `emergency` or above when none is named.

With `--purge-stale-dirs --older-than AGE` (the last resort of single-tenant deployments), whole
tenant folders whose newest file is older than AGE are archived to
`<state_dir>/backups/<name>-<UTC timestamp>.tar.gz` (unless `--no-backup`) and removed. A folder
whose lock is held, that holds anything but regular files, or that changes while it is being
archived is left alone. Every removed file is recorded in history.jsonl first, as for a cleanup.

Before its first unlink a purge writes `<state_dir>/purging/<dev>-<inode>.json` (the folder's
name, its files as archived, the newest file's mtime, the archive) and removes it with the
folder. A run killed in between leaves the folder emptied or part-emptied, its own mtime new; the
next run finishes that purge: a folder whose every entry is still as that run archived it is
judged by the newest file it had then, and the archive it wrote is not written again.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from wa_sessions import layout
from wa_sessions.actions.cleanup import LOCK_BUSY, TenantCleanup, _LazyHistory, clean_tenant, lazy_history
from wa_sessions.actions.common import (
    TenantState,
    UsageError,
    iso,
    opened_root,
    select_tenants,
    tenant_state,
    utc_now,
    validate_companies,
)
from wa_sessions.actions.fleet import NotifiedResult, finish, survey, unavailable
from wa_sessions.apply import history_record
from wa_sessions.backup import BACKUPS_DIR, BackupError, archive_folder, archive_name
from wa_sessions.config import Settings, parse_duration
from wa_sessions.layout import Entry
from wa_sessions.locks import LockBusy, LockUnsafe, tenant_lock, tenant_lock_is_held
from wa_sessions.rules import Deletion, format_age
from wa_sessions.scan import Tenant, TenantUnavailable, open_tenant, scan_tenant
from wa_sessions.state import (
    History,
    StateError,
    ensure_state_dir,
    read_json,
    read_pending,
    write_atomically,
    write_pending,
)

COMMAND = "emergency-cleanup"
ACTION = "emergency"
PURGING_DIR = "purging"


def run_emergency(settings: Settings, companies: Sequence[str], *, dry_run: bool) -> NotifiedResult:
    """Apply the emergency profile to the named tenants, or to every tenant at `emergency` or above."""
    validate_companies(companies)
    generated_at = utc_now()
    result = NotifiedResult(COMMAND, str(settings.root), iso(generated_at), dry_run, [])
    floor = layout.status_rank("emergency")
    state_dir = settings.effective_state_dir
    pending = read_pending(state_dir)
    with opened_root(settings) as root_fd, lazy_history(settings) as history:
        for tenant in select_tenants(settings, root_fd, companies):
            interrupted = pending.get(tenant.name) == ACTION
            if not companies and not interrupted:  # an interrupted run is finished, whatever the status
                try:
                    before = survey(settings, root_fd, tenant, time.time())
                except TenantUnavailable as error:
                    result.tenants.append(unavailable(tenant, error, dry_run))
                    continue
                if layout.status_rank(before.status) < floor:
                    result.tenants.append(TenantCleanup(before, "none", dry_run, files_after=before.files))
                    continue
            if not dry_run and not interrupted:
                try:  # recorded first: a run killed half-way is finished by the next one
                    write_pending(state_dir, {**pending, tenant.name: ACTION})
                    pending[tenant.name] = ACTION
                except StateError as error:
                    result.errors.append(f"{layout.display_name(tenant.name)}: nothing deleted: {error}")
                    continue
            outcome = clean_tenant(
                settings,
                root_fd,
                tenant,
                settings.emergency.rules,
                action=ACTION,
                dry_run=dry_run,
                history=history,
            )
            result.tenants.append(outcome)
            finished = not outcome.errors and not outcome.lock_busy
            if not dry_run and (finished or (outcome.lock_busy and not interrupted)):
                pending.pop(tenant.name, None)
                with contextlib.suppress(StateError):  # left pending: done again next time, harmlessly
                    write_pending(state_dir, pending)
    finish(settings, result)
    return result


# ---------------------------------------------------------------- --purge-stale-dirs


@dataclass(slots=True)
class PurgeResult(NotifiedResult):
    """A purge: per tenant folder (by company) the archive written and when its newest file was written."""

    older_than: int = 0
    backup: bool = True
    archives: dict[str, str] = field(default_factory=dict)
    newest_file_at: dict[str, str] = field(default_factory=dict)


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
    entries, other = [], []
    with os.scandir(tenant_fd) as listing:
        for item in listing:
            if item.name == layout.LOCK_FILE:
                continue
            try:
                info = item.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(info.st_mode):
                other.append(layout.display_name(item.name))
                continue
            category = layout.classify(item.name) if not layout.is_own_entry(item.name) else layout.UNKNOWN
            entries.append(
                Entry(
                    item.name, category, item.name, True, "file", info.st_ino, info.st_size, info.st_mtime_ns
                )
            )
    entries.sort(key=lambda entry: entry.name)
    return _Listing(tuple(entries), tuple(sorted(other)), os.fstat(tenant_fd).st_mtime_ns)


@dataclass(frozen=True, slots=True)
class _Interrupted:
    """A purge of this very folder that was killed after it had started removing files."""

    newest_ns: int
    archive: str | None
    files: Identity


def _marker_path(settings: Settings, tenant_fd: int) -> Path:
    info = os.fstat(tenant_fd)
    return settings.effective_state_dir / PURGING_DIR / f"{info.st_dev}-{info.st_ino}.json"


def _interrupted(
    settings: Settings, tenant: Tenant, tenant_fd: int, listing: _Listing
) -> _Interrupted | None:
    """The killed purge whose leftovers `listing` is (every entry still as it archived it), or None."""
    document = read_json(_marker_path(settings, tenant_fd))
    try:
        newest, archive, files = document["newest_ns"], document["archive"], document["files"]
        if document["folder"] != tenant.name or type(newest) is not int:
            return None
        if archive is not None and not isinstance(archive, str):
            return None
        identity = frozenset((str(name), int(ino), int(size), int(mtime)) for name, ino, size, mtime in files)
    except (KeyError, TypeError, ValueError):
        return None
    if not listing.identity() <= identity:
        return None
    return _Interrupted(newest, archive, identity)


def _newest_ns(listing: _Listing, interrupted: _Interrupted | None) -> int:
    """What the folder is judged by: its newest file, or the newest the interrupted purge saw."""
    return listing.newest_ns if interrupted is None else interrupted.newest_ns


def _write_marker(
    settings: Settings, tenant_fd: int, tenant: Tenant, listing: _Listing, newest_ns: int, archive: str | None
) -> Path:
    """Note the purge about to remove the folder's files. Raise StateError."""
    path = _marker_path(settings, tenant_fd)
    ensure_state_dir(settings.effective_state_dir)
    try:
        path.parent.mkdir(mode=0o700, exist_ok=True)
    except OSError as error:
        raise StateError(f"cannot create {path.parent}: {error.strerror}") from None
    document = {
        "schema": 1,
        "folder": tenant.name,
        "newest_ns": newest_ns,
        "archive": archive,
        "files": sorted(listing.identity()),
    }
    write_atomically(path, json.dumps(document).encode("ascii"))
    return path


def _stale_reason(
    listing: _Listing, older_than: int, now: float, interrupted: _Interrupted | None = None
) -> str | None:
    """Why the folder is stale, or None when it is not."""
    age = now - _newest_ns(listing, interrupted) / 1e9
    if age <= older_than:
        return None
    what = "newest file" if listing.entries or interrupted else "empty folder, modified"
    finishing = "; finishing an interrupted purge" if interrupted else ""
    return f"stale folder: {what} {format_age(age)} ago, older than {format_age(older_than)}{finishing}; folder removed"


def run_purge(
    settings: Settings,
    companies: Sequence[str],
    *,
    older_than: str | None,
    yes: bool,
    backup: bool,
    dry_run: bool,
) -> PurgeResult:
    """Archive (unless not `backup`) and remove every tenant folder whose newest file is older than
    `older_than`. Raise UsageError without `yes` unless `dry_run`, or for a bad age."""
    validate_companies(companies)
    if older_than is None:
        raise UsageError("--purge-stale-dirs needs --older-than AGE (e.g. 10m, 6h, 30d)")
    try:
        max_age = parse_duration(older_than)
    except ValueError as error:
        raise UsageError(f"--older-than: {error}") from None
    if max_age <= 0:
        raise UsageError("--older-than must be more than 0s")
    if not yes and not dry_run:
        raise UsageError(
            "--purge-stale-dirs removes whole folders: add --yes to confirm, or --dry-run to see what it would remove"
        )
    generated_at = utc_now()
    result = PurgeResult(
        COMMAND, str(settings.root), iso(generated_at), dry_run, [], older_than=max_age, backup=backup
    )
    with opened_root(settings) as root_fd, lazy_history(settings) as history:
        for tenant in select_tenants(settings, root_fd, companies):
            outcome = _purge_tenant(settings, root_fd, tenant, result, history, generated_at)
            result.tenants.append(outcome)
    purged = [
        {
            "company": outcome.before.company,
            "path": outcome.before.path,
            "files": len(outcome.deleted),
            "bytes": outcome.bytes_freed,
            "backup": result.archives.get(outcome.before.company),
        }
        for outcome in result.tenants
        if outcome.action == ACTION and outcome.skipped_reason is None and outcome.files_after == 0
    ]
    finish(settings, result, purged=purged)
    return result


def _is_state_dir(settings: Settings, root_fd: int, tenant: Tenant) -> bool:
    try:
        folder = os.stat(tenant.name, dir_fd=root_fd, follow_symlinks=False)
        state = os.stat(settings.effective_state_dir)
    except OSError:
        return False
    return (folder.st_dev, folder.st_ino) == (state.st_dev, state.st_ino)


def _purge_tenant(
    settings: Settings,
    root_fd: int,
    tenant: Tenant,
    result: PurgeResult,
    history: _LazyHistory,
    when: datetime,
) -> TenantCleanup:
    if _is_state_dir(settings, root_fd, tenant):
        before = TenantState(layout.display_name(tenant.company), layout.display_name(str(tenant.path)))
        return TenantCleanup(before, "none", result.dry_run, notes=["the state dir; never purged"])
    try:
        with open_tenant(root_fd, tenant) as tenant_fd:
            return _purge_open_tenant(settings, root_fd, tenant, tenant_fd, result, history, when)
    except TenantUnavailable as error:
        return unavailable(tenant, error, result.dry_run)


def _purge_open_tenant(
    settings: Settings,
    root_fd: int,
    tenant: Tenant,
    tenant_fd: int,
    result: PurgeResult,
    history: _LazyHistory,
    when: datetime,
) -> TenantCleanup:
    now = time.time()
    before = tenant_state(tenant, scan_tenant(tenant_fd, now), settings)
    try:
        listing = _list_folder(tenant_fd)
    except OSError as error:
        raise TenantUnavailable(f"cannot list tenant folder: {error.strerror}") from None
    interrupted = _interrupted(settings, tenant, tenant_fd, listing)
    result.newest_file_at[before.company] = _iso_ns(_newest_ns(listing, interrupted))
    reason = _stale_reason(listing, result.older_than, now, interrupted)
    if reason is None:
        return TenantCleanup(before, "none", result.dry_run, files_after=before.files)
    if listing.other:
        why = f"holds {', '.join(listing.other[:5])}: only folders of regular files are purged"
        return TenantCleanup(before, "skipped", result.dry_run, skipped_reason=why, files_after=before.files)
    if result.dry_run:
        return _purge_plan(settings, tenant, tenant_fd, before, (listing, interrupted), reason, result, when)
    try:
        with tenant_lock(tenant_fd, tenant.path, settings.locks.wait):
            return _purge_locked(
                settings, root_fd, tenant, tenant_fd, (before, listing), result, history, when
            )
    except LockBusy:
        return TenantCleanup(before, "skipped", False, skipped_reason=LOCK_BUSY, files_after=before.files)
    except LockUnsafe as error:
        outcome = TenantCleanup(before, "skipped", False, skipped_reason=str(error), files_after=before.files)
        outcome.errors.append((layout.LOCK_FILE, str(error)))
        return outcome


def _iso_ns(mtime_ns: int) -> str:
    return iso(datetime.fromtimestamp(mtime_ns / 1e9, UTC))


def _deletions(listing: _Listing, reason: str) -> list[Deletion]:
    return [Deletion(entry, reason) for entry in listing.entries]


def _purge_plan(
    settings: Settings,
    tenant: Tenant,
    tenant_fd: int,
    before: TenantState,
    seen: tuple[_Listing, _Interrupted | None],
    reason: str,
    result: PurgeResult,
    when: datetime,
) -> TenantCleanup:
    """A dry run: what a real purge would archive and remove (no lock taken, nothing created)."""
    listing, interrupted = seen
    if tenant_lock_is_held(tenant_fd, tenant.path):
        return TenantCleanup(before, "skipped", True, skipped_reason=LOCK_BUSY, files_after=before.files)
    outcome = TenantCleanup(before, ACTION, True, deleted=_deletions(listing, reason), files_after=0)
    if interrupted is not None and interrupted.archive is not None:
        outcome.notes.append(f"archived to {layout.display_name(interrupted.archive)} by the interrupted run")
    elif result.backup:
        target = settings.effective_state_dir / BACKUPS_DIR / archive_name(tenant.name, when)
        outcome.notes.append(f"would archive to {layout.display_name(str(target))}")
    else:
        outcome.notes.append("no backup (--no-backup)")
    return outcome


def _purge_locked(
    settings: Settings,
    root_fd: int,
    tenant: Tenant,
    tenant_fd: int,
    seen: tuple[TenantState, _Listing],
    result: PurgeResult,
    history: _LazyHistory,
    when: datetime,
) -> TenantCleanup:
    """Under the tenant lock: look again, archive (unless the interrupted run whose leftovers these
    are did), check nothing changed, note the purge, record, remove."""
    before, unlocked = seen
    listing = _list_folder(tenant_fd)
    if not listing.entries and not unlocked.entries:
        # An empty folder is judged by its own mtime, which taking the lock (creating our lock
        # file in it) has just changed: judge it as it was before.
        listing = replace(listing, folder_mtime_ns=unlocked.folder_mtime_ns)
    interrupted = _interrupted(settings, tenant, tenant_fd, listing)
    reason = _stale_reason(listing, result.older_than, time.time(), interrupted)
    if reason is None or listing.other:
        note = "changed before the lock was taken; kept"
        return TenantCleanup(before, "skipped", False, skipped_reason=note, files_after=before.files)
    outcome = TenantCleanup(before, ACTION, False, files_after=before.files)
    archive = None if interrupted is None else interrupted.archive
    if archive is not None:
        shown = layout.display_name(archive)
        result.archives[before.company] = shown
        outcome.notes.append(f"archived to {shown} by the interrupted run")
        reason = f"{reason}; backup {shown}"
    elif result.backup:
        try:
            path, _ = archive_folder(
                settings.effective_state_dir, tenant_fd, tenant.name, [e.name for e in listing.entries], when
            )
        except BackupError as error:
            outcome.errors.append(
                (layout.display_name(tenant.name), f"backup failed, nothing removed: {error}")
            )
            return outcome
        archive = str(path)
        shown = layout.display_name(archive)
        result.archives[before.company] = shown
        outcome.notes.append(f"archived to {shown}")
        reason = f"{reason}; backup {shown}"
        if _list_folder(tenant_fd).identity() != listing.identity():
            outcome.skipped_reason = "changed while being archived; kept"
            outcome.action = "skipped"
            return outcome
    else:
        outcome.notes.append("no backup (--no-backup)")
    try:
        marker = _write_marker(
            settings, tenant_fd, tenant, listing, _newest_ns(listing, interrupted), archive
        )
    except StateError as error:
        outcome.errors.append((layout.display_name(tenant.name), f"nothing removed: {error}"))
        return outcome
    if _remove(root_fd, tenant, tenant_fd, _deletions(listing, reason), outcome, history):
        with contextlib.suppress(OSError):
            marker.unlink()
    return outcome


def _remove(
    root_fd: int,
    tenant: Tenant,
    tenant_fd: int,
    deletions: list[Deletion],
    outcome: TenantCleanup,
    history: _LazyHistory,
) -> bool:
    """Record each file, unlink it relative to the folder's descriptor, then remove the folder.
    Return whether the folder is gone."""
    try:
        opened = history.get()
    except StateError as error:
        outcome.errors.append(("history.jsonl", f"nothing removed: {error}"))
        return False
    removed = 0  # entries counted in files (not dot-entries) that are gone
    for deletion in deletions:
        changed = _changed_since_listed(tenant_fd, deletion.entry)
        if changed is not None:
            shown = layout.display_name(deletion.entry.name)
            outcome.errors.append((shown, f"{changed}; not removed, nor is the rest of the folder"))
            break
        record = history_record(outcome.before.company, deletion, datetime.now(UTC))
        try:
            opened.write(record)
        except StateError as error:
            outcome.errors.append((layout.display_name(deletion.entry.name), f"not removed: {error}"))
            break
        try:
            os.unlink(deletion.entry.name, dir_fd=tenant_fd)
        except FileNotFoundError:
            removed += not layout.is_own_entry(deletion.entry.name)
            _failed(opened, record, "already gone")
            continue
        except OSError as error:
            outcome.errors.append(
                (layout.display_name(deletion.entry.name), f"cannot delete: {error.strerror}")
            )
            _failed(opened, record, error.strerror or str(error))
            continue
        outcome.deleted.append(deletion)
        removed += not layout.is_own_entry(deletion.entry.name)
    outcome.files_after = outcome.before.files - removed
    if outcome.errors:
        return False
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(layout.LOCK_FILE, dir_fd=tenant_fd)
        if os.stat(tenant.name, dir_fd=root_fd, follow_symlinks=False).st_ino != os.fstat(tenant_fd).st_ino:
            raise OSError(0, "folder was replaced")
        os.rmdir(tenant.name, dir_fd=root_fd)
    except OSError as error:
        outcome.errors.append((layout.display_name(tenant.name), f"cannot remove folder: {error.strerror}"))
        return False
    return True


def _changed_since_listed(tenant_fd: int, entry: Entry) -> str | None:
    """Why the file is no longer the one that was archived, or None (also None when it is gone)."""
    try:
        info = os.stat(entry.name, dir_fd=tenant_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    except OSError as error:
        return f"cannot stat: {error.strerror}"
    if not stat.S_ISREG(info.st_mode) or info.st_ino != entry.inode:
        return "replaced since it was archived"
    if info.st_mtime_ns != entry.mtime_ns or info.st_size != entry.size:
        return "modified since it was archived"
    return None


def _failed(history: History, record: dict[str, object], error: str) -> None:
    with contextlib.suppress(StateError):
        history.write({**record, "event": "failed", "error": error})
