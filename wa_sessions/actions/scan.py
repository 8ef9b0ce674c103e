"""`wa-sessions scan`: read only; per tenant files per category, bytes, status and problems."""

from __future__ import annotations

import time
from collections.abc import Sequence

from wa_sessions.actions.common import new_result, survey, tenant_state, validate_companies
from wa_sessions.config import Settings
from wa_sessions.parallel import effective_jobs, ordered_map
from wa_sessions.results import Outcome, Result, TenantState
from wa_sessions.stores import ServerStore, Tenant, TenantUnavailable, open_store


def run_scan(
    settings: Settings, companies: Sequence[str], fail_on: str | None = None, *, jobs: int = 1
) -> Result:
    """Given settings and the companies named (none: all), scan each tenant, in `jobs` processes
    (0: automatic). A tenant that cannot be read is a run error (exit 1), a symlinked folder not."""
    validate_companies(companies)
    result = new_result(settings, "scan", fail_on=fail_on)
    result.rule_categories = frozenset(settings.rules) | frozenset(settings.emergency.rules)
    now = time.time()
    with open_store(settings) as store:
        selected = store.tenants(companies)

        def surveyed(tenant: Tenant) -> tuple[TenantState, str | None]:
            try:
                return survey(settings, store, tenant, now), None
            except TenantUnavailable as error:
                state = tenant_state(tenant, None, settings)
                state.problems.append(str(error))
                return state, None if tenant.is_symlink else f"{tenant.name}: {error}"

        for state, error in ordered_map(surveyed, selected, effective_jobs(jobs, len(selected))):
            result.tenants.append(Outcome(state))
            if error is not None:
                result.errors.append(error)
        result.disk = store.disk()
        if isinstance(store, ServerStore):  # its server's memory instead of a filesystem (SPEC §10)
            result.memory = store.memory()
    return result
