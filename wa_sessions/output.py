"""Result -> JSON document | Rich table | plain text. The only module that prints results."""

from __future__ import annotations

import io
import json
import json.encoder
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

from wa_sessions import layout
from wa_sessions.times import iso_second

# The results' types are only named in annotations: importing their modules here would make
# every command (and `--version`) import every action (see cli.py).
if TYPE_CHECKING:
    from wa_sessions.actions.cleanup import CleanupResult, TenantCleanup
    from wa_sessions.actions.common import DiskUsage, TenantState
    from wa_sessions.actions.configuration import ConfigResult
    from wa_sessions.actions.emergency import PurgeResult
    from wa_sessions.actions.fleet import NotifiedResult
    from wa_sessions.actions.report import ReportResult, TenantReport
    from wa_sessions.actions.scan import ScanResult

SCHEMA = 1

SHORT_CATEGORY = {
    layout.CREDS: "creds",
    layout.APP_STATE_SYNC_KEY: "appkey",
    layout.APP_STATE_SYNC_VERSION: "appver",
    layout.LID_MAPPING: "lid",
    layout.PRE_KEY: "prekey",
    layout.SESSION: "session",
    layout.SENDER_KEY: "skey",
    layout.SENDER_KEY_MEMORY: "skmem",
    layout.IDENTITY_KEY: "ident",
    layout.DEVICE_LIST: "devlist",
    layout.TCTOKEN: "tctoken",
    layout.UNKNOWN: "unknown",
}


@dataclass(frozen=True, slots=True)
class Style:
    """How to print: JSON, quiet, verbose; rich tables only on a terminal without NO_COLOR."""

    json: bool = False
    quiet: bool = False
    verbose: bool = False


# ---------------------------------------------------------------- JSON


def _document(command: str, root: str, generated_at: str, tenants: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "command": command,
        "root": root,
        "generated_at": generated_at,
        "tenants": tenants,
    }


def scan_fields(state: TenantState) -> dict[str, Any]:
    return {
        "company": state.company,
        "path": state.path,
        "files": state.files,
        "bytes": state.bytes,
        "status": state.status,
        "categories": dict(state.categories),
        "problems": list(state.problems),
    }


def disk_fields(disk: DiskUsage | None) -> dict[str, int] | None:
    if disk is None:
        return None
    return {
        "bytes_total": disk.bytes_total,
        "bytes_free": disk.bytes_free,
        "inodes_total": disk.inodes_total,
        "inodes_free": disk.inodes_free,
    }


def scan_document(result: ScanResult) -> dict[str, Any]:
    document = _document("scan", result.root, result.generated_at, [scan_fields(t) for t in result.tenants])
    document["disk"] = disk_fields(result.disk)
    document["fail_on"] = result.fail_on
    document["tripped"] = [tenant.company for tenant in result.tripped]
    document["errors"] = list(result.errors)
    return document


def cleanup_fields(outcome: TenantCleanup, *, files: bool = True) -> dict[str, Any]:
    """A tenant of a cleanup document (SPEC §6); without `files`, its `deleted` list is empty."""
    fields = scan_fields(outcome.before)
    fields["files_before"] = fields.pop("files")
    fields["status_before"] = fields.pop("status")
    fields.update(
        {
            "action": outcome.action,
            "skipped_reason": outcome.skipped_reason,
            "dry_run": outcome.dry_run,
            "deleted": [
                {
                    "file": layout.display_name(deletion.entry.name),
                    "category": deletion.entry.category,
                    "reason": deletion.reason,
                    "bytes": deletion.entry.size,
                }
                for deletion in (outcome.deleted if files else ())
            ],
            "files_after": outcome.files_after,
            "bytes_freed": outcome.bytes_freed,
            "errors": [{"file": file, "error": error} for file, error in outcome.errors],
            "notes": list(outcome.notes),
        }
    )
    return fields


