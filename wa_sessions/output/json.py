"""Result -> JSON (SPEC §6, schema 1): one tenant encoder, one document writer, streamed and whole alike.

Every document is written the same way: its head up to the `tenants` list, one tenant per line
(compact JSON), then the rest of its fields. A streamed run (cleanup, multitenant-cleanup) writes
each tenant as soon as it is done, in constant memory; a whole document goes through the same
writer, so both read the same.
"""

from __future__ import annotations

import json
import json.encoder
import sys
from typing import TYPE_CHECKING, Any, TextIO

from wa_sessions import layout
from wa_sessions.durations import format_duration
from wa_sessions.results import DiskUsage, Outcome, Result, StoreMemory, TenantState
from wa_sessions.times import iso_second

if TYPE_CHECKING:
    from wa_sessions.spool import Piece, Spool

SCHEMA = 1
CLEANUP_COMMANDS = frozenset({"cleanup", "emergency-cleanup", "multitenant-cleanup"})

_string = json.encoder.encode_basestring  # what json.dumps(..., ensure_ascii=False) writes for a str


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def scan_fields(state: TenantState) -> dict[str, Any]:
    """The scan fields of SPEC §6. A tenant that could not be read (status `unknown`) has no
    counts: `files`, `bytes` and each category are null, never 0."""
    known = state.known
    return {
        "company": state.company,
        "path": state.path,
        "files": state.files if known else None,
        "bytes": state.bytes if known else None,
        "status": state.status,
        "categories": dict(state.categories) if known else dict.fromkeys(state.categories),
        "problems": list(state.problems),
    }


def _deleted(outcome: Outcome) -> str:
    """The `deleted` list written straight from the plan, not through a dict per file: a dry run
    of a fleet lists every file it would delete. The text json.dumps would write."""
    display = layout.display_name
    categories = _CATEGORY_STRINGS
    # A list, not a generator (join makes one anyway); an entry's fields by index: 0 name,
    # 1 category, 6 size (layout.Entry).
    return ", ".join(
        [
            f'{{"file": {_string(name if (name := entry[0]).isascii() else display(name))}, '
            f'"category": {categories[entry[1]]}, "reason": {_string(reason)}, "bytes": {entry[6]}}}'
            for entry, reason, _ in outcome.deleted
        ]
    )


# Each category as a JSON string, encoded once (display_name is the identity on an ASCII name).
_CATEGORY_STRINGS = {category: _string(category) for category in layout.CATEGORIES}


def tenant_line(outcome: Outcome, command: str, purge: bool = False) -> str:
    """One tenant of a `command` document, on one line: the scan fields; for a cleanup command
    the fields of SPEC §6 (with the archive and newest file of a purge); for a report the
    history's totals."""
    fields = scan_fields(outcome.before)
    if command == "report":
        fields.update(
            last_cleanup=outcome.last_cleanup,
            deleted_total=outcome.deleted_total,
            freed_bytes_total=outcome.freed_bytes_total,
        )
    if command not in CLEANUP_COMMANDS:
        return _compact(fields)
    fields["files_before"] = fields.pop("files")
    fields["status_before"] = fields.pop("status")
    head = {
        **fields,
        "action": outcome.action,
        "skipped_reason": outcome.skipped_reason,
        "dry_run": outcome.dry_run,
    }
    tail: dict[str, Any] = {
        "files_after": outcome.files_after if outcome.before.known else None,
        "bytes_freed": outcome.bytes_freed,
        "errors": [{"file": file, "error": error} for file, error in outcome.errors],
        "notes": list(outcome.notes),
    }
    if purge:
        tail.update(backup=outcome.backup, newest_file_at=outcome.newest_file_at)
    return f'{_compact(head)[:-1]}, "deleted": [{_deleted(outcome)}], {_compact(tail)[1:]}'


def disk_fields(disk: DiskUsage | None) -> dict[str, int] | None:
    if disk is None:
        return None
    return {
        "bytes_total": disk.bytes_total,
        "bytes_free": disk.bytes_free,
        "inodes_total": disk.inodes_total,
        "inodes_free": disk.inodes_free,
    }


