"""`wa-sessions emergency-cleanup`: the emergency profile (`--purge-stale-dirs` is actions/purge.py).

The emergency profile (`emergency.rules`) is applied to the named tenants, or to every tenant at
`emergency` or above when none is named.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence

from wa_sessions import layout
from wa_sessions.actions.cleanup import clean_tenant
from wa_sessions.actions.common import (
    finish,
    new_result,
    stops_if_store_lost,
    survey,
    unavailable,
    validate_companies,
)
from wa_sessions.actions.purge import run_purge
from wa_sessions.config import Settings
from wa_sessions.history import lazy_history
from wa_sessions.results import Outcome, Result
from wa_sessions.state import StateError, read_pending, write_pending
from wa_sessions.stores import TenantUnavailable, open_store

__all__ = ["run_emergency", "run_purge"]

COMMAND = "emergency-cleanup"
ACTION = "emergency"


def run_emergency(settings: Settings, companies: Sequence[str], *, dry_run: bool) -> Result:
    """Apply the emergency profile to the named tenants, or to every tenant at `emergency` or above."""
    validate_companies(companies)
    result = new_result(
        settings,
        COMMAND,
        dry_run=dry_run,
        notified=False,
        busy_is_error=bool(companies),  # run without --company, a busy tenant is skipped (SPEC §5)
    )
    floor = layout.status_rank("emergency")
    state_dir = settings.effective_state_dir
    pending = read_pending(state_dir)
    with (
        open_store(settings, record_seen=not dry_run) as store,
        lazy_history(settings.effective_state_dir, COMMAND) as history,
    ):
        tenants = store.tenants(companies)
        with stops_if_store_lost(result):
            for tenant in tenants:
                interrupted = pending.get(tenant.name) == ACTION
                if not companies and not interrupted:  # an interrupted run is finished, whatever the status
                    try:
                        before = survey(settings, store, tenant, time.time())
                    except TenantUnavailable as error:
                        result.tenants.append(unavailable(settings, tenant, error, dry_run))
                        continue
                    if layout.status_rank(before.status) < floor:
                        result.tenants.append(Outcome(before, "none", dry_run, files_after=before.files))
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
                    store,
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
