"""`wa-sessions scan`: read only; per tenant files per category, bytes, status and problems."""

from __future__ import annotations

import time
from collections.abc import Sequence

from wa_sessions import layout
from wa_sessions.actions.common import (
    disk_usage,
    opened_root,
    select_tenants,
    tenant_state,
    validate_companies,
)
from wa_sessions.config import Settings
from wa_sessions.parallel import effective_jobs, ordered_map
from wa_sessions.results import Outcome, Result, TenantState
from wa_sessions.scan import Tenant, TenantUnavailable, open_tenant, scan_tenant
from wa_sessions.times import iso_datetime, utc_now


def run_scan(
    settings: Settings, companies: Sequence[str], fail_on: str | None = None, *, jobs: int = 1
) -> Result:
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
    return Result(
        "scan",
        str(settings.root),
        iso_datetime(generated_at),
        tenants=[Outcome(state) for state in tenants],
        disk=disk_usage(settings.root),
        fail_on=fail_on,
        errors=errors,
    )