def _document_head(command: str, root: str, generated_at: str) -> str:
    """A document's opening up to its `tenants` list: what a streamed document starts with."""
    head = json.dumps(_document(command, root, generated_at, []), ensure_ascii=False)
    return head[: -len("[]}")] + "["


def _document_tail(fields: dict[str, Any], tenants: int) -> str:
    tail = json.dumps(fields, ensure_ascii=False)[1:] if fields else "}"
    return ("\n" if tenants else "") + "]" + (", " + tail if fields else tail) + "\n"


_json_string = json.encoder.encode_basestring  # what json.dumps(..., ensure_ascii=False) writes for a str


def tenant_line(fields: dict[str, Any]) -> str:
    """One tenant of a streamed document: compact JSON on one line (the C encoder's speed)."""
    return json.dumps(fields, ensure_ascii=False)


def write_streamed_document(
    stream: TextIO, command: str, root: str, generated_at: str, lines: Sequence[str], tail: dict[str, Any]
) -> None:
    """A whole document in the streamed layout: the head, one line per tenant, the rest."""
    stream.write(_document_head(command, root, generated_at))
    for index, line in enumerate(lines):
        stream.write(("\n" if index == 0 else ",\n") + line)
    stream.write(_document_tail(tail, len(lines)))


def cleanup_document(result: CleanupResult) -> dict[str, Any]:
    document = _document(
        result.command, result.root, result.generated_at, [cleanup_fields(t) for t in result.tenants]
    )
    document["dry_run"] = result.dry_run
    document["errors"] = list(result.errors)
    return document


def print_json(document: dict[str, Any], stream: TextIO | None = None) -> None:
    stream = stream or sys.stdout
    stream.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


# ---------------------------------------------------------------- human

# Control characters (a newline or an escape sequence in a crafted file name) shown escaped, and
# the bidirectional controls (U+202E RIGHT-TO-LEFT OVERRIDE and its kin), which make a terminal
# show the rest of a line in another order: `pre-key-1\u202enosj.txt` would read `pre-key-1txt.json`.
_BIDI = (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))
_CONTROL = (
    {code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
    | {code: f"\\u{code:04x}" for code in (0x2028, 0x2029, *_BIDI)}
    | {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}
)


def one_line(text: str) -> str:
    """Text as one line of human output: control characters and bidirectional controls are shown
    escaped (`\\n`, `\\x1b`, `\\u202e`), so a file or folder name cannot forge, split, hide or
    reorder lines of what operators read."""
    return text.translate(_CONTROL)


def _use_rich(stream: TextIO) -> bool:
    return stream.isatty() and not os.environ.get("NO_COLOR")


def human_bytes(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(size) < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


def print_table(
    title: str, headers: Sequence[str], rows: Sequence[Sequence[str]], stream: TextIO | None = None
) -> None:
    """A Rich table on a terminal; aligned plain text otherwise."""
    stream = stream or sys.stdout
    title = one_line(title)
    rows = [[one_line(cell) for cell in row] for row in rows]
    if _use_rich(stream):
        # Imported here: only a terminal needs Rich, and cron and scripts should not pay for it.
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title)
        for index, header in enumerate(headers):
            table.add_column(header, justify="left" if index == 0 else "right")
        for row in rows:
            table.add_row(*row)
        # No markup, emoji codes or highlighting: a name is shown as the characters it is.
        Console(file=stream, markup=False, emoji=False, highlight=False).print(table)
        return
    widths = [
        max(len(header), *(len(row[i]) for row in rows)) if rows else len(header)
        for i, header in enumerate(headers)
    ]
    stream.write(f"{title}\n")
    for row in (headers, *rows):
        cells = [cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)]
        stream.write("  ".join(cells).rstrip() + "\n")


