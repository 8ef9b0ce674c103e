"""`history` -> text (a headline, then one line per deletion, newest first) or JSON (schema 1:
per company totals under `tenants`, the deletions under `records`)."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any, TextIO

from wa_sessions.output.escape import one_line
from wa_sessions.output.json import document_head
from wa_sessions.results import HistoryRecord, Result

if TYPE_CHECKING:
    from wa_sessions.output import Style


def record_fields(record: HistoryRecord) -> dict[str, Any]:
    return {
        "time": record.time or None,
        "company": record.company,
        "command": record.command,
        "file": record.file,
        "category": record.category,
        "reason": record.reason,
        "bytes": record.bytes,
        "mtime": record.mtime,
        "deleted": record.deleted,
        "error": record.error,
    }


def company_totals(result: Result) -> list[dict[str, Any]]:
    """Per company of the records shown: files deleted and bytes freed (taken back ones not counted)."""
    totals: dict[str, dict[str, Any]] = {}
    for record in result.history:
        total = totals.setdefault(record.company, {"company": record.company, "deleted": 0, "bytes": 0})
        if record.deleted:
            total["deleted"] += 1
            total["bytes"] += record.bytes
    return [totals[company] for company in sorted(totals)]


def write_history_json(result: Result, stream: TextIO | None = None) -> None:
    stream = stream or sys.stdout
    stream.write(document_head(result))
    tenants = ",\n".join(json.dumps(total, ensure_ascii=False) for total in company_totals(result))
    records = ",\n".join(json.dumps(record_fields(r), ensure_ascii=False) for r in result.history)
    stream.write(f"\n{tenants}\n" if tenants else "")
    stream.write('], "records": [' + (f"\n{records}\n" if records else ""))
    stream.write("], " + json.dumps({"errors": list(result.errors)}, ensure_ascii=False)[1:] + "\n")


def history_line(record: HistoryRecord) -> str:
    what = "deleted" if record.deleted else f"not deleted ({record.error})"
    reason = f": {record.reason}" if record.reason else ""
    return (
        f"{record.time or 'unknown time'}  {record.company}  {record.command}: {what} {record.file} "
        f"({record.category}, {record.bytes} bytes){reason}"
    )


def write_history_text(result: Result, style: Style, stream: TextIO | None = None) -> None:
    if style.quiet:
        return
    stream = stream or sys.stdout
    deleted = [record for record in result.history if record.deleted]
    if not result.history:
        headline = f"wa-sessions history of {result.root}: no deletions recorded"
    else:
        freed = sum(record.bytes for record in deleted)
        kept = len(result.history) - len(deleted)
        not_done = f", {kept} not done" if kept else ""
        headline = (
            f"wa-sessions history of {result.root}: {len(deleted)} files deleted "
            f"({freed} bytes){not_done}, newest first"
        )
    stream.write(one_line(headline) + "\n")
    for record in result.history:
        stream.write(one_line(history_line(record)) + "\n")