def memory_fields(memory: StoreMemory | None) -> dict[str, Any] | None:
    if memory is None:
        return None
    return {"server": memory.server, "used_bytes": memory.used_bytes, "max_bytes": memory.max_bytes}


def document_head(result: Result) -> str:
    """A document's opening up to its `tenants` list."""
    head = {
        "schema": SCHEMA,
        "command": result.command,
        "root": result.root,
        "generated_at": result.generated_at,
    }
    return _compact(head)[:-1] + ', "tenants": ['


def document_tail(result: Result, tenants: int) -> str:
    """What follows the tenants: the fields of the command's document after `tenants`."""
    return ("\n" if tenants else "") + "], " + _compact(tail_fields(result))[1:] + "\n"


def tail_fields(result: Result) -> dict[str, Any]:
    command = result.command
    if command == "scan":
        return {
            "disk": disk_fields(result.disk),
            "memory": memory_fields(result.memory),
            "fail_on": result.fail_on,
            "tripped": [tenant.company for tenant in result.tripped],
            "errors": list(result.errors),
        }
    if command == "report":
        return {
            "files": result.files,
            "bytes": result.bytes,
            "statuses": result.statuses,
            "categories": result.categories,
            "largest": [tenant.before.company for tenant in result.largest()],
            "disk": disk_fields(result.disk),
            "memory": memory_fields(result.memory),
            "deleted_total": result.history_deleted,
            "freed_bytes_total": result.history_freed_bytes,
            "last_success": {
                command: iso_second(epoch) for command, epoch in sorted(result.last_success.items())
            },
            "errors": list(result.errors),
        }
    if command.startswith("config"):
        return {
            "config_file": result.config_file,
            "valid": True,
            "settings": [{"key": v.key, "value": v.value, "source": v.source} for v in result.config_values],
        }
    fields: dict[str, Any] = {"dry_run": result.dry_run, "errors": list(result.errors)}
    if result.notified is not None:
        fields.update(warnings=list(result.warnings), notified=result.notified)
    if result.purge_older_than is not None:
        fields.update(
            purge_stale_dirs=True,
            older_than=format_duration(result.purge_older_than),
            backup=result.purge_backup,
            include_paired=result.purge_include_paired,
        )
    return fields


def write_document(result: Result, stream: TextIO | None = None) -> None:
    """A whole document: the head, one line per tenant, the rest."""
    stream = stream or sys.stdout
    purge = result.purge_older_than is not None
    stream.write(document_head(result))
    for index, outcome in enumerate(result.tenants):
        stream.write(("\n" if index == 0 else ",\n") + tenant_line(outcome, result.command, purge))
    stream.write(document_tail(result, len(result.tenants)))


def document_text(result: Result) -> str:
    """`write_document` as a string (report --output)."""
    import io

    buffer = io.StringIO()
    write_document(result, buffer)
    return buffer.getvalue()


class JsonStream:
    """A cleanup command's document written tenant by tenant, in constant memory: the head, each
    tenant on one line (rendered where it was cleaned, in a worker with --jobs), then the rest."""

    def __init__(self, stream: TextIO | None = None):
        self._stream = stream or sys.stdout
        self._tenants = 0
        self._command = ""

    def begin(self, result: Result) -> None:
        self._command = result.command
        self._stream.write(document_head(result))

    def render(self, outcome: Outcome) -> str:
        return tenant_line(outcome, self._command)

    def write(self, text: str) -> None:
        self._stream.write(("\n" if self._tenants == 0 else ",\n") + text)
        self._tenants += 1

    def spool(self) -> Spool:
        from wa_sessions.spool import Spool

        return Spool(self._stream.encoding or "utf-8", self._stream.errors or "strict")

    def write_piece(self, spool: Spool, piece: Piece) -> None:
        """A tenant line a worker put in the spool: copied to the output, not read back."""
        self._stream.write("\n" if self._tenants == 0 else ",\n")
        self._tenants += 1
        spool.copy_to(piece, self._stream)

    def end(self, result: Result) -> None:
        self._stream.write(document_tail(result, self._tenants))
