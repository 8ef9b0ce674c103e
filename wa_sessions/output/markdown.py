"""The report as Markdown: the same tables as the text report, cells escaped."""

from __future__ import annotations

from wa_sessions.output.escape import one_line
from wa_sessions.output.tables import report_headline, report_sections
from wa_sessions.results import Result


def _cell(text: str) -> str:
    return one_line(text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " "))


def report_markdown(result: Result) -> str:
    lines = ["# wa-sessions report", "", _cell(report_headline(result))]
    for title, headers, rows in report_sections(result):
        lines += ["", f"## {title}", ""]
        lines.append("| " + " | ".join(_cell(h) for h in headers) + " |")
        lines.append("| " + " | ".join("---" if i == 0 else "---:" for i in range(len(headers))) + " |")
        lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]
    for error in result.errors:
        lines += ["", f"- error: {_cell(error)}"]
    return "\n".join(lines) + "\n"
