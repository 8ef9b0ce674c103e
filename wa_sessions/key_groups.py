"""The entries of a tenant that rules.py judges, per category and grouped by key file (pure).

A key file and its `.bak`/`.tmp` companions form one key. Nearly every key is one file: such a
key is its own Entry (no object per file beyond the scan's); a key with companions is a Key.
The scan hands the planner its entries as Columns: one list per category, in listing order, and
the categories where a companion was met (only those need grouping).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

from wa_sessions import layout
from wa_sessions.layout import Entry


class Key(NamedTuple):
    """A key file with its `.bak`/`.tmp` companions (or a companion alone): judged as one, by its
    newest mtime, and deleted together (SPEC §2)."""

    name: str
    category: str
    entries: tuple[Entry, ...]
    mtime_ns: int
    pre_key_id: int | None


#: A key to judge: the Entry of a key file without companions (most keys: no new object), or a
#: Key grouping a key file with its companions.
KeyLike = Entry | Key


def group_keys(entries: Iterable[Entry]) -> dict[str, KeyLike]:
    """The plannable entries grouped by key file. A key file alone is its own Entry; a key with
    companions (or a companion alone) is a Key, its entries ordered by name, with their newest
    mtime."""
    keys: dict[str, KeyLike] = {}
    groups: dict[str, list[Entry]] = {}
    never = layout.NEVER_PLANNED
    for entry in entries:
        if not entry.regular or entry.category in never:
            continue
        key_name = entry.key_name
        if key_name in keys:
            group = groups.get(key_name)
            if group is None:
                first = keys[key_name]
                groups[key_name] = [*first.entries, entry] if isinstance(first, Key) else [first, entry]
            else:
                group.append(entry)
        elif entry.name == key_name:
            keys[key_name] = entry
        else:
            keys[key_name] = Key(key_name, entry.category, (entry,), entry.mtime_ns, entry.pre_key_id)
    for key_name, group in groups.items():
        group.sort(key=lambda entry: entry.name)
        keys[key_name] = Key(
            key_name,
            group[0].category,
            tuple(group),
            max(entry.mtime_ns for entry in group),
            group[0].pre_key_id,
        )
    return keys


class Columns:
    """A tenant's entries per category, each list in listing order, and the categories in which
    some entry is a companion (`<key file>.bak`/`.tmp`): a category without one is its own list
    of keys, nothing grouped. Only regular entries are ever in a plannable category's list."""

    __slots__ = ("by_category", "grouped")

    def __init__(self, by_category: dict[str, list[Entry]], grouped: set[str]):
        self.by_category = by_category
        self.grouped = grouped

    @classmethod
    def of(cls, entries: Iterable[Entry]) -> Columns:
        """The plannable entries (regular, neither protected nor unknown) of a list, per category."""
        by_category: dict[str, list[Entry]] = {}
        grouped: set[str] = set()
        never = layout.NEVER_PLANNED
        for entry in entries:
            category = entry.category
            if not entry.regular or category in never:
                continue
            by_category.setdefault(category, []).append(entry)
            if entry.name != entry.key_name:
                grouped.add(category)
        return cls(by_category, grouped)

    def entries(self) -> list[Entry]:
        """Every entry, category after category."""
        return [entry for column in self.by_category.values() for entry in column]

    def keys(self, category: str) -> Sequence[KeyLike]:
        """The keys of a category, first met first (group_keys' order): the list itself when no
        entry of it is a companion (nearly always)."""
        column = self.by_category.get(category)
        if not column:
            return ()
        if category not in self.grouped:
            return column
        return list(group_keys(column).values())


def entries_of(key: KeyLike) -> tuple[Entry, ...]:
    """The entries a key deletes together."""
    return key.entries if isinstance(key, Key) else (key,)
