"""Result -> human text: Rich tables on a terminal, aligned plain text otherwise (and with
NO_COLOR); errors and warnings one line each on stderr. Names are shown escaped (`one_line`)."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from typing import TYPE_CHECKING, TextIO

from wa_sessions import layout
from wa_sessions.output.escape import one_line
from wa_sessions.output.tabular import count_of, fits, human_bytes, memory_line, print_table
from wa_sessions.results import DiskUsage, Outcome, Result, TenantState

if TYPE_CHECKING:
    from wa_sessions.output import Style
    from wa_sessions.spool import Piece, Spool

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


def _disk_line(disk: DiskUsage | None) -> str:
    if disk is None:
        return "disk: unknown"
    inode_share = f" ({disk.inodes_free * 100 // disk.inodes_total}%)" if disk.inodes_total else ""
    return (
        f"disk: {human_bytes(disk.bytes_free)} free of {human_bytes(disk.bytes_total)}; "
        f"inodes: {disk.inodes_free:,} free of {disk.inodes_total:,}{inode_share}"
    )


def scan_columns(result: Result, wide: bool) -> tuple[list[str], list[str]]:
    """The scan table's category columns: every category with --wide; else the categories the
    rules act on, the others summed under `other` (unknown entries are named in the problems)."""
    if wide:
        return list(layout.CATEGORIES), []
    shown = [c for c in layout.CATEGORIES if c in result.rule_categories]
    return shown, [c for c in layout.CATEGORIES if c not in shown]


def _count(state: TenantState, count: int) -> str:
    return str(count) if state.known else "?"


def write_scan(result: Result, style: Style) -> None:
    for tenant in result.tripped:
        error_line(
            f"{tenant.company} is {tenant.status} ({tenant.files} files), at or above --fail-on {result.fail_on}"
        )
    if style.quiet:
        return
    shown, summed = scan_columns(result, style.wide)
    headers = [
        "company",
        "files",
        "bytes",
        "status",
        *(SHORT_CATEGORY[c] for c in shown),
        *(["other"] if summed else []),
    ]
    states = [t.before for t in result.tenants]
    rows = [
        [
            s.company,
            _count(s, s.files),
            human_bytes(s.bytes) if s.known else "?",
            s.status,
            *(_count(s, s.categories[c]) for c in shown),
            *([_count(s, sum(s.categories[c] for c in summed))] if summed else []),
        ]
        for s in states
    ]
    print_table(f"wa-sessions scan of {result.root}: {count_of(len(rows), 'tenant')}", headers, rows)
    if summed:
        sys.stdout.write("other: the files of the other categories (--wide: a column each)\n")
    for state in states:
        for problem in state.problems:
            sys.stdout.write(one_line(f"{state.company}: problem: {problem}") + "\n")
    space = _disk_line(result.disk) if result.memory is None else memory_line(result.memory)
    sys.stdout.write(space + "\n")


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
    """The cleanup summary table: per tenant the files deleted per category, freed, after and
    the action. On a terminal too narrow for a column per category, one `deleted` column, and
    the files per category on the line under the table."""
    per_category = [outcome.deleted_per_category() for outcome in result.tenants]
    deleted_categories = [c for c in layout.CATEGORIES if any(counts.get(c) for counts in per_category)]
    headers, rows = _cleanup_rows(result, per_category, deleted_categories)
    foldable = (len(headers) - 1,)  # the action (a skipped tenant's reason) wraps on a narrow terminal
    if fits(headers, rows, sys.stdout, foldable=foldable):
        print_table(_cleanup_title(result), headers, rows, foldable=foldable)
        return
    headers, rows = _cleanup_rows(result, per_category, None)
    print_table(_cleanup_title(result), headers, rows, foldable=foldable)
    if deleted_categories:
        totals = {c: sum(counts.get(c, 0) for counts in per_category) for c in deleted_categories}
        sys.stdout.write("deleted per category: " + ", ".join(f"{c} {n}" for c, n in totals.items()) + "\n")


def _cleanup_rows(
    result: Result, per_category: list[dict[str, int]], categories: list[str] | None
) -> tuple[list[str], list[list[str]]]:
    """The cleanup table: a column per category in `categories`, or with None one `deleted`."""
    columns = [f"-{SHORT_CATEGORY[c]}" for c in categories] if categories is not None else ["deleted"]
    headers = ["company", "status", "files", *columns, "freed", "after", "action"]
    rows = []
    for outcome, counts in zip(result.tenants, per_category, strict=True):
        action = outcome.action if outcome.skipped_reason is None else f"skipped: {outcome.skipped_reason}"
        before = outcome.before
        if categories is not None:
            deleted = [str(counts.get(c, 0)) for c in categories]
        else:
            deleted = [str(outcome.deleted_count)]
        rows.append(
            [
                before.company,
                before.status,
                _count(before, before.files),
                *deleted,
                human_bytes(outcome.bytes_freed),
                _count(before, outcome.files_after),
                action,
            ]
        )
    return headers, rows


def _cleanup_title(result: Result) -> str:
    label = "[dry-run] " if result.dry_run else ""
    verb = "would delete" if result.dry_run else "deleted"
    total = sum(t.deleted_count for t in result.tenants)
    freed = human_bytes(sum(t.bytes_freed for t in result.tenants))
    tenants = count_of(len(result.tenants), "tenant")
    return (
        f"{label}wa-sessions {result.command} of {result.root}: {verb} {total} files ({freed}) in {tenants}"
    )


def cleanup_summary(result: Result) -> str:
    """`--summary`: the totals, the files each rule deleted (per category, and per profile when
    the run applied both, as multitenant-cleanup does), and the tenants per action; no files."""
    label = "[dry-run] " if result.dry_run else ""
    verb = "would delete" if result.dry_run else "deleted"
    per_rule: dict[tuple[str, str], int] = {}
    actions: dict[str, int] = {}
    for outcome in result.tenants:
        action = "skipped" if outcome.skipped_reason is not None else outcome.action
        actions[action] = actions.get(action, 0) + 1
        for category, count in outcome.deleted_per_category().items():
            per_rule[(outcome.action, category)] = per_rule.get((outcome.action, category), 0) + count
    profiles = {action for action, _ in per_rule}
    order = {category: index for index, category in enumerate(layout.CATEGORIES)}
    lines = [_cleanup_title(result)]
    for (action, category), count in sorted(
        per_rule.items(), key=lambda item: (item[0][0], order[item[0][1]])
    ):
        rule = f"{action} rules, {category}" if len(profiles) > 1 else category
        lines.append(f"{label}{rule}: {verb} {count_of(count, 'file')}")
    tenants = ", ".join(f"{count} {action}" for action, count in sorted(actions.items()))
    lines.append(f"{label}tenants: {tenants}")
    return "".join(one_line(line) + "\n" for line in lines)


def tenant_text(outcome: Outcome, dry_run: bool, style: Style) -> str:
    """The lines printed with the table for one tenant: every file (in a dry run, or with
    --verbose; never with --summary), the notes, and with --verbose the problems."""
    label = "[dry-run] " if dry_run else ""
    verb = "would delete" if dry_run else "deleted"
    prefix = f"{label}{outcome.before.company}: "
    lines: list[str] = []
    if (dry_run or style.verbose) and not style.summary:
        lines.extend(
            f"{prefix}{verb} {layout.display_name(deletion.entry.name)} "
            f"({deletion.entry.category}, {human_bytes(deletion.entry.size)}): {deletion.reason}"
            for deletion in outcome.deleted
        )
    if not style.summary:
        lines.extend(f"{prefix}note: {note}" for note in outcome.notes)
    if style.verbose:
        lines.extend(f"{prefix}problem: {problem}" for problem in outcome.before.problems)
    return "".join(one_line(line) + "\n" for line in lines)


def _summary_last() -> bool:
    """On a terminal the summary comes after the file lines, where the operator's eyes are when
    the lines have scrolled by; in a file or a pipe it comes first, as before."""
    return sys.stdout.isatty()


def _write_summary(result: Result, style: Style) -> None:
    if style.summary:
        sys.stdout.write(cleanup_summary(result))
    else:
        cleanup_table(result)


def write_cleanup(result: Result, style: Style) -> None:
    """A whole cleanup: the summary (the table, or with --summary the totals), and every
    tenant's lines (after the summary, or on a terminal before it)."""
    if style.quiet:
        return
    text = "".join(tenant_text(outcome, result.dry_run, style) for outcome in result.tenants)
    if _summary_last():
        sys.stdout.write(text)
        _write_summary(result, style)
    else:
        _write_summary(result, style)
        sys.stdout.write(text)


class TextStream:
    """A cleanup command in text, in constant memory: the lines for each tenant (every file of a
    dry run) are spooled to a temporary file as tenants are done, and printed with the summary
    (after it, or on a terminal before it)."""

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

    def spool(self) -> Spool:
        from wa_sessions.spool import Spool

        return Spool("utf-8", "backslashreplace")  # what the spool of this stream writes

    def write_piece(self, spool: Spool, piece: Piece) -> None:
        self.write(spool.read(piece))

    def end(self, result: Result) -> None:
        if not self._style.quiet:
            last = _summary_last()
            if not last:
                _write_summary(result, self._style)
            if self._spool is not None:
                self._stream.flush()
                self._spool.seek(0)
                shutil.copyfileobj(self._spool, self._stream, 1 << 20)
                self._stream.flush()
            if last:
                _write_summary(result, self._style)
        if self._spool is not None:
            self._spool.close()