def _disk_line(disk: DiskUsage | None) -> str:
    if disk is None:
        return "disk: unknown"
    inode_share = f" ({disk.inodes_free * 100 // disk.inodes_total}%)" if disk.inodes_total else ""
    return (
        f"disk: {human_bytes(disk.bytes_free)} free of {human_bytes(disk.bytes_total)}; "
        f"inodes: {disk.inodes_free:,} free of {disk.inodes_total:,}{inode_share}"
    )


def render_scan(result: ScanResult, style: Style) -> None:
    if style.json:
        document = scan_document(result)
        tenants = [tenant_line(fields) for fields in document.pop("tenants")]
        tail = {
            key: value
            for key, value in document.items()
            if key not in ("schema", "command", "root", "generated_at")
        }
        write_streamed_document(sys.stdout, "scan", result.root, result.generated_at, tenants, tail)
        return
    for error in result.errors:
        sys.stderr.write("wa-sessions: " + one_line(str(error)) + "\n")
    for tenant in result.tripped:
        sys.stderr.write(
            "wa-sessions: "
            + one_line(
                f"{tenant.company} is {tenant.status} ({tenant.files} files), at or above --fail-on {result.fail_on}"
            )
            + "\n"
        )
    if style.quiet:
        return
    headers = ["company", "files", "bytes", "status", *(SHORT_CATEGORY[c] for c in layout.CATEGORIES)]
    rows = [
        [
            t.company,
            str(t.files),
            human_bytes(t.bytes),
            t.status,
            *(str(t.categories[c]) for c in layout.CATEGORIES),
        ]
        for t in result.tenants
    ]
    print_table(f"wa-sessions scan of {result.root}: {len(rows)} tenants", headers, rows)
    for tenant in result.tenants:
        for problem in tenant.problems:
            sys.stdout.write(one_line(f"{tenant.company}: problem: {problem}") + "\n")
    sys.stdout.write(_disk_line(result.disk) + "\n")


def render_cleanup(result: CleanupResult, style: Style) -> None:
    if style.json:
        print_json(cleanup_document(result))
    else:
        _render_cleanup_text(result, style)
    _cleanup_errors(result)


def _cleanup_errors(result: CleanupResult, *, show_busy: bool = True) -> None:
    """The run's errors on stderr, one line each: the run's own, each tenant's, the busy tenants
    (unless `show_busy` is False) and, for a fleet command, its warnings."""
    for error in result.errors:
        sys.stderr.write("wa-sessions: " + one_line(str(error)) + "\n")
    for outcome in result.tenants:
        for file, error in outcome.errors:
            sys.stderr.write("wa-sessions: " + one_line(f"{outcome.before.company}: {file}: {error}") + "\n")
        if outcome.lock_busy and show_busy:
            sys.stderr.write(
                "wa-sessions: "
                + one_line(f"{outcome.before.company}: skipped, {outcome.skipped_reason}")
                + "\n"
            )
    for warning in getattr(result, "warnings", ()):
        sys.stderr.write("wa-sessions: " + one_line(f"warning: {warning}") + "\n")


def _render_cleanup_text(result: CleanupResult, style: Style) -> None:
    if style.quiet:
        return
    _cleanup_table(result)
    for outcome in result.tenants:
        sys.stdout.write(cleanup_tenant_text(outcome, result.dry_run, style))


def _cleanup_table(result: CleanupResult) -> None:
    per_category = [outcome.deleted_per_category() for outcome in result.tenants]
    deleted_categories = [c for c in layout.CATEGORIES if any(counts.get(c) for counts in per_category)]
    headers = [
        "company",
        "status",
        "files",
        *(f"-{SHORT_CATEGORY[c]}" for c in deleted_categories),
        "freed",
        "after",
        "action",
    ]
    rows = []
    for outcome, counts in zip(result.tenants, per_category, strict=True):
        action = outcome.action if outcome.skipped_reason is None else f"skipped: {outcome.skipped_reason}"
        rows.append(
            [
                outcome.before.company,
                outcome.before.status,
                str(outcome.before.files),
                *(str(counts.get(c, 0)) for c in deleted_categories),
                human_bytes(outcome.bytes_freed),
                str(outcome.files_after),
                action,
            ]
        )
    label = "[dry-run] " if result.dry_run else ""
    verb = "would delete" if result.dry_run else "deleted"
    total = sum(t.deleted_count for t in result.tenants)
    freed = human_bytes(sum(t.bytes_freed for t in result.tenants))
    title = f"{label}wa-sessions {result.command} of {result.root}: {verb} {total} files ({freed}) in {len(rows)} tenants"
    print_table(title, headers, rows)


