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
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

from wa_sessions import layout
from wa_sessions.history import HISTORY_FILE, History, PartialWrite, deleted_lines, failed_line
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
    # Asked once per plan, not per batch: isinstance of a runtime-checkable Protocol that does not
    # match looks at every one of its members.
    batched = keys if isinstance(keys, BatchedKeys) else None
    size = HISTORY_BATCH if batched is None else batched.batch_size
    pending = _checks(keys, batched, plan.deletions)
    while applied.stopped is None and (batch := _checked_batch(pending, size, applied, held, stop_on_change)):
        recorded = _Recorded(company, datetime.now(UTC), history)
        lines = deleted_lines(company, batch, recorded.time, history.command)
        try:
            history.write_lines(lines)
        except PartialWrite as error:
            _unlink_batch(batch[: error.complete], recorded, keys, batched, applied, held, stop_on_change)
            if error.complete < len(batch):
                applied.errors.append(
                    (layout.display_name(batch[error.complete].entry.name), f"not deleted: {error}")
                )
            else:  # every line whole, only the last newline cut: the next batch is not tried
                applied.errors.append((HISTORY_FILE, f"the rest not deleted: {error}"))
            applied.stopped = applied.stopped or f"history not written: {error}"
            break
        _unlink_batch(batch, recorded, keys, batched, applied, held, stop_on_change)
    return applied


# A key's check (Keys.changed) or delete (Keys.delete_unless_changed), called with its deletion
# when its turn comes: the store's own method, or the outcome of a batched call made for it.
_Step = Callable[[Deletion], str | None]


def _outcome(outcome: KeyOutcome) -> _Step:
    def step(deletion: Deletion) -> str | None:
        if isinstance(outcome, OSError):
            raise outcome.with_traceback(None)
        return outcome

    return step


def _checks(
    keys: Keys, batched: BatchedKeys | None, deletions: Iterable[Deletion]
) -> Iterator[tuple[Deletion, _Step]]:
    """Each deletion with its check: `keys.changed` (the same bound method for every deletion),
    or for a batched store the outcome of one `changed_many` per `batch_size` deletions."""
    if batched is None:
        return zip(deletions, itertools.repeat(keys.changed))
    return _batched_checks(batched, deletions)


def _batched_checks(keys: BatchedKeys, deletions: Iterable[Deletion]) -> Iterator[tuple[Deletion, _Step]]:
    remaining = iter(deletions)
    while chunk := tuple(itertools.islice(remaining, keys.batch_size)):
        for deletion, outcome in zip(chunk, keys.changed_many(chunk), strict=True):
            yield deletion, _outcome(outcome)


def _deletes(
    keys: Keys, batched: BatchedKeys | None, batch: Sequence[Deletion], held: set[str], stopped: bool
) -> list[_Step]:
    """Each deletion's delete: `keys.delete_unless_changed` when it comes, or for a batched store
    the outcome of one `delete_many` of the batch (without the deletions already kept with
    their unit, or any once a purge stopped; the store keeps a unit whose key changed in it)."""
    if batched is None:
        return [keys.delete_unless_changed] * len(batch)
    sent = [] if stopped else [d for d in batch if not (d.unit and d.unit in held)]
    done = dict(zip(map(id, sent), batched.delete_many(sent), strict=True)) if sent else {}
    return [_outcome(done.get(id(deletion), "kept with its unit")) for deletion in batch]


def _checked_batch(
    pending: Iterator[tuple[Deletion, _Step]],
    size: int,
    applied: Applied,
    held: set[str],
    stop_on_change: bool,
) -> list[Deletion]:
    """The next deletions (up to `size`: HISTORY_BATCH, or the store's batch size) that are still
    the files the plan judged; the others are counted as vanished, kept or failed on the way. With
    `stop_on_change`, a file that is not as planned stops the plan and the batch is dropped
    unrecorded."""
    batch: list[Deletion] = []
    for deletion, check in pending:
        unit = deletion.unit
        if unit and unit in held:
            shown = layout.display_name(deletion.entry.name)
            applied.kept.append(f"{shown}: kept with {layout.display_name(unit)}")
            continue
        try:
            changed = check(deletion)
        except FileNotFoundError:
            applied.vanished += 1
            continue
        except OSError as error:
            shown = layout.display_name(deletion.entry.name)
            held.add(unit)
            applied.errors.append((shown, f"cannot stat: {error.strerror}"))
            changed = f"cannot stat: {error.strerror}"
            if stop_on_change:
                applied.stopped = f"{shown}: {changed}"
                return []
            continue
        if changed is not None:
            shown = layout.display_name(deletion.entry.name)
            held.add(unit)
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
    batched: BatchedKeys | None,
    applied: Applied,
    held: set[str],
    stop_on_change: bool = False,
) -> None:
    """Unlink the files of a recorded batch; a file that stays gets a `failed` line."""
    deletes = _deletes(keys, batched, batch, held, applied.stopped is not None)
    deleted = applied.deleted
    for deletion, delete in zip(batch, deletes, strict=True):
        if applied.stopped is not None:  # a purge that stopped: the rest of the batch stays
            _record_failure(recorded, deletion, f"kept: {applied.stopped}")
            continue
        unit = deletion.unit
        if unit and unit in held:  # another file of its unit stayed in this batch
            why = f"kept with {layout.display_name(unit)}"
            applied.kept.append(f"{layout.display_name(deletion.entry.name)}: {why}")
            _record_failure(recorded, deletion, why)
            continue
        try:
            changed = delete(deletion)
        except FileNotFoundError:
            applied.vanished += 1
            _record_failure(recorded, deletion, "already gone")
            continue
        except OSError as error:
            shown = layout.display_name(deletion.entry.name)
            held.add(unit)
            applied.errors.append((shown, f"cannot delete: {error.strerror or error}"))
            _record_failure(recorded, deletion, error.strerror or str(error))
            if stop_on_change:
                applied.stopped = f"{shown}: cannot delete ({error.strerror or error})"
            continue
        if changed is not None:
            shown = layout.display_name(deletion.entry.name)
            held.add(unit)
            applied.kept.append(f"{shown}: {changed} while being deleted; kept")
            _record_failure(recorded, deletion, f"kept: {changed} while being deleted")
            if stop_on_change:
                applied.stopped = f"{shown}: {changed} while being deleted"
            continue
        deleted.append(deletion)


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
