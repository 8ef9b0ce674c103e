"""`wa-sessions cleanup`: plan, then (unless a dry run) apply, one tenant at a time under its lock."""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol, TypeVar

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
from wa_sessions.parallel import effective_jobs, forks, ordered_map
from wa_sessions.results import LOCK_BUSY, Outcome, Result, TenantState, skipped
from wa_sessions.rules import Rule, judged_categories, plan_tenant
from wa_sessions.state import StateError
from wa_sessions.stores import Keys, Store, Tenant, TenantUnavailable, open_store

if TYPE_CHECKING:
    from wa_sessions.spool import Piece, Spool

Item = TypeVar("Item")


class TenantStream(Protocol):
    """Receives a run's tenants as they are done, in company order (the CLI's streaming output)."""

    def begin(self, result: Result) -> None:
        """Called once, before the first tenant, with the (still empty) result."""

    def render(self, outcome: Outcome) -> str:
        """The text for one tenant. Runs where the tenant was cleaned: a worker process with --jobs."""

    def write(self, text: str) -> None:
        """Called in this process, in company order, with what `render` returned."""

    def spool(self) -> Spool:
        """Where workers put what `render` returned (encoded as this stream writes it)."""

    def write_piece(self, spool: Spool, piece: Piece) -> None:
        """`write` for text a worker put in the spool: called in this process, in company order."""


def streamed(
    function: Callable[[Item], Outcome], items: Sequence[Item], jobs: int, stream: TenantStream | None
) -> Iterator[Outcome]:
    """Yield `function(item)` for each item, in order, computed in `jobs` processes. With a
    stream, each outcome is rendered where it was computed and handed to the stream in order, and
    the outcome yielded is only its tally (`Outcome.compacted`); from worker processes the text
    comes through a spool file (spool.py), not the pool's pipe."""
    if stream is None:
        yield from ordered_map(function, items, jobs)
        return

    def done(item: Item) -> tuple[Outcome, str]:
        """The tenant's tally and text: the outcome itself is gone when this returns."""
        outcome = function(item)
        text = stream.render(outcome)
        return outcome.compacted(), text

    def rendered(item: Item) -> tuple[Outcome, str]:
        with collector_paused():  # until the tenant's objects are gone (no yield in here)
            return done(item)

    if not forks(jobs, items):
        for item in items:
            tally, text = rendered(item)
            stream.write(text)
            yield tally
        return
    try:
        spool: Spool | None = stream.spool()
    except OSError:  # no temporary file to be had: the text comes through the pipe
        spool = None

    def spooled(item: Item) -> tuple[Outcome, Piece | str]:
        tally, text = rendered(item)
        if spool is not None:
            with contextlib.suppress(OSError):  # its disk full: through the pipe instead
                return tally, spool.put(text)
        return tally, text

    with spool if spool is not None else contextlib.nullcontext():
        for outcome, piece in ordered_map(spooled, items, jobs):
            if isinstance(piece, str):
                stream.write(piece)
            elif spool is not None:  # a Piece comes only from a spool
                stream.write_piece(spool, piece)
            yield outcome


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
        with collector_paused(), store.open(tenant) as keys:
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


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Around one tenant's work: no cyclic garbage collection. What a tenant makes per file (the
    listing's tuples, its Entries, its Deletions) holds no cycle and is freed by reference count
    when the tenant is done; meanwhile the collector would only walk it again and again (a young
    collection every 700 new objects, the survivors walked again when older). Collection resumes
    after, as it was: best once the tenant's objects are gone (`streamed` pauses it around the
    whole tenant, its rendering included), or its first collection walks them all."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


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
    plan = plan_tenant(scanned.columns, rules, scanned.creds, now)
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

        def clean(tenant: Tenant) -> Outcome:
            return clean_tenant(
                settings, store, tenant, profile, action=action, dry_run=dry_run, history=history
            )

        if stream is not None:
            stream.begin(result)
        with stops_if_store_lost(result):
            result.tenants.extend(streamed(clean, tenants, effective_jobs(jobs, len(tenants)), stream))
    record_run(settings, command, dry_run=dry_run, exit_code=result.exit_code)
    return result