def cleanup_tenant_text(outcome: TenantCleanup, dry_run: bool, style: Style) -> str:
    """The lines printed under the table for one tenant: every file (in a dry run, or with
    --verbose), the notes, and with --verbose the problems."""
    label = "[dry-run] " if dry_run else ""
    verb = "would delete" if dry_run else "deleted"
    prefix = f"{label}{outcome.before.company}: "
    lines: list[str] = []
    if dry_run or style.verbose:
        lines.extend(
            f"{prefix}{verb} {layout.display_name(deletion.entry.name)} "
            f"({deletion.entry.category}, {deletion.entry.size} bytes): {deletion.reason}"
            for deletion in outcome.deleted
        )
    lines.extend(f"{prefix}note: {note}" for note in outcome.notes)
    if style.verbose:
        lines.extend(f"{prefix}problem: {problem}" for problem in outcome.before.problems)
    return "".join(one_line(line) + "\n" for line in lines)


def cleanup_line(outcome: TenantCleanup) -> str:
    """`tenant_line(cleanup_fields(outcome))`, built faster: a dry run of a fleet lists every file
    it would delete, so the `deleted` list is written straight from the plan, not through a dict
    per file. The same JSON text."""
    fields = cleanup_fields(outcome, files=False)
    keys = list(fields)
    split = keys.index("deleted")
    before = {key: fields[key] for key in keys[:split]}
    after = {key: fields[key] for key in keys[split + 1 :]}
    deleted = ", ".join(
        f'{{"file": {_json_string(layout.display_name(deletion.entry.name))}, '
        f'"category": {_json_string(deletion.entry.category)}, "reason": {_json_string(deletion.reason)}, '
        f'"bytes": {deletion.entry.size}}}'
        for deletion in outcome.deleted
    )
    return f'{tenant_line(before)[:-1]}, "deleted": [{deleted}], {tenant_line(after)[1:]}'


class CleanupJsonStream:
    """`cleanup --json` written tenant by tenant, in constant memory: the document's head, each
    tenant on one line (rendered where it was cleaned, in a worker with --jobs), then the rest.
    For multitenant-cleanup (a NotifiedResult), the rest has the run's warnings and whether the
    webhook was notified, as in fleet_document; `show_busy` False leaves busy tenants off stderr."""

    def __init__(self, stream: TextIO | None = None, *, show_busy: bool = True):
        self._stream = stream or sys.stdout
        self._tenants = 0
        self._show_busy = show_busy

    def begin(self, result: CleanupResult) -> None:
        self._stream.write(_document_head(result.command, result.root, result.generated_at))

    def render(self, outcome: TenantCleanup) -> str:
        return cleanup_line(outcome)

    def write(self, text: str) -> None:
        self._stream.write(("\n" if self._tenants == 0 else ",\n") + text)
        self._tenants += 1

    def end(self, result: CleanupResult) -> None:
        tail: dict[str, Any] = {"dry_run": result.dry_run, "errors": list(result.errors)}
        warnings = getattr(result, "warnings", None)
        if warnings is not None:
            tail["warnings"] = list(warnings)
            tail["notified"] = getattr(result, "notified", False)
        self._stream.write(_document_tail(tail, self._tenants))
        _cleanup_errors(result, show_busy=self._show_busy)


