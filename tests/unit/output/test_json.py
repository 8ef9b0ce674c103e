"""output/json.py: one tenant encoder and one document writer (SPEC §6), exact text."""

from __future__ import annotations

import io
import json

from wa_sessions.output.json import JsonStream, document_text, write_document
from wa_sessions.results import Result

CATEGORIES_7 = (
    '{"creds": 1, "app-state-sync-key": 0, "app-state-sync-version": 0, "lid-mapping": 0, "pre-key": 150, '
    '"session": 29, "sender-key": 0, "sender-key-memory": 0, "identity-key": 0, "device-list": 0, '
    '"tctoken": 0, "unknown": 0}'
)
CATEGORIES_8 = (
    '{"creds": 0, "app-state-sync-key": 0, "app-state-sync-version": 0, "lid-mapping": 0, "pre-key": 0, '
    '"session": 0, "sender-key": 0, "sender-key-memory": 0, "identity-key": 0, "device-list": 0, '
    '"tctoken": 0, "unknown": 0}'
)


def test_a_cleanup_document_is_its_head_one_line_per_tenant_and_its_tail(cleanup_result: Result) -> None:
    expected = (
        '{"schema": 1, "command": "cleanup", "root": "/srv/sessions", "generated_at": "2030-01-15T12:00:00Z", "tenants": [\n'
        f'{{"company": "7", "path": "/srv/sessions/company_7", "bytes": 18000, "categories": {CATEGORIES_7}, '
        '"problems": [], "files_before": 180, "status_before": "emergency", "action": "cleanup", '
        '"skipped_reason": null, "dry_run": true, "deleted": [{"file": "pre-key-1.json", "category": "pre-key", '
        '"reason": "pre-key id 1 beyond the newest 50 (ids 101–150 kept)", "bytes": 120}, '
        '{"file": "session-1.0.json", "category": "session", "reason": "older than 14d: last used 20d 3h ago", '
        '"bytes": 16}], "files_after": 178, "bytes_freed": 136, "errors": [], "notes": ["a note"]},\n'
        f'{{"company": "8", "path": "/srv/sessions/company_8", "bytes": 0, "categories": {CATEGORIES_8}, '
        '"problems": [], "files_before": 0, "status_before": "healthy", "action": "skipped", '
        '"skipped_reason": "locked by another process", "dry_run": true, "deleted": [], "files_after": 0, '
        '"bytes_freed": 0, "errors": [], "notes": []}\n'
        '], "dry_run": true, "errors": []}\n'
    )
    assert document_text(cleanup_result) == expected
    assert json.loads(expected)["tenants"][0]["deleted"][0]["file"] == "pre-key-1.json"


def test_a_streamed_document_reads_the_same_as_a_whole_one(cleanup_result: Result) -> None:
    streamed = io.StringIO()
    stream = JsonStream(streamed)
    tenants, cleanup_result.tenants = cleanup_result.tenants, []
    stream.begin(cleanup_result)
    for outcome in tenants:
        stream.write(stream.render(outcome))
    cleanup_result.tenants = tenants
    stream.end(cleanup_result)
    whole = io.StringIO()
    write_document(cleanup_result, whole)
    assert streamed.getvalue() == whole.getvalue()


def test_a_scan_document_ends_with_disk_fail_on_tripped_and_errors(scan_result: Result) -> None:
    text = document_text(scan_result)
    assert text.endswith(
        '], "disk": {"bytes_total": 4294967296, "bytes_free": 1073741824, "inodes_total": 1000, '
        '"inodes_free": 250}, "memory": null, "fail_on": "emergency", "tripped": ["7"], "errors": []}\n'
    )
    tenants = json.loads(text)["tenants"]
    assert [t["company"] for t in tenants] == ["7", "8"]
    assert tenants[1] == {
        "company": "8",
        "path": "/srv/sessions/company_8",
        "files": 3,
        "bytes": 300,
        "status": "healthy",
        "categories": json.loads(CATEGORIES_8) | {"creds": 1, "pre-key": 1, "unknown": 1},
        "problems": ["creds.json is unparseable"],
    }


def test_a_report_document_carries_the_history_totals(report_result: Result) -> None:
    document = json.loads(document_text(report_result))
    assert document["tenants"][0]["last_cleanup"] == "2030-01-15T10:00:00Z"
    assert (document["deleted_total"], document["freed_bytes_total"]) == (5, 400)
    assert document["last_success"] == {"cleanup": "2030-01-15T10:00:00Z"}
    assert document["largest"] == ["7", "8"]
    assert document["statuses"]["emergency"] == 1
