"""`wa-sessions report`: a fleet summary from one scan and the history in `<state_dir>`.

Read only. Tenants per status, files per category, the largest tenants, disk and inode use under
root, and per tenant the last cleanup and what the history says was deleted (rotated generations
and the compacted summary included). Rendering (table, JSON, Markdown, Prometheus) is output.py's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from wa_sessions import layout
from wa_sessions.actions.common import DiskUsage, TenantState
from wa_sessions.actions.scan import run_scan
from wa_sessions.config import Settings
from wa_sessions.history import DeletionTotals, history_totals
from wa_sessions.state import StateError, read_last_successes

LARGEST = 10


@dataclass(slots=True)
class TenantReport:
    """One tenant: the scan fields, and its totals from the history."""

    state: TenantState
    last_cleanup: str | None = None
    deleted_total: int = 0
    freed_bytes_total: int = 0


@dataclass(slots=True)
class ReportResult:
    root: str
    generated_at: str
    tenants: list[TenantReport]
    disk: DiskUsage | None
    last_success: dict[str, float] = field(default_factory=dict)
    history: DeletionTotals = field(default_factory=DeletionTotals)
    errors: list[str] = field(default_factory=list)

    @property
    def statuses(self) -> dict[str, int]:
        """Tenants per status level, every level present."""
        counts = dict.fromkeys(layout.STATUS_LEVELS, 0)
        for tenant in self.tenants:
            counts[tenant.state.status] += 1
        return counts

    @property
    def categories(self) -> dict[str, int]:
        """Files per category over the fleet, every category present."""
        counts = dict.fromkeys(layout.CATEGORIES, 0)
        for tenant in self.tenants:
            for category, count in tenant.state.categories.items():
                counts[category] += count
        return counts

    @property
    def files(self) -> int:
        return sum(tenant.state.files for tenant in self.tenants)

    @property
    def bytes(self) -> int:
        return sum(tenant.state.bytes for tenant in self.tenants)

    def largest(self, count: int = LARGEST) -> list[TenantReport]:
        """The `count` tenants with the most files (ties by company id)."""
        ranked = sorted(self.tenants, key=lambda tenant: (-tenant.state.files, tenant.state.company))
        return ranked[:count]

    @property
    def exit_code(self) -> int:
        return 1 if self.errors else 0


def run_report(settings: Settings) -> ReportResult:
    """Scan every tenant and read the history; return the fleet summary."""
    scanned = run_scan(settings, [])
    errors = list(scanned.errors)
    state_dir = settings.effective_state_dir
    try:
        totals = history_totals(state_dir)
    except StateError as error:
        totals = {}
        errors.append(f"history not read: {error}")
    tenants = []
    for state in scanned.tenants:
        total = totals.get(state.company, DeletionTotals())
        tenants.append(TenantReport(state, total.last_cleanup, total.deleted, total.bytes))
    history = DeletionTotals()
    for total in totals.values():
        history.merge(total)
    return ReportResult(
        root=scanned.root,
        generated_at=scanned.generated_at,
        tenants=tenants,
        disk=scanned.disk,
        last_success=read_last_successes(state_dir),
        history=history,
        errors=errors,
    )