class CleanupTextStream:
    """`cleanup` in text, in constant memory: the lines under the table (every file of a dry
    run) are spooled to a temporary file as tenants are done, and printed after the table."""

    def __init__(self, style: Style, stream: TextIO | None = None, *, show_busy: bool = True):
        self._style = style
        self._stream = stream or sys.stdout
        self._dry_run = False
        self._spool: TextIO | None = None
        self._show_busy = show_busy

    def begin(self, result: CleanupResult) -> None:
        self._dry_run = result.dry_run

    def render(self, outcome: TenantCleanup) -> str:
        if self._style.quiet:
            return ""
        return cleanup_tenant_text(outcome, self._dry_run, self._style)

    def write(self, text: str) -> None:
        if not text:
            return
        if self._spool is None:
            self._spool = tempfile.TemporaryFile("w+", encoding="utf-8", errors="backslashreplace")  # noqa: SIM115  # closed by end()
        self._spool.write(text)

    def end(self, result: CleanupResult) -> None:
        if not self._style.quiet:
            _cleanup_table(result)
            if self._spool is not None:
                self._stream.flush()
                self._spool.seek(0)
                shutil.copyfileobj(self._spool, self._stream, 1 << 20)
        if self._spool is not None:
            self._spool.close()
        _cleanup_errors(result, show_busy=self._show_busy)


def cleanup_stream(style: Style) -> CleanupJsonStream | CleanupTextStream:
    """The streaming renderer of `cleanup` for this style (see run_cleanup's `stream`)."""
    return CleanupJsonStream() if style.json else CleanupTextStream(style)


def multitenant_stream(style: Style) -> CleanupJsonStream | CleanupTextStream:
    """The streaming renderer of `multitenant-cleanup`, where a busy tenant is skipped and the run
    still succeeds: it is mentioned on stderr only without --quiet (see render_fleet)."""
    show_busy = not style.quiet
    return (
        CleanupJsonStream(show_busy=show_busy)
        if style.json
        else CleanupTextStream(style, show_busy=show_busy)
    )


# ---------------------------------------------------------------- emergency-cleanup, multitenant-cleanup


def fleet_document(result: NotifiedResult) -> dict[str, Any]:
    """cleanup_document plus the run's warnings and whether the webhook was notified; for a purge,
    per tenant the archive written and when its newest file was written."""
    document = cleanup_document(result)
    document["warnings"] = list(result.warnings)
    document["notified"] = result.notified
    purge = _as_purge(result)
    if purge is not None:
        from wa_sessions.durations import format_duration

        document["purge_stale_dirs"] = True
        document["older_than"] = format_duration(purge.older_than)
        document["backup"] = purge.backup
        for tenant in document["tenants"]:
            tenant["backup"] = purge.archives.get(tenant["company"])
            tenant["newest_file_at"] = purge.newest_file_at.get(tenant["company"])
    return document


def _as_purge(result: NotifiedResult) -> PurgeResult | None:
    """`result` if it is a PurgeResult. Only emergency-cleanup makes one: when its module was
    never imported (multitenant-cleanup), `result` is not one, and the module stays unimported."""
    if "wa_sessions.actions.emergency" not in sys.modules:
        return None
    from wa_sessions.actions.emergency import PurgeResult

    return result if isinstance(result, PurgeResult) else None


