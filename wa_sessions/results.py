"""The one Result every command returns, and the one Outcome per tenant in it.

Actions build a Result; output/ renders it (JSON, text, Markdown, Prometheus). Fields a command
does not use keep their defaults: a scan's outcomes have no action, a cleanup's no history totals.
"""

from __future__ import annotations

import collections
import dataclasses
import operator
from dataclasses import dataclass, field
from typing import Any, Literal

from wa_sessions import layout
from wa_sessions.rules import Deletion

LOCK_BUSY = "locked by another process"

_size = operator.attrgetter("entry.size")  # of a Deletion: in C, no frame per deleted file
_category = operator.attrgetter("entry.category")


@dataclass(frozen=True, slots=True)
class DiskUsage:
    """Free space and free inodes of the filesystem holding root."""

    bytes_total: int
    bytes_free: int
    inodes_total: int
    inodes_free: int


@dataclass(frozen=True, slots=True)
class StoreMemory:
    """The memory of the server holding a store (Redis INFO memory) or, `kind` "table", the size
    of the store's table (MySQL): what free disk and inodes are for folders. `max_bytes` 0: no
    limit set (`maxmemory 0`; a table has none)."""

    server: str
    used_bytes: int
    max_bytes: int
    kind: Literal["memory", "table"] = "memory"


@dataclass(slots=True)
class TenantState:
    """A tenant as one scan saw it (the scan fields of SPEC §6)."""

    company: str
    path: str
    files: int = 0
    bytes: int = 0
    status: str = "healthy"
    categories: dict[str, int] = field(default_factory=lambda: dict.fromkeys(layout.CATEGORIES, 0))
    problems: list[str] = field(default_factory=list)

    @property
    def known(self) -> bool:
        """Whether the tenant could be read: an `unknown` one has no counts (JSON `files: null`),
        whatever its zeros here say."""
        return self.status != layout.UNKNOWN_STATUS


@dataclass(frozen=True, slots=True)
class DeletedTally:
    """How many files (and bytes) a tenant's cleanup deleted, in all and per category."""

    files: int
    bytes: int
    per_category: dict[str, int]


@dataclass(slots=True)
class Outcome:
    """One tenant in a Result: the scan (`before`); for a cleanup what was (or would be) deleted
    and why; for a report the history's totals; for a purge the archive and the newest file."""

    before: TenantState
    action: str = "none"
    dry_run: bool = False
    skipped_reason: str | None = None
    deleted: list[Deletion] = field(default_factory=list)
    files_after: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tally: DeletedTally | None = None  # set (and `deleted` emptied) once the file list was streamed out
    last_cleanup: str | None = None  # report: from the history
    deleted_total: int = 0
    freed_bytes_total: int = 0
    backup: str | None = None  # purge: the archive written
    newest_file_at: str | None = None

    @property
    def bytes_freed(self) -> int:
        if self.tally is not None:
            return self.tally.bytes
        return sum(map(_size, self.deleted))

    @property
    def deleted_count(self) -> int:
        return self.tally.files if self.tally is not None else len(self.deleted)

    def deleted_per_category(self) -> dict[str, int]:
        if self.tally is not None:
            return dict(self.tally.per_category)
        return dict(collections.Counter(map(_category, self.deleted)))

    def compacted(self) -> Outcome:
        """This outcome without its file list (only the tally of it): what a streamed run keeps
        of each tenant, so that a fleet of millions of files fits in constant memory."""
        tally = DeletedTally(self.deleted_count, self.bytes_freed, self.deleted_per_category())
        return dataclasses.replace(self, deleted=[], tally=tally)

    @property
    def lock_busy(self) -> bool:
        return self.skipped_reason == LOCK_BUSY


def skipped(before: TenantState, dry_run: bool, why: str, error: tuple[str, str] | None = None) -> Outcome:
    """A tenant left alone: skipped for `why`, with `error` (exit 1) when it is one."""
    outcome = Outcome(before, "skipped", dry_run, skipped_reason=why, files_after=before.files)
    if error is not None:
        outcome.errors.append(error)
    return outcome


