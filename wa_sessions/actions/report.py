"""`wa-sessions report`: a fleet summary from one scan and the history in `<state_dir>`.

Read only. Tenants per status, files per category, the largest tenants, disk and inode use under
root, and per tenant the last cleanup and what the history says was deleted (rotated generations
and the compacted summary included). Rendering (table, JSON, Markdown, Prometheus) is output/'s.
"""

from __future__ import annotations

from wa_sessions.actions.scan import run_scan
from wa_sessions.config import Settings
from wa_sessions.history_totals import DeletionTotals, history_totals
from wa_sessions.results import Result
from wa_sessions.state import StateError, read_last_successes


def run_report(settings: Settings) -> Result:
    """Scan every tenant and read the history; return the fleet summary."""
    result = run_scan(settings, [])
    result.command = "report"
    state_dir = settings.effective_state_dir
    try:
        totals = history_totals(state_dir)
    except StateError as error:
        totals = {}
        result.errors.append(f"history not read: {error}")
    for tenant in result.tenants:
        total = totals.get(tenant.before.company, DeletionTotals())
        tenant.last_cleanup = total.last_cleanup
        tenant.deleted_total, tenant.freed_bytes_total = total.deleted, total.bytes
    history = DeletionTotals()
    for total in totals.values():
        history.merge(total)
    result.history_deleted, result.history_freed_bytes = history.deleted, history.bytes
    result.last_success = read_last_successes(state_dir)
    return result
