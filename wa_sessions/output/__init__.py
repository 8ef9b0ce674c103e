"""Result -> what the operator or the script reads: JSON (json.py), text (text.py), Markdown
(markdown.py), Prometheus (prometheus.py). The only package that prints results.

Each format module is imported where it is used: `--json` need not import Rich, nor a table
prometheus_client.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from wa_sessions.output.escape import one_line
from wa_sessions.output.text import error_line

if TYPE_CHECKING:
    from wa_sessions.results import Outcome, Result
    from wa_sessions.spool import Piece, Spool

__all__ = ["REPORT_FORMATS", "Style", "error_line", "one_line"]

REPORT_FORMATS = ("table", "json", "markdown", "prometheus")


@dataclass(frozen=True, slots=True)
class Style:
    """How to print: JSON, quiet, verbose; rich tables only on a terminal without NO_COLOR.
    `summary`: a cleanup's totals and per-category counts without its file lines; `wide`: every
    category column of the scan table (else the ones cleanup rules act on, and the rest summed)."""

    json: bool = False
    quiet: bool = False
    verbose: bool = False
    summary: bool = False
    wide: bool = False


class Stream(Protocol):
    """A cleanup command's output written tenant by tenant (see actions.cleanup.TenantStream)."""

    def begin(self, result: Result) -> None: ...

    def render(self, outcome: Outcome) -> str: ...

    def write(self, text: str) -> None: ...

    def spool(self) -> Spool: ...

    def write_piece(self, spool: Spool, piece: Piece) -> None: ...

    def end(self, result: Result) -> None: ...


class _Finishing:
    """A stream that, once done, writes the run's errors and warnings on stderr."""

    def __init__(self, inner: Stream, style: Style):
        self._inner, self._style = inner, style

    def begin(self, result: Result) -> None:
        self._inner.begin(result)

    def render(self, outcome: Outcome) -> str:
        return self._inner.render(outcome)

    def write(self, text: str) -> None:
        self._inner.write(text)

    def spool(self) -> Spool:
        return self._inner.spool()

    def write_piece(self, spool: Spool, piece: Piece) -> None:
        self._inner.write_piece(spool, piece)

    def end(self, result: Result) -> None:
        from wa_sessions.output.text import write_errors

        self._inner.end(result)
        write_errors(result, self._style)


def cleanup_stream(style: Style) -> Stream:
    """The streaming renderer of cleanup and multitenant-cleanup for this style."""
    from wa_sessions.output.json import JsonStream
    from wa_sessions.output.text import TextStream

    return _Finishing(JsonStream() if style.json else TextStream(style), style)


def render(result: Result, style: Style) -> None:
    """Print a whole result (scan, emergency-cleanup, config): JSON or text on stdout, errors and
    warnings on stderr."""
    from wa_sessions.output import text

    if result.command in ("explain", "history"):
        _render_query(result, style)
        return
    if style.json:
        from wa_sessions.output.json import write_document

        write_document(result)
        if result.command != "scan":
            text.write_errors(result, style)
        return
    text.write_errors(result, style)
    if result.command == "scan":
        text.write_scan(result, style)
    elif result.command.startswith("config"):
        from wa_sessions.output.config import write_config

        write_config(result, style)
    else:
        text.write_cleanup(result, style)


def _render_query(result: Result, style: Style) -> None:
    """explain and history (output/explain.py, output/history.py): the document or the text on
    stdout, the errors on stderr."""
    from wa_sessions.output.text import write_errors

    if result.command == "explain":
        from wa_sessions.output.explain import write_explain_json, write_explain_text

        if style.json:
            write_explain_json(result)
        else:
            write_explain_text(result, style)
    else:
        from wa_sessions.output.history import write_history_json, write_history_text

        if style.json:
            write_history_json(result)
        else:
            write_history_text(result, style)
    write_errors(result, style)


def report_text(result: Result, report_format: str) -> str:
    """The report in one of REPORT_FORMATS, as text (tables always plain)."""
    if report_format == "json":
        from wa_sessions.output.json import document_text

        return document_text(result)
    if report_format == "markdown":
        from wa_sessions.output.markdown import report_markdown

        return report_markdown(result)
    if report_format == "prometheus":
        from wa_sessions.output.prometheus import report_prometheus

        return report_prometheus(result)
    import io

    from wa_sessions.output.tables import write_report_table

    buffer = io.StringIO()
    write_report_table(result, buffer)
    return buffer.getvalue()


def render_report(
    result: Result, report_format: str, style: Style, output_file: os.PathLike[str] | None
) -> None:
    """Print the report on stdout (tables as Rich on a terminal; --quiet does not silence what was
    asked for), or write it to `output_file` atomically (0644); errors on stderr. Raise StateError."""
    from wa_sessions.output.tables import write_report_table
    from wa_sessions.output.text import write_errors

    if output_file is not None:
        from pathlib import Path

        from wa_sessions.state import write_atomically

        data = report_text(result, report_format).encode("utf-8")
        write_atomically(Path(output_file), data, mode=0o644)
        if style.verbose and not style.quiet:
            sys.stdout.write(one_line(f"wrote {os.fspath(output_file)}") + "\n")
    elif report_format == "table":
        write_report_table(result, sys.stdout)
    else:
        sys.stdout.write(report_text(result, report_format))
    write_errors(result, style)
