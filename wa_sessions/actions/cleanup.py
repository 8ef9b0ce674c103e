"""`wa-sessions cleanup`: plan, then (unless a dry run) apply, one tenant at a time under its lock."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Protocol

from wa_sessions import layout
from wa_sessions.actions.common import (
    failed,
    new_result,
    record_run,
    stops_if_store_lost,
    tenant_state,
    unavailable,
    validate_companies,
)
from wa_sessions.apply import apply_plan
from wa_sessions.config import Settings
from wa_sessions.errors import StoreUnavailable
from wa_sessions.history import LazyHistory, lazy_history
from wa_sessions.locks import LockBusy, LockUnsafe
from wa_sessions.parallel import effective_jobs, ordered_map
from wa_sessions.results import LOCK_BUSY, Outcome, Result, TenantState, skipped
from wa_sessions.rules import Rule, judged_categories, plan_tenant
from wa_sessions.state import StateError
from wa_sessions.stores import Keys, Store, Tenant, TenantUnavailable, open_store


class TenantStream(Protocol):
    """Receives a run's tenants as they are done, in company order (the CLI's streaming output)."""

    def begin(self, result: Result) -> None:
        """Called once, before the first tenant, with the (still empty) result."""

    def render(self, outcome: Outcome) -> str:
        """The text for one tenant. Runs where the tenant was cleaned: a worker process with --jobs."""

    def write(self, text: str) -> None:
        """Called in this process, in company order, with what `render` returned."""


def clean_tenant(
    settings: Settings,
    store: Store,
    tenant: Tenant,
    rules: Mapping[str, Rule],
    *,
    action: str,
    dry_run: bool,
    history: LazyHistory,
) -> Outcome:
    """Given a store and one of its tenants, plan with `rules` and apply unless `dry_run`."""
    try:
        with store.open(tenant) as keys:
            if dry_run:
                return _clean_open_tenant(settings, tenant, keys, rules, action, True, history)
            try:
                with keys.lock(settings.locks.wait):
                    return _clean_open_tenant(settings, tenant, keys, rules, action, False, history)
            except LockBusy:
                # Counting needs no lock (SPEC §3): a busy tenant is shown with its real counts.
                return skipped(_counted(settings, tenant, keys), dry_run, LOCK_BUSY)
            except LockUnsafe as error:
                before = _counted(settings, tenant, keys)
                before.problems.append(str(error))
                return skipped(before, dry_run, str(error), (layout.LOCK_FILE, str(error)))
    except TenantUnavailable as error:
        return unavailable(settings, tenant, error, dry_run)
    except StoreUnavailable:
        raise  # the server is gone: the run stops there, as if killed (exit 1, one line)
    except Exception as error:
        return failed(settings, tenant, error, dry_run)


def _counted(settings: Settings, tenant: Tenant, keys: Keys) -> TenantState:
    """A tenant's state from a scan that only counts (no lock needed). Raise TenantUnavailable."""
    return tenant_state(tenant, keys.scan(time.time(), frozenset()), settings)


def _clean_open_tenant(
    settings: Settings,
    tenant: Tenant,
    keys: Keys,
    rules: Mapping[str, Rule],
    action: str,
    dry_run: bool,
    history: LazyHistory,
) -> Outcome:
    recovered = []
    if not dry_run:  # under the tenant's lock
        recovered = keys.recover(layout.display_name(tenant.company), history)
    now = time.time()
    scanned = keys.scan(now, judged_categories(rules))
    before = tenant_state(tenant, scanned, settings)
    plan = plan_tenant(scanned.entries, rules, scanned.creds, now)
    outcome = Outcome(before, action, dry_run, notes=[*recovered, *plan.notes])
    if dry_run or not plan.deletions:
        outcome.deleted = list(plan.deletions)
        outcome.files_after = before.files - len(plan.deletions)
        return outcome
    try:
        opened = history.get()
    except StateError as error:
        outcome.errors.append(("history.jsonl", f"nothing deleted: {error}"))
        outcome.files_after = before.files
        return outcome
    applied = apply_plan(keys, before.company, plan, opened)
    outcome.deleted = applied.deleted
    outcome.errors.extend(applied.errors)
    outcome.notes.extend(applied.kept)
    outcome.files_after = before.files - len(applied.deleted) - applied.vanished
    return outcome


def run_cleanup(
    settings: Settings,
    companies: Sequence[str],
    *,
    dry_run: bool,
    command: str = "cleanup",
    action: str = "cleanup",
    rules: Mapping[str, Rule] | None = None,
    jobs: int = 1,
    stream: TenantStream | None = None,
) -> Result:
    """Apply `rules` (default: the regular rules) to the named tenants, or every tenant, in `jobs`
    processes (0: automatic). With a `stream`, each tenant is handed to it as soon as it is done
    and the result keeps only its tally (`Outcome.compacted`), not its file list."""
    validate_companies(companies)
    profile = settings.rules if rules is None else rules
    # Run without --company, a busy tenant is skipped and the run succeeds (SPEC §5).
    result = new_result(settings, command, dry_run=dry_run, busy_is_error=bool(companies))
    with (
        open_store(settings, record_seen=not dry_run) as store,
        lazy_history(settings.effective_state_dir, command) as history,
    ):
        tenants = store.tenants(companies)

        def clean(tenant: Tenant) -> tuple[Outcome, str | None]:
            outcome = clean_tenant(
                settings, store, tenant, profile, action=action, dry_run=dry_run, history=history
            )
            if stream is None:
                return outcome, None
            return outcome.compacted(), stream.render(outcome)

        if stream is not None:
            stream.begin(result)
        with stops_if_store_lost(result):
            for outcome, text in ordered_map(clean, tenants, effective_jobs(jobs, len(tenants))):
                result.tenants.append(outcome)
                if stream is not None and text is not None:
                    stream.write(text)
    record_run(settings, command, dry_run=dry_run, exit_code=result.exit_code)
    return result
