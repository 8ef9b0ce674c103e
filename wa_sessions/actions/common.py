"""What every action shares: tenant selection, the scan of one tenant, the run's success record."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from wa_sessions import layout
from wa_sessions.config import Settings
from wa_sessions.results import DiskUsage, TenantState
from wa_sessions.scan import Tenant, TenantScan, TenantUnavailable, list_tenants, open_root
from wa_sessions.state import StateError, record_success


class UsageError(Exception):
    """Bad input found before anything was changed (exit 2)."""


def tenant_state(tenant: Tenant, scan: TenantScan, settings: Settings) -> TenantState:
    return TenantState(
        company=layout.display_name(tenant.company),
        path=layout.display_name(str(tenant.path)),
        files=scan.files,
        bytes=scan.bytes,
        status=layout.status_for(scan.files, settings.thresholds.as_mapping()),
        categories=scan.categories(),
        problems=list(scan.problems),
    )


def validate_companies(companies: Sequence[str]) -> None:
    """Reject malformed `--company` values before anything is read (exit 2)."""
    for company in companies:
        if not layout.is_valid_company_argument(company):
            raise UsageError(
                f"invalid --company {company!r}: expected an id like 962302 or a folder name like company_962302"
            )


@contextlib.contextmanager
def opened_root(settings: Settings) -> Iterator[int]:
    """The sessions root as a directory descriptor. Raise UsageError if it is not a readable folder."""
    try:
        root_fd = open_root(settings.root)
    except TenantUnavailable as error:
        raise UsageError(str(error)) from None
    try:
        yield root_fd
    finally:
        os.close(root_fd)


def select_tenants(settings: Settings, root_fd: int, companies: Sequence[str]) -> list[Tenant]:
    """The tenants named (by id or folder name), or every tenant when none is named.
    Raise UsageError naming a company with no folder."""
    try:
        tenants = list_tenants(settings.root, root_fd, settings.tenant_pattern)
    except OSError as error:
        raise UsageError(f"cannot list root {settings.root}: {error.strerror}") from None
    tenants = _without_state_folders(settings, root_fd, tenants)
    if not companies:
        return tenants
    chosen: dict[str, Tenant] = {}
    for company in companies:
        matches = [tenant for tenant in tenants if company in (tenant.company, tenant.name)]
        if not matches:
            raise UsageError(f"no tenant folder for company {company!r} under {settings.root}")
        for tenant in matches:
            chosen[tenant.name] = tenant
    return sorted(chosen.values(), key=lambda tenant: (tenant.company, tenant.name))


STATE_SUBFOLDERS = ("backups", "purging")


def _without_state_folders(settings: Settings, root_fd: int, tenants: list[Tenant]) -> list[Tenant]:
    """The tenants, less the state dir and its own folders (backups/, purging/): with
    `state_dir` = root or a folder under root, a pattern like `*` would take them for tenants."""
    state_dir = settings.effective_state_dir
    ours = set()
    for folder in (state_dir, *(state_dir / name for name in STATE_SUBFOLDERS)):
        with contextlib.suppress(OSError):
            info = os.stat(folder, follow_symlinks=False)
            ours.add((info.st_dev, info.st_ino))
    if not ours:
        return tenants
    kept = []
    for tenant in tenants:
        try:
            info = os.stat(tenant.name, dir_fd=root_fd, follow_symlinks=False)
        except OSError:
            kept.append(tenant)
            continue
        if (info.st_dev, info.st_ino) not in ours:
            kept.append(tenant)
    return kept


def disk_usage(root: Path) -> DiskUsage | None:
    try:
        info = os.statvfs(root)
    except OSError:
        return None
    return DiskUsage(
        bytes_total=info.f_blocks * info.f_frsize,
        bytes_free=info.f_bavail * info.f_frsize,
        inodes_total=info.f_files,
        inodes_free=info.f_favail,
    )


def record_run(settings: Settings, command: str, *, dry_run: bool, exit_code: int) -> None:
    """Record a real run that exited 0 in `<state_dir>/runs.json` (the report's
    `wa_sessions_last_success_timestamp_seconds`). A record that cannot be written is not an error."""
    if dry_run or exit_code != 0:
        return
    with contextlib.suppress(StateError):
        record_success(settings.effective_state_dir, command, time.time())
