"""`wa-sessions multitenant-cleanup`: the automatic trigger cron runs every 30 minutes.

Under the global run lock (`<state_dir>/run.lock`; with a store, also the store's own run lock,
which excludes runs on other hosts), every tenant is surveyed: at `trigger` or
above it gets the regular rules, at `danger` the emergency profile. A tenant this command cleaned
less than `auto.cooldown` ago is skipped unless it is at `danger` or `--force` is given. A tenant
whose lock is busy is skipped (exit stays 0); a tenant that fails does not stop the run (exit 1
at the end). A dry run takes no lock and changes neither files nor state.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from wa_sessions import layout
from wa_sessions.actions.cleanup import TenantStream, clean_tenant, streamed
from wa_sessions.actions.common import finish, new_result, stops_if_store_lost, survey, unavailable
from wa_sessions.config import Locks, Settings
from wa_sessions.durations import format_age
from wa_sessions.errors import StoreUnavailable
from wa_sessions.history import LazyHistory, lazy_history
from wa_sessions.locks import LockBusy, LockUnsafe, hold
from wa_sessions.parallel import effective_jobs, ordered_map
from wa_sessions.results import Outcome, Result, TenantState
from wa_sessions.state import (
    StateError,
    ensure_state_dir,
    read_cooldowns,
    read_pending,
    write_cooldowns,
    write_pending,
)
from wa_sessions.stores import ServerStore, Store, Tenant, TenantUnavailable, open_store

COMMAND = "multitenant-cleanup"
RUN_LOCK_FILE = "run.lock"


def cooldown_reason(cleaned_at: float | None, now: float, cooldown: int) -> str | None:
    """Given when the tenant was last cleaned by this command, why it must wait, or None."""
    if cleaned_at is None or cooldown <= 0:
        return None
    elapsed = max(0.0, now - cleaned_at)
    if elapsed >= cooldown:
        return None
    return f"cooldown: cleaned {format_age(elapsed)} ago, due again in {format_age(cooldown - elapsed)}"


def due_action(status: str) -> str:
    """`emergency` at danger, `cleanup` at trigger or above, else `none`."""
    rank = layout.status_rank(status)
    if rank >= layout.status_rank("danger"):
        return "emergency"
    if rank >= layout.status_rank("trigger"):
        return "cleanup"
    return "none"


def run_multitenant(
    settings: Settings,
    *,
    dry_run: bool,
    force: bool = False,
    jobs: int = 1,
    stream: TenantStream | None = None,
) -> Result:
    """Clean every tenant that is due, in `jobs` processes (0: automatic). With a `stream`, each
    tenant is handed to it as soon as it is done and the result keeps only its tally (see
    run_cleanup). Raise LockBusy (exit 3) when another run holds the run lock."""
    state_dir = settings.effective_state_dir
    result = new_result(
        settings,
        COMMAND,
        dry_run=dry_run,
        notified=False,
        busy_is_error=False,
    )
    with open_store(settings, record_seen=not dry_run) as store, contextlib.ExitStack() as stack:
        store.tenants([])  # a root without a tenant is exit 2 before anything is created
        if not dry_run:
            ensure_state_dir(state_dir)
            run_lock = str(state_dir / RUN_LOCK_FILE)
            _hold_run_lock(stack, hold(run_lock, 0), run_lock, lambda why: StateError(f"{state_dir}: {why}"))
            if isinstance(store, ServerStore):  # and on every host using the store (SPEC §10)
                where = f"its run lock on {settings.shown_store}"
                _hold_run_lock(stack, store.run_lock(COMMAND), where, StoreUnavailable)
        with stops_if_store_lost(result):  # what was recorded pending is finished by the next run
            _clean_fleet(settings, store, result, force, jobs, stream)
    finish(settings, result)
    return result


def _hold_run_lock(
    stack: contextlib.ExitStack,
    lock: AbstractContextManager[None],
    where: str,
    unsafe: Callable[[str], Exception],
) -> None:
    """Hold `lock` (the run lock `where`) for the rest of the run. Raise LockBusy (exit 3) when
    another run holds it, `unsafe(why)` when it cannot be taken."""
    try:
        stack.enter_context(lock)
    except LockBusy:
        raise LockBusy(f"another multitenant-cleanup is running ({where} is held); nothing done") from None
    except LockUnsafe as error:
        raise unsafe(str(error)) from None


@dataclass(frozen=True, slots=True)
class _Due:
    """A tenant the survey found due: the action, its state then, and the action of a killed
    earlier run it finishes (if any)."""

    action: str
    before: TenantState
    interrupted: str | None


def _clean_fleet(
    settings: Settings,
    store: Store,
    result: Result,
    force: bool,
    jobs: int,
    stream: TenantStream | None,
) -> None:
    """Survey every tenant, decide, record the due ones in pending.json (one write), clean them,
    then save cooldowns and what is still pending (one write each). Both passes over the fleet run
    in `jobs` processes; state is only read and written here."""
    state_dir = settings.effective_state_dir
    cooldowns = read_cooldowns(state_dir)
    pending = read_pending(state_dir)
    tenants = store.tenants([])
    processes = effective_jobs(jobs, len(tenants))
    # Busy tenants are skipped at once, whatever `locks.wait` says for the commands that name them.
    no_wait = dataclasses.replace(settings, locks=Locks(wait=0))
    now = time.time()

    def surveyed(tenant: Tenant) -> TenantState | TenantUnavailable:
        try:
            return survey(no_wait, store, tenant, now)
        except TenantUnavailable as error:
            return error

    decisions = [
        _decide(no_wait, tenant, state, cooldowns, pending, force, result.dry_run)
        for tenant, state in zip(tenants, ordered_map(surveyed, tenants, processes), strict=True)
    ]
    due = {
        tenant.name: decision.action
        for tenant, decision in zip(tenants, decisions, strict=True)
        if isinstance(decision, _Due)
    }
    on_disk = dict(pending)
    if due and not result.dry_run:
        try:
            write_pending(state_dir, {**pending, **due})
            on_disk.update(due)
        except StateError as error:
            decisions = [_not_recorded(decision, error) for decision in decisions]

    with lazy_history(settings.effective_state_dir, COMMAND) as history:

        def clean(item: tuple[Tenant, Outcome | _Due]) -> Outcome:
            tenant, decision = item
            if isinstance(decision, Outcome):
                return decision
            return _clean_due(no_wait, store, tenant, decision, result.dry_run, history)

        if stream is not None:
            stream.begin(result)
        work = list(zip(tenants, decisions, strict=True))
        for (tenant, decision), outcome in zip(work, streamed(clean, work, processes, stream), strict=True):
            result.tenants.append(outcome)
            if result.dry_run or not isinstance(decision, _Due):
                continue
            if not outcome.errors and outcome.skipped_reason is None:
                cooldowns[tenant.name] = time.time()
            if not outcome.errors and (outcome.skipped_reason is None or decision.interrupted is None):
                pending.pop(tenant.name, None)  # done; a busy tenant that a killed run left stays pending
            else:
                pending[tenant.name] = decision.action
    if result.dry_run:
        return
    present = {tenant.name for tenant in tenants}
    try:
        write_cooldowns(state_dir, {name: at for name, at in cooldowns.items() if name in present})
        still_pending = {name: action for name, action in pending.items() if name in present}
        if still_pending != on_disk:
            write_pending(state_dir, still_pending)
    except StateError as error:
        result.errors.append(f"cooldowns not saved: {error}")


def _decide(
    settings: Settings,
    tenant: Tenant,
    state: TenantState | TenantUnavailable,
    cooldowns: dict[str, float],
    pending: dict[str, str],
    force: bool,
    dry_run: bool,
) -> Outcome | _Due:
    """Given a tenant's survey, return its final outcome (nothing to do, cooldown, unavailable)
    or what to clean it with."""
    if isinstance(state, TenantUnavailable):
        return unavailable(settings, tenant, state, dry_run)
    action = due_action(state.status)
    interrupted = pending.get(tenant.name)
    if interrupted is not None and (action == "none" or interrupted == "emergency"):
        action = interrupted  # finish what a killed run started, whatever the status now says
    elif action == "none":
        return Outcome(state, "none", dry_run, files_after=state.files)
    elif action == "cleanup" and not force:
        reason = cooldown_reason(cooldowns.get(tenant.name), time.time(), settings.auto.cooldown)
        if reason is not None:
            return Outcome(state, "skipped", dry_run, skipped_reason=reason, files_after=state.files)
    return _Due(action, state, interrupted)


def _not_recorded(decision: Outcome | _Due, error: StateError) -> Outcome | _Due:
    """A due tenant when pending.json cannot be written: skipped, nothing deleted."""
    if not isinstance(decision, _Due):
        return decision
    outcome = Outcome(decision.before, "skipped", False, skipped_reason="state not writable")
    outcome.errors.append(("pending.json", f"nothing deleted: {error}"))
    return outcome


def _clean_due(
    settings: Settings, store: Store, tenant: Tenant, due: _Due, dry_run: bool, history: LazyHistory
) -> Outcome:
    rules = settings.emergency.rules if due.action == "emergency" else settings.rules
    outcome = clean_tenant(
        settings, store, tenant, rules, action=due.action, dry_run=dry_run, history=history
    )
    if due.interrupted is not None:
        outcome.notes.insert(0, f"finishing an interrupted {due.interrupted} of an earlier run")
    if outcome.lock_busy:
        outcome.before = due.before
        outcome.files_after = due.before.files
    return outcome
