"""`wa-sessions cleanup`: plan, then (unless a dry run) apply, one tenant at a time under its lock."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Protocol

from wa_sessions import layout
from wa_sessions.actions.common import (
    opened_root,
    record_run,
    select_tenants,
    tenant_state,
    validate_companies,
)
from wa_sessions.apply import apply_plan, recover_leftovers
from wa_sessions.config import Settings
from wa_sessions.history import LazyHistory, lazy_history
from wa_sessions.locks import LockBusy, LockUnsafe, tenant_lock
from wa_sessions.parallel import effective_jobs, ordered_map
from wa_sessions.results import LOCK_BUSY, Outcome, Result, TenantState
from wa_sessions.rules import Rule, judged_categories, plan_tenant
from wa_sessions.scan import Tenant, TenantUnavailable, open_tenant, scan_tenant
from wa_sessions.state import StateError
from wa_sessions.times import iso_datetime, utc_now


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
    root_fd: int,
    tenant: Tenant,
    rules: Mapping[str, Rule],
    *,
    action: str,
    dry_run: bool,
    history: LazyHistory,
) -> Outcome:
    """Given an open root and one tenant, plan with `rules` and apply unless `dry_run`."""
    company = layout.display_name(tenant.company)
    try:
        with open_tenant(root_fd, tenant) as tenant_fd:
            if dry_run:
                return _clean_open_tenant(settings, tenant, tenant_fd, rules, action, True, history)
            with tenant_lock(tenant_fd, settings.locks.wait):
                return _clean_open_tenant(settings, tenant, tenant_fd, rules, action, False, history)
    except LockBusy:
        before = TenantState(company, layout.display_name(str(tenant.path)))
        return Outcome(before, "skipped", dry_run, skipped_reason=LOCK_BUSY)
    except LockUnsafe as error:
        before = TenantState(company, layout.display_name(str(tenant.path)), problems=[str(error)])
        outcome = Outcome(before, "skipped", dry_run, skipped_reason=str(error))
        outcome.errors.append((layout.LOCK_FILE, str(error)))
        return outcome
    except TenantUnavailable as error:
        before = TenantState(company, layout.display_name(str(tenant.path)), problems=[str(error)])
        outcome = Outcome(before, "skipped", dry_run, skipped_reason=str(error))
        if not tenant.is_symlink:
            outcome.errors.append((layout.display_name(tenant.name), str(error)))
        return outcome
    except Exception as error:
        return failed_tenant(tenant, error, dry_run)


def failed_tenant(tenant: Tenant, error: Exception, dry_run: bool) -> Outcome:
    """The outcome of a tenant whose handling raised: skipped, with the error (exit 1)."""
    before = TenantState(layout.display_name(tenant.company), layout.display_name(str(tenant.path)))
    outcome = Outcome(before, "skipped", dry_run, skipped_reason="failed")
    outcome.errors.append((layout.display_name(tenant.name), f"{type(error).__name__}: {error}"))
    return outcome


def _clean_open_tenant(
    settings: Settings,
    tenant: Tenant,
    tenant_fd: int,
    rules: Mapping[str, Rule],
    action: str,
    dry_run: bool,
    history: LazyHistory,
) -> Outcome:
    recovered = []
    if not dry_run:  # under the tenant's lock
        recovered = recover_leftovers(tenant_fd, layout.display_name(tenant.company), history)
    now = time.time()
    scanned = scan_tenant(tenant_fd, now, keep=judged_categories(rules))
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
    applied = apply_plan(tenant_fd, before.company, plan, opened)
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
    generated_at = utc_now()
    profile = settings.rules if rules is None else rules
    result = Result(command, str(settings.root), iso_datetime(generated_at), dry_run=dry_run)
    with opened_root(settings) as root_fd, lazy_history(settings.effective_state_dir) as history:
        tenants = select_tenants(settings, root_fd, companies)

        def clean(tenant: Tenant) -> tuple[Outcome, str | None]:
            outcome = clean_tenant(
                settings, root_fd, tenant, profile, action=action, dry_run=dry_run, history=history
            )
            if stream is None:
                return outcome, None
            return outcome.compacted(), stream.render(outcome)

        if stream is not None:
            stream.begin(result)
        for outcome, text in ordered_map(clean, tenants, effective_jobs(jobs, len(tenants))):
            result.tenants.append(outcome)
            if stream is not None and text is not None:
                stream.write(text)
    record_run(settings, command, dry_run=dry_run, exit_code=result.exit_code)
    return result
