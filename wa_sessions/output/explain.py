"""`explain` -> text (one block per file) or JSON (schema 1, the explained files under `files`)."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any, TextIO

from wa_sessions.output.escape import one_line
from wa_sessions.output.json import document_head, tenant_line
from wa_sessions.results import Explanation, Result, Verdict

if TYPE_CHECKING:
    from wa_sessions.output import Style


def _verdict_fields(verdict: Verdict) -> dict[str, Any]:
    return {"delete": verdict.delete, "reason": verdict.reason}


def explanation_fields(explained: Explanation) -> dict[str, Any]:
    return {
        "path": explained.path,
        "company": explained.company,
        "file": explained.file,
        "category": explained.category,
        "cleanup": _verdict_fields(explained.cleanup),
        "emergency": _verdict_fields(explained.emergency),
        "rule": {"cleanup": explained.cleanup_rule, "emergency": explained.emergency_rule},
        "guard": explained.guard,
    }


def write_explain_json(result: Result, stream: TextIO | None = None) -> None:
    """The document: head, `tenants` (the scan fields of each tenant looked at), `files`, `errors`."""
    stream = stream or sys.stdout
    stream.write(document_head(result))
    for index, outcome in enumerate(result.tenants):
        stream.write(("\n" if index == 0 else ",\n") + tenant_line(outcome, result.command))
    files = ",\n".join(json.dumps(explanation_fields(e), ensure_ascii=False) for e in result.explained)
    tail = json.dumps({"errors": list(result.errors)}, ensure_ascii=False)[1:]
    stream.write(("\n" if result.tenants else "") + '], "files": [' + (f"\n{files}\n" if files else ""))
    stream.write("], " + tail + "\n")


def _decision(verdict: Verdict) -> str:
    return verdict.reason if not verdict.delete else f"delete: {verdict.reason}"


def explain_text(explained: Explanation) -> str:
    """One file: its path, then one labelled line per fact."""
    rules = f"cleanup {explained.cleanup_rule or 'none'}; emergency {explained.emergency_rule or 'none'}"
    lines = [
        explained.path,
        f"  company    {explained.company}",
        f"  category   {explained.category}",
        f"  rule       {rules}",
        f"  guard      {explained.guard or 'none'}",
        f"  cleanup    {_decision(explained.cleanup)}",
        f"  emergency  {_decision(explained.emergency)}",
    ]
    return "".join(one_line(line) + "\n" for line in lines)


def write_explain_text(result: Result, style: Style, stream: TextIO | None = None) -> None:
    if style.quiet:
        return
    stream = stream or sys.stdout
    stream.write("\n".join(explain_text(explained) for explained in result.explained))