def render_fleet(result: NotifiedResult, style: Style, *, busy_is_error: bool = True) -> None:
    """Like render_cleanup; with `busy_is_error` False (multitenant-cleanup, where a busy tenant
    is skipped and the run still succeeds) a busy tenant is mentioned only without --quiet.
    Warnings (a notification that failed) always go to stderr."""
    if style.json:
        print_json(fleet_document(result))
    else:
        _render_cleanup_text(result, style)
    for error in result.errors:
        sys.stderr.write("wa-sessions: " + one_line(str(error)) + "\n")
    for outcome in result.tenants:
        for file, error in outcome.errors:
            sys.stderr.write("wa-sessions: " + one_line(f"{outcome.before.company}: {file}: {error}") + "\n")
        if outcome.lock_busy and (busy_is_error or not style.quiet):
            sys.stderr.write(
                "wa-sessions: "
                + one_line(f"{outcome.before.company}: skipped, {outcome.skipped_reason}")
                + "\n"
            )
    for warning in result.warnings:
        sys.stderr.write("wa-sessions: " + one_line(f"warning: {warning}") + "\n")


# ---------------------------------------------------------------- report

REPORT_FORMATS = ("table", "json", "markdown", "prometheus")


def report_tenant_fields(tenant: TenantReport) -> dict[str, Any]:
    fields = scan_fields(tenant.state)
    fields["last_cleanup"] = tenant.last_cleanup
    fields["deleted_total"] = tenant.deleted_total
    fields["freed_bytes_total"] = tenant.freed_bytes_total
    return fields


def report_document(result: ReportResult) -> dict[str, Any]:
    document = _document(
        "report", result.root, result.generated_at, [report_tenant_fields(t) for t in result.tenants]
    )
    document.update(
        {
            "files": result.files,
            "bytes": result.bytes,
            "statuses": result.statuses,
            "categories": result.categories,
            "largest": [tenant.state.company for tenant in result.largest()],
            "disk": disk_fields(result.disk),
            "deleted_total": result.history.deleted,
            "freed_bytes_total": result.history.bytes,
            "last_success": {
                command: iso_second(epoch) for command, epoch in sorted(result.last_success.items())
            },
            "errors": list(result.errors),
        }
    )
    return document


def _report_sections(result: ReportResult) -> list[tuple[str, list[str], list[list[str]]]]:
    """The report's tables (title, headers, rows), shared by the table and Markdown formats."""
    statuses = result.statuses
    categories = result.categories
    sections = [
        ("Tenants per status", ["status", "tenants"], [[s, str(statuses[s])] for s in layout.STATUS_LEVELS]),
        ("Files per category", ["category", "files"], [[c, str(categories[c])] for c in layout.CATEGORIES]),
        (
            "Largest tenants",
            ["company", "files", "bytes", "status"],
            [
                [t.state.company, str(t.state.files), str(t.state.bytes), t.state.status]
                for t in result.largest()
            ],
        ),
    ]
    disk = result.disk
    if disk is not None:
        sections.append(
            (
                "Disk under root",
                ["", "total", "free", "used %"],
                [
                    [
                        "bytes",
                        str(disk.bytes_total),
                        str(disk.bytes_free),
                        _percent_used(disk.bytes_total, disk.bytes_free),
                    ],
                    [
                        "inodes",
                        str(disk.inodes_total),
                        str(disk.inodes_free),
                        _percent_used(disk.inodes_total, disk.inodes_free),
                    ],
                ],
            )
        )
    sections.append(
        (
            "Last successful runs",
            ["command", "last success"],
            [[command, iso_second(epoch)] for command, epoch in sorted(result.last_success.items())],
        )
    )
    sections.append(
        (
            "Tenants",
            ["company", "status", "files", "bytes", "problems", "last cleanup", "deleted", "freed bytes"],
            [
                [
                    t.state.company,
                    t.state.status,
                    str(t.state.files),
                    str(t.state.bytes),
                    str(len(t.state.problems)),
                    t.last_cleanup or "never",
                    str(t.deleted_total),
                    str(t.freed_bytes_total),
                ]
                for t in result.tenants
            ],
        )
    )
    return sections


def _percent_used(total: int, free: int) -> str:
    return f"{(total - free) * 100 / total:.1f}" if total else "0.0"


