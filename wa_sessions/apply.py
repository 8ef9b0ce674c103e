"""Execute a Plan: the one deletion engine. Nothing else deletes a tenant's keys.

The apply step never re-decides policy: a key is deleted only if it is still the very key the
plan judged (for a folder: same inode, still a regular file, same mtime); anything else is kept
and reported. Deletions go in batches: each key of a batch is re-checked, the batch's records are
appended to the history in one write, then its keys are deleted through the store's checked
delete (stores/folder_delete.py for folders), which closes the race with a live writer.

A store that offers `BatchedKeys` (a server: Redis) is asked about many keys per round trip: the
re-checks of up to its `batch_size` keys in one call, and a recorded batch's compare-and-deletes in
one atomic call; what becomes of each key is handled, reported and recorded exactly as one by one.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

from wa_sessions import layout
from wa_sessions.history import History, PartialWrite, deleted_lines, failed_line
from wa_sessions.rules import Deletion, Plan
from wa_sessions.state import StateError
from wa_sessions.stores import BatchedKeys, KeyOutcome, Keys


@dataclass(slots=True)
class Applied:
    """What applying a plan did. `stopped` says why a plan applied with `stop_on_change` stopped."""

    deleted: list[Deletion] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    vanished: int = 0
    stopped: str | None = None


# History lines are written in batches of up to this many deletions, each batch before its unlinks.
HISTORY_BATCH = 64


def apply_plan(
    keys: Keys, company: str, plan: Plan, history: History, *, stop_on_change: bool = False
) -> Applied:
    """Given an open tenant folder and its plan, delete what is still as planned.

    Deletions go in batches: each file of a batch is re-checked, the batch's records are appended
    to the history in one write, then its files are unlinked. Every unlinked file has its record
    (a run killed inside a batch leaves records of files it did not reach; the next run deletes
    them). A history write that fails stops the tenant: the files whose records are whole are still
    deleted, nothing more is, and the failure is reported as an error.

    With `stop_on_change` (a purge), the first file that is not as planned, or cannot be deleted,
    stops the whole plan: `Applied.stopped` says why, and nothing after it is deleted.
    """
    applied = Applied()
    held: set[str] = set()  # units of which an entry stays: the rest of the unit stays too
    pending = _checks(keys, plan.deletions)
    while applied.stopped is None and (batch := _checked_batch(pending, keys, applied, held, stop_on_change)):
        recorded = _Recorded(company, datetime.now(UTC), history)
        lines = deleted_lines(company, batch, recorded.time, history.command)
        try:
            history.write_lines(lines)
        except PartialWrite as error:
            _unlink_batch(batch[: error.complete], recorded, keys, applied, held, stop_on_change)
            applied.errors.append(
                (layout.display_name(batch[error.complete].entry.name), f"not deleted: {error}")
            )
            applied.stopped = applied.stopped or f"history not written: {error}"
            break
        _unlink_batch(batch, recorded, keys, applied, held, stop_on_change)
    return applied


# A key's check (Keys.changed) or delete (Keys.delete_unless_changed), to be called when its turn
# comes: the store's own call, or the outcome of a batched call made for it.
_Step = Callable[[], str | None]


def _outcome(outcome: KeyOutcome) -> _Step:
    def step() -> str | None:
        if isinstance(outcome, OSError):
            raise outcome.with_traceback(None)
        return outcome

    return step


def _checks(keys: Keys, deletions: Iterable[Deletion]) -> Iterator[tuple[Deletion, _Step]]:
    """Each deletion with its check: `keys.changed` when it comes, or for a batched store the
    outcome of one `changed_many` per `batch_size` deletions."""
    if not isinstance(keys, BatchedKeys):
        for deletion in deletions:
            yield deletion, functools.partial(keys.changed, deletion)
        return
    remaining = iter(deletions)
    while chunk := tuple(itertools.islice(remaining, keys.batch_size)):
        for deletion, outcome in zip(chunk, keys.changed_many(chunk), strict=True):
            yield deletion, _outcome(outcome)


def _deletes(keys: Keys, batch: Sequence[Deletion], held: set[str], stopped: bool) -> list[_Step]:
    """Each deletion's delete: `keys.delete_unless_changed` when it comes, or for a batched store
    the outcome of one `delete_many` of the batch (without the deletions already kept with
    their unit, or any once a purge stopped; the store keeps a unit whose key changed in it)."""
    if not isinstance(keys, BatchedKeys):
        return [functools.partial(keys.delete_unless_changed, deletion) for deletion in batch]
    sent = [] if stopped else [d for d in batch if not (d.unit and d.unit in held)]
    done = dict(zip(map(id, sent), keys.delete_many(sent), strict=True)) if sent else {}
    return [_outcome(done.get(id(deletion), "kept with its unit")) for deletion in batch]


def _checked_batch(
    pending: Iterator[tuple[Deletion, _Step]],
    keys: Keys,
    applied: Applied,
    held: set[str],
    stop_on_change: bool,
) -> list[Deletion]:
    """The next deletions (up to HISTORY_BATCH, or the store's batch size) that are still the
    files the plan judged; the others are counted as vanished, kept or failed on the way. With
    `stop_on_change`, a file that is not as planned stops the plan and the batch is dropped
    unrecorded."""
    size = keys.batch_size if isinstance(keys, BatchedKeys) else HISTORY_BATCH
    batch: list[Deletion] = []
    for deletion, check in pending:
        shown = layout.display_name(deletion.entry.name)
        if deletion.unit and deletion.unit in held:
            applied.kept.append(f"{shown}: kept with {layout.display_name(deletion.unit)}")
            continue
        try:
            changed = check()
        except FileNotFoundError:
            applied.vanished += 1
            continue
        except OSError as error:
            held.add(deletion.unit)
            applied.errors.append((shown, f"cannot stat: {error.strerror}"))
            changed = f"cannot stat: {error.strerror}"
            if stop_on_change:
                applied.stopped = f"{shown}: {changed}"
                return []
            continue
        if changed is not None:
            held.add(deletion.unit)
            applied.kept.append(f"{shown}: {changed}; kept")
            if stop_on_change:
                applied.stopped = f"{shown}: {changed}"
                return []
            continue
        batch.append(deletion)
        if len(batch) == size:
            break
    return batch


class _Recorded(NamedTuple):
    """Where and when a batch was recorded: what a `failed` line taking one back repeats."""

    company: str
    time: datetime
    history: History


def _unlink_batch(
    batch: Sequence[Deletion],
    recorded: _Recorded,
    keys: Keys,
    applied: Applied,
    held: set[str],
    stop_on_change: bool = False,
) -> None:
    """Unlink the files of a recorded batch; a file that stays gets a `failed` line."""
    deletes = _deletes(keys, batch, held, applied.stopped is not None)
    for deletion, delete in zip(batch, deletes, strict=True):
        shown = layout.display_name(deletion.entry.name)
        if applied.stopped is not None:  # a purge that stopped: the rest of the batch stays
            _record_failure(recorded, deletion, f"kept: {applied.stopped}")
            continue
        if deletion.unit and deletion.unit in held:  # another file of its unit stayed in this batch
            why = f"kept with {layout.display_name(deletion.unit)}"
            applied.kept.append(f"{shown}: {why}")
            _record_failure(recorded, deletion, why)
            continue
        try:
            changed = delete()
        except FileNotFoundError:
            applied.vanished += 1
            _record_failure(recorded, deletion, "already gone")
            continue
        except OSError as error:
            held.add(deletion.unit)
            applied.errors.append((shown, f"cannot delete: {error.strerror or error}"))
            _record_failure(recorded, deletion, error.strerror or str(error))
            if stop_on_change:
                applied.stopped = f"{shown}: cannot delete ({error.strerror or error})"
            continue
        if changed is not None:
            held.add(deletion.unit)
            applied.kept.append(f"{shown}: {changed} while being deleted; kept")
            _record_failure(recorded, deletion, f"kept: {changed} while being deleted")
            if stop_on_change:
                applied.stopped = f"{shown}: {changed} while being deleted"
            continue
        applied.deleted.append(deletion)


def _record_failure(recorded: _Recorded, deletion: Deletion, error: str) -> None:
    """Take back a deletion's record: the file is still there (or was not ours to delete)."""
    entry = deletion.entry
    line = failed_line(
        recorded.company,
        entry.name,
        entry.category,
        deletion.reason,
        entry.size,
        entry.mtime_ns,
        recorded.time,
        error,
        recorded.history.command,
    )
    with contextlib.suppress(StateError):
        recorded.history.write_lines([line])
