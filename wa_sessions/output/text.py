"""Result -> human text: Rich tables on a terminal, aligned plain text otherwise (and with
NO_COLOR); errors and warnings one line each on stderr. Names are shown escaped (`one_line`)."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from wa_sessions import layout
from wa_sessions.results import DiskUsage, Outcome, Result

if TYPE_CHECKING:
    from wa_sessions.output import Style

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


def error_line(message: str) -> None:
    """One line on stderr: `wa-sessions: <message>`; off a terminal (a cron mail, a file) with the
    UTC time after the prefix: `wa-sessions: 2026-05-01T03:15:02Z <message>`. Not into the
    systemd journal (JOURNAL_STREAM names stderr's device:inode), which times every line itself."""
    from wa_sessions.times import iso_datetime, utc_now

    timed = False  # whether a terminal or the journal shows the time already
    try:
        timed = sys.stderr.isatty()
        if not timed and os.environ.get("JOURNAL_STREAM"):
            info = os.fstat(sys.stderr.fileno())
            timed = os.environ["JOURNAL_STREAM"] == f"{info.st_dev}:{info.st_ino}"
    except (OSError, ValueError, AttributeError):  # no descriptor (a test's buffer), or closed
        pass
    stamp = "" if timed else iso_datetime(utc_now()) + " "
    sys.stderr.write("wa-sessions: " + stamp + one_line(message) + "\n")


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
    if stream.isatty() and not os.environ.get("NO_COLOR"):
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


def write_scan(result: Result, style: Style) -> None:
    for tenant in result.tripped:
        error_line(
            f"{tenant.company} is {tenant.status} ({tenant.files} files), at or above --fail-on {result.fail_on}"
        )
    if style.quiet:
        return
    headers = ["company", "files", "bytes", "status", *(SHORT_CATEGORY[c] for c in layout.CATEGORIES)]
    states = [t.before for t in result.tenants]
    rows = [
        [
            s.company,
            str(s.files),
            human_bytes(s.bytes),
            s.status,
            *(str(s.categories[c]) for c in layout.CATEGORIES),
        ]
        for s in states
    ]
    print_table(f"wa-sessions scan of {result.root}: {len(rows)} tenants", headers, rows)
    for state in states:
        for problem in state.problems:
            sys.stdout.write(one_line(f"{state.company}: problem: {problem}") + "\n")
    sys.stdout.write(_disk_line(result.disk) + "\n")


def write_errors(result: Result, style: Style) -> None:
    """The run's errors on stderr, one line each: the run's own, each tenant's, the busy tenants
    (where a busy tenant is no failure, only without --quiet) and the warnings."""
    for error in result.errors:
        error_line(error)
    show_busy = result.busy_is_error or not style.quiet
    for outcome in result.tenants:
        for file, error in outcome.errors:
            error_line(f"{outcome.before.company}: {file}: {error}")
        if outcome.lock_busy and show_busy:
            error_line(f"{outcome.before.company}: skipped, {outcome.skipped_reason}")
    for warning in result.warnings:
        error_line(f"warning: {warning}")


def cleanup_table(result: Result) -> None:
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


def tenant_text(outcome: Outcome, dry_run: bool, style: Style) -> str:
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


def write_cleanup(result: Result, style: Style) -> None:
    """A whole cleanup: the table, then every tenant's lines."""
    if style.quiet:
        return
    cleanup_table(result)
    for outcome in result.tenants:
        sys.stdout.write(tenant_text(outcome, result.dry_run, style))


class TextStream:
    """A cleanup command in text, in constant memory: the lines under the table (every file of a
    dry run) are spooled to a temporary file as tenants are done, and printed after the table."""

    def __init__(self, style: Style, stream: TextIO | None = None):
        self._style = style
        self._stream = stream or sys.stdout
        self._dry_run = False
        self._spool: TextIO | None = None

    def begin(self, result: Result) -> None:
        self._dry_run = result.dry_run

    def render(self, outcome: Outcome) -> str:
        if self._style.quiet:
            return ""
        return tenant_text(outcome, self._dry_run, self._style)

    def write(self, text: str) -> None:
        if not text:
            return
        if self._spool is None:
            self._spool = tempfile.TemporaryFile("w+", encoding="utf-8", errors="backslashreplace")  # noqa: SIM115  # closed by end()
        self._spool.write(text)

    def end(self, result: Result) -> None:
        if not self._style.quiet:
            cleanup_table(result)
            if self._spool is not None:
                self._stream.flush()
                self._spool.seek(0)
                shutil.copyfileobj(self._spool, self._stream, 1 << 20)
        if self._spool is not None:
            self._spool.close()


# ---------------------------------------------------------------- config show / validate


def write_config(result: Result, style: Style) -> None:
    if style.quiet:
        return
    if result.command == "config validate":
        where = result.config_file or "no config file; defaults and environment"
        sys.stdout.write(one_line(f"configuration is valid ({where})") + "\n")
        return
    sys.stdout.write(one_line(f"config file: {result.config_file or '(none)'}") + "\n")
    rows = [
        (one_line(v.key), one_line(_config_value(v.value)), one_line(v.source)) for v in result.config_values
    ]
    key_width = max(len(key) for key, _, _ in rows)
    value_width = max(len(value) for _, value, _ in rows)
    for key, value, source in rows:
        sys.stdout.write(f"{key.ljust(key_width)}  {value.ljust(value_width)}  {source}\n")


def _config_value(value: object) -> str:
    import json

    if value is None:
        return "null"
    return value if isinstance(value, str) else json.dumps(value)
