"""`wa-sessions scan`: read only; per tenant files per category, bytes, status and problems."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from wa_sessions import layout
from wa_sessions.actions.common import (
    DiskUsage,
    TenantState,
    disk_usage,
    iso,
    opened_root,
    select_tenants,
    tenant_state,
    utc_now,
    validate_companies,
)
from wa_sessions.config import Settings
from wa_sessions.parallel import effective_jobs, ordered_map
from wa_sessions.scan import Tenant, TenantUnavailable, open_tenant, scan_tenant


@dataclass(slots=True)
class ScanResult:
    root: str
    generated_at: str
    tenants: list[TenantState]
    disk: DiskUsage | None
    fail_on: str | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def tripped(self) -> list[TenantState]:
        """Tenants at or above `--fail-on`."""
        if self.fail_on is None:
            return []
        floor = layout.status_rank(self.fail_on)
        return [tenant for tenant in self.tenants if layout.status_rank(tenant.status) >= floor]

    @property
    def exit_code(self) -> int:
        return 1 if self.tripped or self.errors else 0


def run_scan(
    settings: Settings, companies: Sequence[str], fail_on: str | None = None, *, jobs: int = 1
) -> ScanResult:
    """Given settings and the companies named (none: all), scan each tenant folder, in `jobs`
    processes (0: automatic)."""
    validate_companies(companies)
    generated_at = utc_now()
    now = time.time()
    tenants: list[TenantState] = []
    errors: list[str] = []
    with opened_root(settings) as root_fd:
        selected = select_tenants(settings, root_fd, companies)

        def survey(tenant: Tenant) -> tuple[TenantState, str | None]:
            try:
                with open_tenant(root_fd, tenant) as tenant_fd:
                    scanned = scan_tenant(tenant_fd, now, keep=frozenset())
            except TenantUnavailable as error:
                state = TenantState(
                    layout.display_name(tenant.company), layout.display_name(str(tenant.path))
                )
                state.problems.append(str(error))
                return state, None if tenant.is_symlink else f"{tenant.name}: {error}"
            return tenant_state(tenant, scanned, settings), None

        for state, error in ordered_map(survey, selected, effective_jobs(jobs, len(selected))):
            tenants.append(state)
            if error is not None:
                errors.append(error)
    return ScanResult(
        root=str(settings.root),
        generated_at=iso(generated_at),
        tenants=tenants,
        disk=disk_usage(settings.root),
        fail_on=fail_on,
        errors=errors,
    )
