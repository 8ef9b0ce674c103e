"""apply.py with a store that checks and deletes many keys per call (`BatchedKeys`, the Redis
store's seam): whatever becomes of each key, the outcome (deleted, kept, errors, vanished), the
keys left and the history lines are exactly those of the same store asked one key at a time, in
far fewer calls."""

from __future__ import annotations

import errno
import math
import tempfile
from collections.abc import Sequence
from pathlib import Path
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from wa_sessions import apply, layout
from wa_sessions.apply import Applied, apply_plan
from wa_sessions.history import History, read_history
from wa_sessions.layout import Entry
from wa_sessions.rules import Deletion, Plan
from wa_sessions.stores import BatchedKeys, KeyOutcome, Keys

# What a key does when it is checked (before the history batch) or deleted (after).
BEHAVIOURS = [
    "ok",
    "changed_check",
    "changed_delete",
    "gone_check",
    "gone_delete",
    "error_check",
    "error_delete",
]


class _OneByOne:
    """A store whose keys behave as told, asked one key per call."""

    def __init__(self, behaviours: dict[str, str]):
        self.behaviours = behaviours
        self.present = set(behaviours)
        self.calls = 0

    def _outcome(self, name: str, stage: str) -> KeyOutcome:
        behaviour = self.behaviours[name]
        if behaviour == f"gone_{stage}":
            return FileNotFoundError(errno.ENOENT, "gone")
        if behaviour == f"changed_{stage}":
            return "modified since the plan"
        if behaviour == f"error_{stage}":
            return OSError(errno.EIO, "I/O error")
        return None

    def _delete(self, name: str) -> KeyOutcome:
        outcome = self._outcome(name, "delete")
        if outcome is None:
            self.present.discard(name)
        return outcome

    def changed(self, deletion: Deletion) -> str | None:
        self.calls += 1
        return _raised(self._outcome(deletion.entry.name, "check"))

    def delete_unless_changed(self, deletion: Deletion) -> str | None:
        self.calls += 1
        return _raised(self._delete(deletion.entry.name))


class _Batched(_OneByOne):
    """The same keys, asked many per call; a delete call keeps the rest of a unit whose key
    stayed, as the Redis delete script does."""

    batch_size = 7

    def changed_many(self, deletions: Sequence[Deletion]) -> list[KeyOutcome]:
        self.calls += 1
        return [self._outcome(deletion.entry.name, "check") for deletion in deletions]

    def delete_many(self, deletions: Sequence[Deletion]) -> list[KeyOutcome]:
        self.calls += 1
        held: set[str] = set()
        outcomes: list[KeyOutcome] = []
        for deletion in deletions:
            if deletion.unit and deletion.unit in held:
                outcomes.append("a key of its unit was modified since the plan")
                continue
            outcome = self._delete(deletion.entry.name)
            if outcome is not None and not isinstance(outcome, FileNotFoundError):
                held.add(deletion.unit)
            outcomes.append(outcome)
        return outcomes


def _raised(outcome: KeyOutcome) -> str | None:
    if isinstance(outcome, OSError):
        raise outcome
    return outcome


def _plan(units: list[str]) -> Plan:
    deletions = []
    for index, unit in enumerate(units):
        name = f"session-{index}.0.json"
        entry = Entry(name, layout.SESSION, name, True, "file", index + 1, 10 + index, 0)
        deletions.append(Deletion(entry, "older than 14d", unit))
    return Plan(tuple(deletions))


def _applied(keys: Keys, plan: Plan, state_dir: Path) -> tuple[Applied, list[dict[str, object]]]:
    history = History(state_dir, "cleanup")
    try:
        applied = apply_plan(keys, "1", plan, history)
    finally:
        history.close()
    lines = [{key: value for key, value in line.items() if key != "time"} for line in read_history(state_dir)]
    return applied, lines


@settings(max_examples=200, deadline=None)
@given(
    keys=st.lists(
        st.tuples(st.sampled_from(BEHAVIOURS), st.sampled_from(["", "", "u1", "u2", "u3"])),
        min_size=1,
        max_size=40,
    )
)
def test_a_batched_store_is_applied_exactly_as_one_key_at_a_time(keys: list[tuple[str, str]]) -> None:
    plan = _plan([unit for _behaviour, unit in keys])
    behaviours = {d.entry.name: behaviour for d, (behaviour, _unit) in zip(plan.deletions, keys, strict=True)}
    one_by_one, batched = _OneByOne(behaviours), _Batched(behaviours)
    assert isinstance(batched, BatchedKeys) and not isinstance(one_by_one, BatchedKeys)
    with tempfile.TemporaryDirectory() as folder:
        with mock.patch.object(apply, "HISTORY_BATCH", batched.batch_size):  # the same history batches
            expected, expected_lines = _applied(one_by_one, plan, Path(folder) / "one")
        got, got_lines = _applied(batched, plan, Path(folder) / "batched")
    assert got == expected
    assert got_lines == expected_lines
    assert batched.present == one_by_one.present
    assert batched.calls <= 2 * math.ceil(len(keys) / batched.batch_size)


def test_a_large_plan_takes_one_check_and_one_delete_call_per_batch(tmp_path: Path) -> None:
    plan = _plan([""] * 100)
    batched = _Batched({d.entry.name: "ok" for d in plan.deletions})
    applied, lines = _applied(batched, plan, tmp_path)
    assert len(applied.deleted) == 100 and batched.present == set()
    assert len(lines) == 100
    assert batched.calls == 2 * math.ceil(100 / batched.batch_size)