def _report_headline(result: ReportResult) -> str:
    return (
        f"wa-sessions report of {result.root} at {result.generated_at}: {len(result.tenants)} tenants, "
        f"{result.files} files, {result.bytes} bytes; history: {result.history.deleted} files "
        f"({result.history.bytes} bytes) deleted"
    )


def report_table(result: ReportResult, stream: TextIO) -> None:
    """The report as tables (Rich on a terminal, plain text otherwise)."""
    stream.write(one_line(_report_headline(result)) + "\n")
    for title, headers, rows in _report_sections(result):
        stream.write("\n")
        print_table(title, headers, rows, stream)


def _markdown_cell(text: str) -> str:
    return one_line(text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " "))


def report_markdown(result: ReportResult) -> str:
    lines = ["# wa-sessions report", "", _markdown_cell(_report_headline(result))]
    for title, headers, rows in _report_sections(result):
        lines += ["", f"## {title}", ""]
        lines.append("| " + " | ".join(_markdown_cell(h) for h in headers) + " |")
        lines.append("| " + " | ".join("---" if i == 0 else "---:" for i in range(len(headers))) + " |")
        lines += ["| " + " | ".join(_markdown_cell(cell) for cell in row) + " |" for row in rows]
    for error in result.errors:
        lines += ["", f"- error: {_markdown_cell(error)}"]
    return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class _Metrics:
    """Prometheus text exposition (node_exporter textfile collector): HELP and TYPE once per metric."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(
        self, name: str, kind: str, help_text: str, samples: list[tuple[dict[str, str], float]]
    ) -> None:
        full = f"wa_sessions_{name}"
        self.lines.append(f"# HELP {full} {help_text}")
        self.lines.append(f"# TYPE {full} {kind}")
        for labels, value in samples:
            shown = ",".join(f'{key}="{_label(item)}"' for key, item in labels.items())
            self.lines.append(f"{full}{{{shown}}} {_number(value)}" if shown else f"{full} {_number(value)}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def report_prometheus(result: ReportResult) -> str:
    """The report as node_exporter textfile metrics: `wa_sessions_` prefix, a `company` label."""
    metrics = _Metrics()
    tenants = result.tenants
    metrics.family(
        "tenants",
        "gauge",
        "Tenants per status level.",
        [({"status": s}, n) for s, n in result.statuses.items()],
    )
    metrics.family(
        "category_files",
        "gauge",
        "Files per category over all tenants.",
        [({"category": c}, n) for c, n in result.categories.items()],
    )
    metrics.family(
        "tenant_files",
        "gauge",
        "Files in the tenant folder (dot-entries not counted).",
        [({"company": t.state.company}, t.state.files) for t in tenants],
    )
    metrics.family(
        "tenant_bytes",
        "gauge",
        "Bytes of the tenant's files.",
        [({"company": t.state.company}, t.state.bytes) for t in tenants],
    )
    metrics.family(
        "tenant_status_level",
        "gauge",
        "Status level of the tenant: 0 healthy, 1 warning, 2 critical, 3 trigger, 4 emergency, 5 danger.",
        [({"company": t.state.company}, layout.status_rank(t.state.status)) for t in tenants],
    )
    metrics.family(
        "tenant_problems",
        "gauge",
        "Problems the scan reported for the tenant.",
        [({"company": t.state.company}, len(t.state.problems)) for t in tenants],
    )
    metrics.family(
        "tenant_last_cleanup_timestamp_seconds",
        "gauge",
        "When a file of the tenant was last deleted (from the history), Unix time.",
        [
            ({"company": t.state.company}, datetime.fromisoformat(t.last_cleanup).timestamp())
            for t in tenants
            if t.last_cleanup
        ],
    )
    metrics.family(
        "tenant_deleted_files_total",
        "counter",
        "Files deleted from the tenant (from the history).",
        [({"company": t.state.company}, t.deleted_total) for t in tenants],
    )
    metrics.family(
        "tenant_deleted_bytes_total",
        "counter",
        "Bytes deleted from the tenant (from the history).",
        [({"company": t.state.company}, t.freed_bytes_total) for t in tenants],
    )
    disk = result.disk
    if disk is not None:
        metrics.family(
            "filesystem_size_bytes", "gauge", "Size of the filesystem holding root.", [({}, disk.bytes_total)]
        )
        metrics.family(
            "filesystem_avail_bytes",
            "gauge",
            "Bytes available to us on the filesystem holding root.",
            [({}, disk.bytes_free)],
        )
        metrics.family(
            "filesystem_files", "gauge", "Inodes of the filesystem holding root.", [({}, disk.inodes_total)]
        )
        metrics.family(
            "filesystem_files_free",
            "gauge",
            "Free inodes of the filesystem holding root.",
            [({}, disk.inodes_free)],
        )
    metrics.family(
        "last_success_timestamp_seconds",
        "gauge",
        "When the command last finished successfully (exit 0, not a dry run), Unix time.",
        [({"command": command}, epoch) for command, epoch in sorted(result.last_success.items())],
    )
    metrics.family(
        "scan_errors", "gauge", "Tenant folders the report could not read.", [({}, len(result.errors))]
    )
    metrics.family(
        "report_timestamp_seconds",
        "gauge",
        "When this report was generated, Unix time.",
        [({}, datetime.fromisoformat(result.generated_at).timestamp())],
    )
    return metrics.text()


def report_text(result: ReportResult, report_format: str) -> str:
    """The report in one of REPORT_FORMATS, as text (tables always plain)."""
    if report_format == "json":
        return json.dumps(report_document(result), indent=2, ensure_ascii=False) + "\n"
    if report_format == "markdown":
        return report_markdown(result)
    if report_format == "prometheus":
        return report_prometheus(result)
    buffer = io.StringIO()
    report_table(result, buffer)
    return buffer.getvalue()


def render_report(result: ReportResult, report_format: str, style: Style) -> None:
    """Print the report on stdout (tables as Rich on a terminal; --quiet does not silence what was
    asked for); errors on stderr."""
    if report_format == "table":
        report_table(result, sys.stdout)
    else:
        sys.stdout.write(report_text(result, report_format))
    for error in result.errors:
        sys.stderr.write("wa-sessions: " + one_line(str(error)) + "\n")


def render_report_written(result: ReportResult, path: os.PathLike[str], style: Style) -> None:
    """After `--output FILE`: errors on stderr; with --verbose, say where the report went."""
    if style.verbose and not style.quiet:
        sys.stdout.write(one_line(f"wrote {os.fspath(path)}") + "\n")
    for error in result.errors:
        sys.stderr.write("wa-sessions: " + one_line(str(error)) + "\n")


# ---------------------------------------------------------------- config show / validate


def _config_value(value: Any) -> str:
    if value is None:
        return "null"
    return value if isinstance(value, str) else json.dumps(value)


def render_config(result: ConfigResult, style: Style) -> None:
    if style.json:
        document = _document(result.command, result.root, result.generated_at, [])
        document["config_file"] = result.config_file
        document["valid"] = True
        document["settings"] = [{"key": v.key, "value": v.value, "source": v.source} for v in result.values]
        print_json(document)
        return
    if style.quiet:
        return
    if result.command == "config validate":
        where = result.config_file or "no config file; defaults and environment"
        sys.stdout.write(one_line(f"configuration is valid ({where})") + "\n")
        return
    sys.stdout.write(one_line(f"config file: {result.config_file or '(none)'}") + "\n")
    rows = [(one_line(v.key), one_line(_config_value(v.value)), one_line(v.source)) for v in result.values]
    key_width = max(len(key) for key, _, _ in rows)
    value_width = max(len(value) for _, value, _ in rows)
    for key, value, source in rows:
        sys.stdout.write(f"{key.ljust(key_width)}  {value.ljust(value_width)}  {source}\n")
