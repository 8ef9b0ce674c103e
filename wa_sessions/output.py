"""Result -> JSON document | Rich table | plain text. The only module that prints results."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table

from wa_sessions import layout
from wa_sessions.actions.cleanup import CleanupResult, TenantCleanup
from wa_sessions.actions.common import DiskUsage, TenantState
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


def cleanup_fields(outcome: TenantCleanup) -> dict[str, Any]:
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
                for deletion in outcome.deleted
            ],
            "files_after": outcome.files_after,
            "bytes_freed": outcome.bytes_freed,
            "errors": [{"file": file, "error": error} for file, error in outcome.errors],
            "notes": list(outcome.notes),
        }
    )
    return fields


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
    if _use_rich(stream):
        table = Table(title=title)
        for index, header in enumerate(headers):
            table.add_column(header, justify="left" if index == 0 else "right")
        for row in rows:
            table.add_row(*row)
        Console(file=stream).print(table)
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
        print_json(scan_document(result))
        return
    for error in result.errors:
        sys.stderr.write(f"wa-sessions: {error}\n")
    for tenant in result.tripped:
        sys.stderr.write(
            f"wa-sessions: {tenant.company} is {tenant.status} ({tenant.files} files), at or above --fail-on {result.fail_on}\n"
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
            sys.stdout.write(f"{tenant.company}: problem: {problem}\n")
    sys.stdout.write(_disk_line(result.disk) + "\n")


def _deleted_per_category(outcome: TenantCleanup) -> dict[str, int]:
    counts: dict[str, int] = {}
    for deletion in outcome.deleted:
        counts[deletion.entry.category] = counts.get(deletion.entry.category, 0) + 1
    return counts


def render_cleanup(result: CleanupResult, style: Style) -> None:
    if style.json:
        print_json(cleanup_document(result))
    else:
        _render_cleanup_text(result, style)
    for error in result.errors:
        sys.stderr.write(f"wa-sessions: {error}\n")
    for outcome in result.tenants:
        for file, error in outcome.errors:
            sys.stderr.write(f"wa-sessions: {outcome.before.company}: {file}: {error}\n")
        if outcome.lock_busy:
            sys.stderr.write(f"wa-sessions: {outcome.before.company}: skipped, {outcome.skipped_reason}\n")


def _render_cleanup_text(result: CleanupResult, style: Style) -> None:
    if style.quiet:
        return
    label = "[dry-run] " if result.dry_run else ""
    deleted_categories = [
        c for c in layout.CATEGORIES if any(_deleted_per_category(t).get(c) for t in result.tenants)
    ]
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
    for outcome in result.tenants:
        per_category = _deleted_per_category(outcome)
        action = outcome.action if outcome.skipped_reason is None else f"skipped: {outcome.skipped_reason}"
        rows.append(
            [
                outcome.before.company,
                outcome.before.status,
                str(outcome.before.files),
                *(str(per_category.get(c, 0)) for c in deleted_categories),
                human_bytes(outcome.bytes_freed),
                str(outcome.files_after),
                action,
            ]
        )
    verb = "would delete" if result.dry_run else "deleted"
    total = sum(len(t.deleted) for t in result.tenants)
    freed = human_bytes(sum(t.bytes_freed for t in result.tenants))
    title = f"{label}wa-sessions {result.command} of {result.root}: {verb} {total} files ({freed}) in {len(rows)} tenants"
    print_table(title, headers, rows)
    for outcome in result.tenants:
        if result.dry_run or style.verbose:
            for deletion in outcome.deleted:
                sys.stdout.write(
                    f"{label}{outcome.before.company}: {verb} {layout.display_name(deletion.entry.name)} "
                    f"({deletion.entry.category}, {deletion.entry.size} bytes): {deletion.reason}\n"
                )
        for note in outcome.notes:
            sys.stdout.write(f"{label}{outcome.before.company}: note: {note}\n")
        if style.verbose:
            for problem in outcome.before.problems:
                sys.stdout.write(f"{label}{outcome.before.company}: problem: {problem}\n")
