"""The entries of a tenant that rules.py judges, grouped by key file (pure).

A key file and its `.bak`/`.tmp` companions form one key. Nearly every key is one file: such a
key is its own Entry (no object per file beyond the scan's); a key with companions is a Key.
"""

from __future__ import annotations

from collections.abc import Iterable
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


_NEVER_PLANNED = layout.PROTECTED | {layout.UNKNOWN}


#: A key to judge: the Entry of a key file without companions (most keys: no new object), or a
#: Key grouping a key file with its companions.
KeyLike = Entry | Key


def group_keys(entries: Iterable[Entry]) -> dict[str, KeyLike]:
    """The plannable entries grouped by key file. A key file alone is its own Entry; a key with
    companions (or a companion alone) is a Key, its entries ordered by name, with their newest
    mtime."""
    keys: dict[str, KeyLike] = {}
    groups: dict[str, list[Entry]] = {}
    never = _NEVER_PLANNED
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


def entries_of(key: KeyLike) -> tuple[Entry, ...]:
    """The entries a key deletes together."""
    return key.entries if isinstance(key, Key) else (key,)
