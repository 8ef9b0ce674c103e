"""One pass over a tenant's listing: classify every key (layout.classify_name), count it per
category, note its problems, keep the entries the plan needs. Store-neutral: a listing is
(name, mode, inode, size, mtime_ns) tuples (listing.py for folders).

The hot loop of every command (a fleet has millions of files): locals only, and nothing per
entry that is not needed.
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Callable, Container, Iterable, Set
from dataclasses import dataclass

from wa_sessions import layout
from wa_sessions.key_groups import Columns
from wa_sessions.layout import Creds, Entry
from wa_sessions.listing import ListedEntry

_PROBLEMS_PER_KIND = 20
CREDS_NAMES = frozenset({layout.CREDS_FILE, layout.CREDS_FILE + ".bak"})  # what read_creds looks for


@dataclass(slots=True)
class TenantScan:
    """Everything one pass over a tenant's keys saw: the entries asked for (per category), what
    creds.json says, the problems seen, the counts per category and the bytes."""

    columns: Columns
    creds: Creds
    problems: list[str]
    counts: dict[str, int]
    bytes: int

    @property
    def entries(self) -> list[Entry]:
        """The entries asked for, category after category (each in listing order)."""
        return self.columns.entries()

    @property
    def files(self) -> int:
        return sum(self.counts.values())

    def categories(self) -> dict[str, int]:
        return dict(self.counts)


class _Tally:
    """What one pass over a listing adds up: counts, bytes, problems, the entries kept."""

    __slots__ = ("columns", "counts", "creds_names", "future_after", "noted", "total_bytes", "unreadable")

    def __init__(self, now: float | None, keep: Container[str] | None):
        self.counts = dict.fromkeys(layout.CATEGORIES, 0)
        self.total_bytes = 0
        kept = layout.CATEGORIES if keep is None else [c for c in layout.CATEGORIES if c in keep]
        self.columns = Columns({category: [] for category in kept}, set())
        self.creds_names: set[str] = set()
        self.unreadable: list[str] = []
        self.noted: dict[str, list[str]] = {}
        self.future_after = math.inf if now is None else now + 60

    def note(self, name: str, category: str, kind: str, size: int, mtime_ns: int) -> None:
        """Problems of one entry, in the order the scan meets them."""
        if kind != "file":
            _add(self.noted, "not-regular", f"not a regular file ({kind}): {layout.display_name(name)}")
        elif category == layout.UNKNOWN:
            _add(self.noted, "unknown", f"unknown file (kept): {layout.display_name(name)}")
        elif size == 0 and category != layout.UNKNOWN and category != layout.CREDS:
            _add(self.noted, "empty", f"empty key file: {layout.display_name(name)}")
        if mtime_ns / 1e9 > self.future_after:
            _add(
                self.noted,
                "future",
                f"modified in the future (clock moved back?), age taken as 0: {layout.display_name(name)}",
            )

    def problems(self) -> list[str]:
        kinds = {"unreadable": self.unreadable, **self.noted} if self.unreadable else self.noted
        return _flatten(kinds)


def scan_listing(
    listed: Iterable[ListedEntry],
    now: float | None,
    keep: Container[str] | None,
    read_creds: Callable[[Set[str]], Creds],
) -> TenantScan:
    """Given a tenant's listing, return the counts per category, the bytes, the problems seen and
    the entries, with what `read_creds` (given the creds names listed) says creds.json holds.

    `keep` names the categories whose regular files are returned as entries (None: every entry,
    whatever its type; an empty set: none, for a scan that only counts). `now` (epoch seconds) is
    only used to report mtimes in the future. Raise OSError if the listing fails part-way.
    """
    tally = _Tally(now, keep)
    _tally_listing(listed, tally, keep is None)
    creds = read_creds(tally.creds_names)
    problems = tally.problems()
    if creds.state != "ok":
        problems.append(f"creds.json is {creds.state}")
    return TenantScan(tally.columns, creds, problems, tally.counts, tally.total_bytes)


def _tally_listing(listed: Iterable[ListedEntry], tally: _Tally, keep_all: bool) -> None:
    """One pass: classify each listed entry, count it, note its problems, keep it in its
    category's column if asked. The loop every command runs over millions of files: locals only,
    and nothing per entry that is not needed."""
    counts = tally.counts
    column_of = tally.columns.by_category.get
    grouped = tally.columns.grouped
    creds_names = tally.creds_names
    classified = layout.CLASSIFIED.get  # names met before: a dictionary lookup
    classify = layout.classify_name_cached
    # Entry(...) without its Python-level __new__: a C call, no frame (the field count is the
    # literal's below, checked by the tests)
    new = tuple.__new__
    file_type, regular_file = 0o170000, stat.S_IFREG  # the mask of stat.S_IFMT, and a regular file's type
    watched = CREDS_NAMES
    creds = layout.CREDS
    unknown = layout.UNKNOWN
    # note() decides exactly; this only lets through what may be a problem (with a second of slack).
    future_ns = (tally.future_after - 1) * 1e9
    total = 0
    for name, mode, inode, size, mtime_ns in listed:
        if mode < 0:
            error = os.strerror(inode)
            tally.unreadable.append(f"cannot stat {layout.display_name(name)}: {error}")
            continue
        total += size
        if mode & file_type == regular_file:  # S_ISREG, without a call
            category, key_name, pre_key_id = classified(name) or classify(name)
            if category == creds and name in watched:
                creds_names.add(name)
            if size == 0 or mtime_ns > future_ns or category == unknown:
                tally.note(name, category, "file", size, mtime_ns)
            column = column_of(category)
            if column is None:
                counts[category] += 1  # (a column's entries are counted at the end)
                continue
            column.append(
                new(Entry, (name, category, key_name, True, "file", inode, size, mtime_ns, pre_key_id))
            )
            if key_name != name:  # a companion: its category's keys are grouped by the planner
                grouped.add(category)
        else:
            if name in watched:
                creds_names.add(name)
            kind = _kind(mode)
            tally.note(name, unknown, kind, size, mtime_ns)
            if keep_all:
                tally.columns.by_category[unknown].append(
                    Entry(name, unknown, name, False, kind, inode, size, mtime_ns, None)
                )
            else:
                counts[unknown] += 1
    for category, column in tally.columns.by_category.items():
        counts[category] += len(column)
    tally.total_bytes = total


def _add(problems: dict[str, list[str]], kind: str, message: str) -> None:
    problems.setdefault(kind, []).append(message)


# Problems are listed kind by kind in this order, whatever order the listing met them in.
_KIND_ORDER = ("unreadable", "not-regular", "unknown", "empty", "future")


def _flatten(problems: dict[str, list[str]]) -> list[str]:
    flat = []
    for kind in sorted(problems, key=_KIND_ORDER.index):
        messages = problems[kind]
        flat.extend(messages[:_PROBLEMS_PER_KIND])
        if len(messages) > _PROBLEMS_PER_KIND:
            flat.append(f"... and {len(messages) - _PROBLEMS_PER_KIND} more like the above")
    return flat


def _kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "special file"
