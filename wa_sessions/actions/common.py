"""What every action shares: checked companies, a tenant's state from its scan, the outcomes of
tenants that could not be handled, and the run's success record."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from typing import Any

from wa_sessions import layout
from wa_sessions.config import Settings
from wa_sessions.errors import StoreUnavailable, UsageError
from wa_sessions.results import Outcome, Result, TenantState
from wa_sessions.scan import TenantScan
from wa_sessions.state import StateError, record_success
from wa_sessions.stores import Store, Tenant
from wa_sessions.times import iso_datetime, utc_now

__all__ = [
    "UsageError",
    "failed",
    "finish",
    "record_run",
    "shown_root",
    "stops_if_store_lost",
    "survey",
    "tenant_state",
    "unavailable",
    "validate_companies",
]


def new_result(settings: Settings, command: str, **fields: Any) -> Result:
    """The Result of a `command` starting now on the store of `settings` (its `root`: the folder,
    or the store URL without its password)."""
    where = settings.shown_store or shown_root(settings)
    return Result(command, where, iso_datetime(utc_now()), **fields)


def tenant_state(tenant: Tenant, scan: TenantScan | None, settings: Settings) -> TenantState:
    """The scan fields of SPEC §6 (with no scan: the tenant's name and place only, status
    `unknown`: what could not be read is never shown as healthy with 0 files)."""
    state = TenantState(layout.display_name(tenant.company), layout.display_name(str(tenant.path)))
    if scan is None:
        state.status = layout.UNKNOWN_STATUS
    if scan is not None:
        state.files, state.bytes = scan.files, scan.bytes
        state.status = layout.status_for(scan.files, settings.thresholds.as_mapping())
        state.categories, state.problems = scan.categories(), list(scan.problems)
    return state


def shown_root(settings: Settings) -> str:
    """The sessions root as results show it (JSON `root`): absolute, symlinks in it resolved."""
    return str(settings.root.resolve())


def survey(settings: Settings, store: Store, tenant: Tenant, now: float) -> TenantState:
    """Scan one tenant (read only, counting only) for its state. Raise TenantUnavailable."""
    with store.open(tenant) as keys:
        return tenant_state(tenant, keys.scan(now, frozenset()), settings)


@contextlib.contextmanager
def stops_if_store_lost(result: Result) -> Iterator[None]:
    """Around a run's tenants: a store whose server goes away mid-run (StoreUnavailable) stops the
    run there, as if it had been killed; its one-line error becomes the run's (exit 1), and the
    output still ends (a --json document stays whole)."""
    try:
        yield
    except StoreUnavailable as error:
        result.errors.append(str(error))


def unavailable(settings: Settings, tenant: Tenant, error: Exception, dry_run: bool) -> Outcome:
    """A tenant that could not be opened or read: skipped, the reason among its problems; an
    error (exit 1) unless it is a symlinked folder, which is never followed."""
    before = tenant_state(tenant, None, settings)
    before.problems.append(str(error))
    outcome = Outcome(before, "skipped", dry_run, skipped_reason=str(error))
    if not tenant.is_symlink:
        outcome.errors.append((layout.display_name(tenant.name), str(error)))
    return outcome


def failed(settings: Settings, tenant: Tenant, error: Exception, dry_run: bool) -> Outcome:
    """A tenant whose handling raised: skipped, with the error (exit 1)."""
    outcome = Outcome(tenant_state(tenant, None, settings), "skipped", dry_run, skipped_reason="failed")
    outcome.errors.append((layout.display_name(tenant.name), f"{type(error).__name__}: {error}"))
    return outcome


def validate_companies(companies: Sequence[str]) -> None:
    """Reject malformed `--company` values before anything is read (exit 2)."""
    for company in companies:
        if not layout.is_valid_company_argument(company):
            raise UsageError(
                f"invalid --company {company!r}: expected an id like 962302 or a folder name like company_962302"
            )


def finish(settings: Settings, result: Result, purged: list[dict[str, Any]] | None = None) -> None:
    """After a fleet run: record its success, then tell the webhook if the run has something to say."""
    from wa_sessions.alerts import notify_run  # the HTTP client only where a run notifies

    record_run(settings, result.command, dry_run=result.dry_run, exit_code=result.exit_code)
    notify_run(settings, result, purged)


def record_run(settings: Settings, command: str, *, dry_run: bool, exit_code: int) -> None:
    """Record a real run that exited 0 in `<state_dir>/runs.json` (the report's
    `wa_sessions_last_success_timestamp_seconds`). A record that cannot be written is not an error."""
    if dry_run or exit_code != 0:
        return
    with contextlib.suppress(StateError):
        record_success(settings.effective_state_dir, command, time.time())
