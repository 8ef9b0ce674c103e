"""Policy -> decisions. Pure: (entries, rules, creds, now) -> Plan; no disk, no clock, no pydantic.

A key file and its `.bak`/`.tmp` companions form one *key*: a rule judges the key (by its
newest mtime) and a deletion takes all of its entries together (SPEC §2).
"""

from __future__ import annotations

import bisect
import operator
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import NamedTuple

from wa_sessions import layout
from wa_sessions.key_groups import Columns, Key, KeyLike, entries_of
from wa_sessions.layout import Creds, Entry
from wa_sessions.verdicts import age_verdicts, newest_verdicts


@dataclass(frozen=True, slots=True)
class Rule:
    """`max_age` (seconds: delete when older), `keep_newest` (keep the N newest: by id for
    pre-keys, by last use otherwise), or both (delete only what both allow). Checked where it is
    configured (config.py); a rule built in code may say `max_age=0` (every file)."""

    max_age: int | None = None
    keep_newest: int | None = None


class Deletion(NamedTuple):
    """One entry the plan deletes, and why. `unit` names the entries that go together (a key
    file with its companions; our own sender keys of a group with its sender-key-memory): when
    one of them cannot go, the rest of its unit stays too."""

    entry: Entry
    reason: str
    unit: str = ""


@dataclass(frozen=True, slots=True)
class Plan:
    """What one tenant's cleanup deletes (ordered by name) and what it chose not to do."""

    deletions: tuple[Deletion, ...]
    notes: tuple[str, ...] = ()


def age_seconds(mtime_ns: int, now: float) -> float:
    """`now - mtime`; an mtime in the future (clock moved back) counts as age 0."""
    age = now - mtime_ns / 1e9
    return age if age > 0.0 else 0.0


def _rule_verdicts(keys: Sequence[KeyLike], rule: Rule, now: float) -> dict[str, str]:
    """Keys the rule deletes, with the reason. Both parts of a rule must allow a deletion."""
    by_age = age_verdicts(keys, rule.max_age, now) if rule.max_age is not None else None
    by_count = newest_verdicts(keys, rule.keep_newest) if rule.keep_newest is not None else None
    if by_age is not None and by_count is not None:
        return {name: f"{by_age[name]}, and {by_count[name]}" for name in by_age if name in by_count}
    return by_age if by_age is not None else by_count or {}


def _pre_key_guard(creds: Creds) -> int | None:
    """The lowest pre-key id that must survive (SPEC §2), or None when creds.json gives none."""
    bounds = []
    if creds.next_pre_key_id is not None:
        bounds.append(creds.next_pre_key_id - 1)
    if creds.first_unuploaded_pre_key_id is not None:
        bounds.append(creds.first_unuploaded_pre_key_id)
    return min(bounds) if bounds else None


def plan_tenant(
    entries: Iterable[Entry] | Columns, rules: Mapping[str, Rule], creds: Creds, now: float
) -> Plan:
    """Given a tenant's entries (or the scan's Columns of them), the rules per category, its
    creds.json and `now` (epoch seconds), return the plan of what to delete.

    Protected categories, unknown entries and non-regular entries are never planned.
    """
    columns = entries if isinstance(entries, Columns) else Columns.of(entries)
    notes: list[str] = []
    verdicts: dict[str, str] = {}
    keys: dict[str, KeyLike] = {}  # the keys of the categories that delete something, by name
    own_candidates: dict[str, str] = {}  # the sender keys a rule deletes (our own among them)
    grouped = False  # whether a key with companions may be among the deleted
    for category, rule in rules.items():
        if category in layout.NEVER_PLANNED:
            continue
        candidates = columns.keys(category)
        if not candidates:
            continue
        if category == layout.PRE_KEY and not creds.readable:
            notes.append(f"pre-keys not pruned: creds.json is {creds.state}")
            continue
        found = _rule_verdicts(candidates, rule, now)
        if category == layout.SENDER_KEY:
            if not creds.own_users:
                if found:
                    notes.append(
                        f"sender keys not deleted: creds.json is {creds.state} and names no account, "
                        "so our own sender keys cannot be told apart"
                    )
                continue
            own_candidates = found
        if not found:
            continue
        named = {key[0]: key for key in candidates}
        if category == layout.PRE_KEY:
            found = _guarded(found, named, _pre_key_guard(creds))
        keys.update(named)
        verdicts.update(found)
        grouped = grouped or category in columns.grouped

    own = _own_sender_keys(own_candidates, creds)
    moved: dict[str, str] = {}  # our own sender keys that go in their memory file's unit
    if own:
        keys.update({key[0]: key for key in columns.keys(layout.SENDER_KEY_MEMORY)})
        partners = _memory_partners(verdicts, keys, own)
        verdicts.update(partners)
        moved = _moved(verdicts, own)
    return Plan(_deletions(verdicts, keys, moved, grouped), tuple(notes))