@dataclass(frozen=True, slots=True)
class ConfigValue:
    """One effective setting: dotted key, value as JSON, and its source."""

    key: str
    value: Any
    source: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one profile would do with a file now: delete it or not, and why (for a deletion, the
    reason a real run would record)."""

    delete: bool
    reason: str


@dataclass(frozen=True, slots=True)
class Explanation:
    """One file as `explain` sees it: its category, the rule of each profile for that category
    (`max_age 14d`, `keep_newest 50`; None: no rule), the guard that applies to it (or None), and
    the verdicts of `cleanup` and `emergency-cleanup`."""

    path: str
    company: str
    file: str
    category: str
    cleanup_rule: str | None
    emergency_rule: str | None
    guard: str | None
    cleanup: Verdict
    emergency: Verdict


@dataclass(frozen=True, slots=True)
class HistoryRecord:
    """One deletion of the history. `deleted` is False when a `failed` line took it back (the
    file stayed), with that line's `error`; `command` is "unknown" for records written before
    the history named it."""

    time: str
    company: str
    command: str
    file: str
    category: str
    reason: str
    bytes: int
    mtime: str | None
    deleted: bool = True
    error: str | None = None


@dataclass(slots=True)
class Result:
    """What a command did or saw. `busy_is_error` is False where a busy tenant is skipped and
    the run still succeeds (multitenant-cleanup)."""

    command: str
    root: str
    generated_at: str
    tenants: list[Outcome] = field(default_factory=list)
    dry_run: bool = False
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notified: bool | None = None  # None: the command notifies nobody
    busy_is_error: bool = True
    disk: DiskUsage | None = None  # scan, report
    memory: StoreMemory | None = None  # scan, report on a store
    fail_on: str | None = None  # scan
    rule_categories: frozenset[str] = frozenset()  # scan, report: the categories rules act on
    last_success: dict[str, float] = field(default_factory=dict)  # report: per command
    history_deleted: int = 0  # report: files the whole history deleted (tenants gone since included)
    history_freed_bytes: int = 0
    purge_older_than: int | None = None  # emergency-cleanup --purge-stale-dirs
    purge_backup: bool = True
    purge_include_paired: bool = False
    config_file: str | None = None  # config show / validate
    config_values: list[ConfigValue] = field(default_factory=list)
    explained: list[Explanation] = field(default_factory=list)  # explain
    history: list[HistoryRecord] = field(default_factory=list)  # history, newest first

    @property
    def tripped(self) -> list[TenantState]:
        """Tenants at or above `--fail-on`."""
        if self.fail_on is None:
            return []
        floor = layout.status_rank(self.fail_on)
        return [t.before for t in self.tenants if layout.status_rank(t.before.status) >= floor]

    @property
    def exit_code(self) -> int:
        """1 when the run, a tenant or a file failed or `--fail-on` tripped; else 3 when a lock
        this command needed was busy; else 0 (SPEC §7)."""
        if self.errors or self.tripped or any(tenant.errors for tenant in self.tenants):
            return 1
        if self.busy_is_error and any(tenant.lock_busy for tenant in self.tenants):
            return 3
        return 0

    # ---- the report's fleet totals

    @property
    def statuses(self) -> dict[str, int]:
        """Tenants per status, every level and `unknown` present."""
        counts = dict.fromkeys(layout.STATUSES, 0)
        for tenant in self.tenants:
            counts[tenant.before.status] += 1
        return counts

    @property
    def categories(self) -> dict[str, int]:
        """Files per category over the fleet, every category present."""
        counts = dict.fromkeys(layout.CATEGORIES, 0)
        for tenant in self.tenants:
            for category, count in tenant.before.categories.items():
                counts[category] += count
        return counts

    @property
    def files(self) -> int:
        return sum(tenant.before.files for tenant in self.tenants)

    @property
    def bytes(self) -> int:
        return sum(tenant.before.bytes for tenant in self.tenants)

    def largest(self, count: int = 10) -> list[Outcome]:
        """The `count` tenants with the most files (ties by company id)."""
        return sorted(self.tenants, key=lambda t: (-t.before.files, t.before.company))[:count]
