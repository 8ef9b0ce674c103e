"""`wa-sessions multitenant-cleanup`: the automatic trigger cron runs every 30 minutes.

Under the global run lock (`<state_dir>/run.lock`), every tenant is surveyed: at `trigger` or
above it gets the regular rules, at `danger` the emergency profile. A tenant this command cleaned
less than `auto.cooldown` ago is skipped unless it is at `danger` or `--force` is given. A tenant
whose lock is busy is skipped (exit stays 0); a tenant that fails does not stop the run (exit 1
at the end). A dry run takes no lock and changes neither files nor state.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

from wa_sessions import layout
from wa_sessions.actions.cleanup import TenantCleanup, _LazyHistory, clean_tenant, lazy_history
from wa_sessions.actions.common import iso, opened_root, select_tenants, utc_now
from wa_sessions.actions.fleet import NotifiedResult, finish, survey, unavailable
from wa_sessions.config import Locks, Settings
from wa_sessions.locks import LockBusy, LockUnsafe, hold
from wa_sessions.rules import format_age
from wa_sessions.scan import Tenant, TenantUnavailable
from wa_sessions.state import (
    StateError,
    ensure_state_dir,
    read_cooldowns,
    read_pending,
    write_cooldowns,
    write_pending,
)

COMMAND = "multitenant-cleanup"
RUN_LOCK_FILE = "run.lock"


@dataclass(slots=True)
class MultitenantResult(NotifiedResult):
    """A busy tenant is skipped, not a failure: exit 1 when anything failed, else 0 (SPEC §7)."""

    @property
    def exit_code(self) -> int:
        if self.errors or any(tenant.errors for tenant in self.tenants):
            return 1
        return 0


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


def run_multitenant(settings: Settings, *, dry_run: bool, force: bool = False) -> MultitenantResult:
    """Clean every tenant that is due. Raise LockBusy (exit 3) when another run holds the run lock."""
    generated_at = utc_now()
    state_dir = settings.effective_state_dir
    result = MultitenantResult(COMMAND, str(settings.root), iso(generated_at), dry_run, [])
    with opened_root(settings) as root_fd, contextlib.ExitStack() as stack:
        if not dry_run:
            ensure_state_dir(state_dir)
            try:
                stack.enter_context(hold(str(state_dir / RUN_LOCK_FILE), 0))
            except LockBusy:
                raise LockBusy(
                    f"another multitenant-cleanup is running ({state_dir / RUN_LOCK_FILE} is held); nothing done"
                ) from None
            except LockUnsafe as error:
                raise StateError(f"{state_dir}: {error}") from None
        _clean_fleet(settings, root_fd, result, force)
    finish(settings, result)
    return result


def _clean_fleet(settings: Settings, root_fd: int, result: MultitenantResult, force: bool) -> None:
    state_dir = settings.effective_state_dir
    cooldowns = read_cooldowns(state_dir)
    pending = read_pending(state_dir)
    tenants = select_tenants(settings, root_fd, [])
    # Busy tenants are skipped at once, whatever `locks.wait` says for the commands that name them.
    no_wait = settings.model_copy(update={"locks": Locks(wait=0)})
    with lazy_history(settings) as history:
        for tenant in tenants:
            outcome = _clean_one(no_wait, root_fd, tenant, cooldowns, pending, force, result.dry_run, history)
            result.tenants.append(outcome)
            cleaned = outcome.action in ("cleanup", "emergency") and outcome.skipped_reason is None
            if cleaned and not result.dry_run and not outcome.errors:
                cooldowns[tenant.name] = time.time()
    if result.dry_run:
        return
    present = {tenant.name for tenant in tenants}
    try:
        write_cooldowns(state_dir, {name: at for name, at in cooldowns.items() if name in present})
        if set(pending) - present:
            write_pending(state_dir, {name: action for name, action in pending.items() if name in present})
    except StateError as error:
        result.errors.append(f"cooldowns not saved: {error}")


def _clean_one(
    settings: Settings,
    root_fd: int,
    tenant: Tenant,
    cooldowns: dict[str, float],
    pending: dict[str, str],
    force: bool,
    dry_run: bool,
    history: _LazyHistory,
) -> TenantCleanup:
    now = time.time()
    try:
        before = survey(settings, root_fd, tenant, now)
    except TenantUnavailable as error:
        return unavailable(tenant, error, dry_run)
    action = due_action(before.status)
    interrupted = pending.get(tenant.name)
    if interrupted is not None and (action == "none" or interrupted == "emergency"):
        action = interrupted  # finish what a killed run started, whatever the status now says
    elif action == "none":
        return TenantCleanup(before, "none", dry_run, files_after=before.files)
    elif action == "cleanup" and not force:
        reason = cooldown_reason(cooldowns.get(tenant.name), now, settings.auto.cooldown)
        if reason is not None:
            return TenantCleanup(before, "skipped", dry_run, skipped_reason=reason, files_after=before.files)
    rules = settings.emergency.rules if action == "emergency" else settings.rules
    if not dry_run:
        try:
            _set_pending(settings, pending, tenant.name, action)
        except StateError as error:
            outcome = TenantCleanup(before, "skipped", dry_run, skipped_reason="state not writable")
            outcome.errors.append(("pending.json", f"nothing deleted: {error}"))
            return outcome
    outcome = clean_tenant(settings, root_fd, tenant, rules, action=action, dry_run=dry_run, history=history)
    if interrupted is not None:
        outcome.notes.insert(0, f"finishing an interrupted {interrupted} of an earlier run")
    if outcome.lock_busy:
        outcome.before = before
        outcome.files_after = before.files
    if not dry_run and not outcome.errors and (outcome.skipped_reason is None or interrupted is None):
        with contextlib.suppress(StateError):  # left pending: the next run does it again, harmlessly
            _set_pending(settings, pending, tenant.name, None)
    return outcome


def _set_pending(settings: Settings, pending: dict[str, str], name: str, action: str | None) -> None:
    """Record (before cleaning) or clear (after) a tenant's cleanup in pending.json, so that a run
    killed in between is finished by the next one even when the tenant fell below its level."""
    if action is None:
        if pending.pop(name, None) is None:
            return
    else:
        pending[name] = action
    write_pending(settings.effective_state_dir, pending)