def _deletions(
    verdicts: Mapping[str, str], keys: Mapping[str, KeyLike], moved: Mapping[str, str], grouped: bool
) -> tuple[Deletion, ...]:
    """The Deletions of the planned keys in _apply_order: units by name. A key file alone in its
    unit (nearly every unit) is one Deletion, made straight from the sorted verdicts; the few
    larger units (a key with companions; our own sender keys of a group with its memory file,
    `moved` there) have their entries ordered by _apply_order and put in their place by name."""
    if not moved and not grouped:  # nearly every plan
        return tuple(_alone(verdicts, keys, sorted(verdicts)))
    units: dict[str, list[str]] = {}  # the larger units: unit -> its keys
    for name, unit in moved.items():
        units.setdefault(unit, [unit]).append(name)
    if grouped:
        for name in verdicts:
            if name not in moved and type(keys[name]) is Key:
                units.setdefault(name, [name])
    special = units.keys() | moved.keys()
    deletions = _alone(verdicts, keys, [name for name in sorted(verdicts) if name not in special])
    for unit in sorted(units):
        group = [
            Deletion(entry, _reason(verdicts[name], name, entry.name), unit)
            for name in units[unit]
            for entry in entries_of(keys[name])
        ]
        group.sort(key=_apply_order)
        at = bisect.bisect_left(deletions, unit, key=_unit_of)
        deletions[at:at] = group
    return tuple(deletions)


_unit_of = operator.itemgetter(2)


def _alone(verdicts: Mapping[str, str], keys: Mapping[str, KeyLike], names: list[str]) -> list[Deletion]:
    """The Deletions of keys without companions, each its own unit, in the order of `names`:
    made in C (no bytecode per file; tuple.__new__ is Deletion(...) without its Python-level
    __new__)."""
    fields = zip(map(keys.__getitem__, names), map(verdicts.__getitem__, names), names, strict=True)
    return list(map(tuple.__new__, repeat(Deletion), fields))


def _reason(verdict: str, key_name: str, name: str) -> str:
    """A deletion's reason: its key's verdict, naming the key for a companion."""
    return verdict if name == key_name else f"{verdict} (with {key_name})"


def _own_sender_keys(sender_verdicts: Mapping[str, str], creds: Creds) -> dict[str, str]:
    """Our own sender keys (sender = the account of creds.json) among the sender keys a rule
    deletes, each with its group's sender-key-memory file name."""
    own: dict[str, str] = {}
    # `<group>--<user>--<device>`: a name without `--<user>--` for any of ours is not ours, and
    # needs no parsing (nearly every sender key is another participant's).
    marks = tuple(f"--{user}--" for user in creds.own_users)
    if not marks or not sender_verdicts:
        return own
    for name in sender_verdicts:
        for mark in marks:
            if mark in name:
                break
        else:
            continue
        parsed = layout.parse_sender_key(name)
        if parsed is not None and parsed[1] in creds.own_users:
            own[name] = layout.sender_key_memory_name(parsed[0])
    return own


def _moved(verdicts: Mapping[str, str], own: Mapping[str, str]) -> dict[str, str]:
    """Our own sender keys that go in the unit of their group's sender-key-memory file (named by
    it), when that file goes too; every other planned key is its own unit."""
    return {
        key_name: memory
        for key_name, memory in own.items()
        if memory in verdicts  # a partner, or a rule on sender-key-memory too (SPEC §2)
    }


def _apply_order(deletion: Deletion) -> tuple[str, int, str]:
    """Units by name; inside a unit the sender-key-memory first, then companions, the key file
    last. A run killed between two unlinks then never leaves a memory file without our sender key
    (members it lists would never get our new key) or a `.bak` without its key file (Baileys
    would read the old value back)."""
    entry = deletion.entry
    rank = 0 if entry.category == layout.SENDER_KEY_MEMORY else 1 if entry.name != entry.key_name else 2
    return deletion.unit, rank, entry.name


def purge_plan(entries: Iterable[Entry], reason: str) -> Plan:
    """A purge of a whole folder: every entry, in the order that keeps the folder usable longest.
    Sender-key-memory files before sender keys (as a cleanup does), everything else by name, and
    the creds last (`creds.json.bak`/`.tmp` before `creds.json`): a purge stopped at any point
    leaves either creds.json or an empty folder, never keys without their account."""

    def order(deletion: Deletion) -> tuple[int, int, str]:
        entry = deletion.entry
        if entry.category == layout.CREDS:
            return 2, entry.name == layout.CREDS_FILE, entry.name
        return entry.category != layout.SENDER_KEY_MEMORY, 0, entry.name

    deletions = [Deletion(entry, reason, entry.key_name) for entry in entries]
    deletions.sort(key=order)
    return Plan(tuple(deletions))


def _guarded(
    verdicts: dict[str, str], keys: Mapping[str, KeyLike], lowest_kept: int | None
) -> dict[str, str]:
    if lowest_kept is None:
        return verdicts
    return {name: reason for name, reason in verdicts.items() if (keys[name].pre_key_id or 0) < lowest_kept}


def _memory_partners(
    verdicts: Mapping[str, str], keys: Mapping[str, KeyLike], own: Mapping[str, str]
) -> dict[str, str]:
    """When our own sender key of a group goes, that group's sender-key-memory file goes too."""
    partners = {}
    for name, memory in own.items():
        if memory in keys and memory not in verdicts:
            partners[memory] = (
                f"partner of our own sender key {layout.display_name(name)}, deleted in this run"
            )
    return partners


def judged_categories(rules: Mapping[str, Rule]) -> frozenset[str]:
    """The categories whose entries `plan_tenant` looks at under `rules`: those with a rule
    (never a protected one), and `sender-key-memory` when sender keys have one (the partner of
    our own sender key). The scan of a cleanup builds entries for these only."""
    judged = {
        category for category in rules if category not in layout.PROTECTED and category != layout.UNKNOWN
    }
    if layout.SENDER_KEY in judged:
        judged.add(layout.SENDER_KEY_MEMORY)
    return frozenset(judged)
