"""The report's tables (title, headers, rows), shared by the table and Markdown formats."""

from __future__ import annotations

from typing import TextIO

from wa_sessions import layout
from wa_sessions.output.escape import one_line
from wa_sessions.output.tabular import human_bytes, print_table
from wa_sessions.results import Result, TenantState
from wa_sessions.times import iso_second


def report_headline(result: Result) -> str:
    return (
        f"wa-sessions report of {result.root} at {result.generated_at}: {len(result.tenants)} tenants, "
        f"{result.files} files, {human_bytes(result.bytes)}; history: {result.history_deleted} files "
        f"({human_bytes(result.history_freed_bytes)}) deleted"
    )


def _files(state: TenantState) -> str:
    return str(state.files) if state.known else "?"


def _bytes(state: TenantState) -> str:
    return human_bytes(state.bytes) if state.known else "?"


def _percent_used(total: int, free: int) -> str:
    return f"{(total - free) * 100 / total:.1f}" if total else "0.0"


def report_sections(result: Result) -> list[tuple[str, list[str], list[list[str]]]]:
    """The report's tables (title, headers, rows), shared by the table and Markdown formats."""
    statuses, categories = result.statuses, result.categories
    sections = [
        ("Tenants per status", ["status", "tenants"], [[s, str(statuses[s])] for s in layout.STATUSES]),
        ("Files per category", ["category", "files"], [[c, str(categories[c])] for c in layout.CATEGORIES]),
        (
            "Largest tenants",
            ["company", "files", "bytes", "status"],
            [
                [t.before.company, _files(t.before), _bytes(t.before), t.before.status]
                for t in result.largest()
            ],
        ),
    ]
    disk = result.disk
    if disk is not None:
        rows = [
            [
                "bytes",
                human_bytes(disk.bytes_total),
                human_bytes(disk.bytes_free),
                _percent_used(disk.bytes_total, disk.bytes_free),
            ],
            [
                "inodes",
                str(disk.inodes_total),
                str(disk.inodes_free),
                _percent_used(disk.inodes_total, disk.inodes_free),
            ],
        ]
        sections.append(("Disk under root", ["", "total", "free", "used %"], rows))
    memory = result.memory
    if memory is not None and memory.kind == "table":  # a store's table instead of a filesystem
        sections.append(
            ("Store table size", ["server", "size"], [[memory.server, human_bytes(memory.used_bytes)]])
        )
    elif memory is not None:  # a store: its server's memory instead of a filesystem
        limit = human_bytes(memory.max_bytes) if memory.max_bytes else "none"
        used = (
            _percent_used(memory.max_bytes, memory.max_bytes - memory.used_bytes) if memory.max_bytes else "-"
        )
        rows = [[memory.server, human_bytes(memory.used_bytes), limit, used]]
        sections.append(("Store memory", ["server", "used", "maxmemory", "used %"], rows))
    successes = sorted(result.last_success.items())
    sections.append(
        ("Last successful runs", ["command", "last success"], [[c, iso_second(e)] for c, e in successes])
    )
    headers = ["company", "status", "files", "bytes", "problems", "last cleanup", "deleted", "freed"]
    rows = [
        [
            t.before.company,
            t.before.status,
            _files(t.before),
            _bytes(t.before),
            str(len(t.before.problems)),
            t.last_cleanup or "never",
            str(t.deleted_total),
            human_bytes(t.freed_bytes_total),
        ]
        for t in result.tenants
    ]
    sections.append(("Tenants", headers, rows))
    return sections


def write_report_table(result: Result, stream: TextIO) -> None:
    """The report as tables (Rich on a terminal, plain text otherwise)."""
    stream.write(one_line(report_headline(result)) + "\n")
    for title, headers, rows in report_sections(result):
        stream.write("\n")
        # On a narrow terminal the date of the last cleanup is what wraps, never an id or a count.
        foldable = [headers.index("last cleanup")] if "last cleanup" in headers else []
        print_table(title, headers, rows, stream, foldable=foldable)
