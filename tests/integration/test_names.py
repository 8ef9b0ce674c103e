"""Names as they are on disk (SPEC §2, §6): not-UTF-8 names are escaped, never dropped, never a
crash; a directory named like a key file is never deleted."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .helpers import (
    deleted_files,
    history_lines,
    run_cli,
    set_age,
    snapshot,
    standard_tenant,
    tenant_doc,
    write_file,
)

BAD_SESSION = b"session-1555\xff\xfe0001.0.json"  # a session key file, old: deleted
BAD_TCTOKEN = b"tctoken-\xe9@s.whatsapp.net.json"  # kept by policy
BAD_UNKNOWN = b"notes-\xff.txt"
BAD_DIR = b"session-\xff.1.json"  # a directory
BAD_TENANT = b"company_\xffbad"


def _escaped(name: bytes) -> str:
    return name.decode("utf-8", "backslashreplace")


def test_not_utf8_names_are_escaped_in_json_and_history(root: Path, now: float) -> None:
    tenant = standard_tenant(root / "company_1", now)
    folder = os.fsencode(tenant.path)
    write_file(tenant.path, BAD_SESSION, b"{}", 30, now)
    write_file(tenant.path, BAD_TCTOKEN, b"{}", 30, now)
    write_file(tenant.path, BAD_UNKNOWN, b"notes", 30, now)
    os.mkdir(os.path.join(folder, BAD_DIR))
    set_age(os.path.join(folder, BAD_DIR), 100, now)
    odd_tenant = os.path.join(os.fsencode(root), BAD_TENANT)
    os.mkdir(odd_tenant)
    write_file(Path(os.fsdecode(odd_tenant)), b"session-15550000001.0.json", b"{}", 30, now)

    scan = run_cli("scan", "--root", root, "--json")
    assert scan.returncode == 0, scan.describe()
    scanned = tenant_doc(scan.doc, "1")
    assert (
        scanned["categories"]["session"] == 6 + 1
    )  # the standard tenant's six (with .bak files), plus the odd one
    assert scanned["categories"]["tctoken"] == 2
    assert any(_escaped(BAD_DIR) in problem for problem in scanned["problems"]), scanned["problems"]
    assert tenant_doc(scan.doc, _escaped(b"\xffbad"))["files"] == 1

    dry = run_cli("cleanup", "--dry-run", "--root", root, "--json")
    assert dry.returncode == 0, dry.describe()
    assert _escaped(BAD_SESSION) in deleted_files(tenant_doc(dry.doc, "1"))

    text = run_cli("cleanup", "--dry-run", "--verbose", "--root", root)  # plain text, not a terminal
    assert text.returncode == 0, text.describe()
    assert _escaped(BAD_SESSION).encode() in text.stdout

    real = run_cli("cleanup", "--root", root, "--json")
    assert real.returncode == 0, real.describe()
    cleaned = tenant_doc(real.doc, "1")
    assert set(deleted_files(cleaned)) == tenant.delete | {_escaped(BAD_SESSION)}
    odd = tenant_doc(real.doc, _escaped(b"\xffbad"))
    assert deleted_files(odd) == ["session-15550000001.0.json"]
    assert odd["path"] == os.path.join(str(root), _escaped(BAD_TENANT))

    on_disk = set(os.listdir(folder))
    assert BAD_SESSION not in on_disk
    assert {BAD_TCTOKEN, BAD_UNKNOWN, BAD_DIR} <= on_disk
    history = history_lines(root / ".wa-sessions")
    assert {(line["company"], line["file"]) for line in history} >= {
        ("1", _escaped(BAD_SESSION)),
        (_escaped(b"\xffbad"), "session-15550000001.0.json"),
    }


def test_directory_named_like_a_key_file_is_never_deleted(root: Path, now: float) -> None:
    tenant = standard_tenant(root / "company_1", now)
    for name in ("session-1.0.json", "pre-key-0.json", "sender-key-1@g.us--2--0.json"):
        os.mkdir(tenant.path / name)
        write_file(tenant.path / name, "session-2.0.json", b"{}", 100, now)  # never looked into
        set_age(tenant.path / name, 100, now)
    empty = tenant.path / "session-3.0.json"
    empty.mkdir()
    set_age(empty, 100, now)
    before = snapshot(tenant.path / "session-1.0.json")

    run = run_cli("cleanup", "--root", root, "--json")

    assert run.returncode == 0, run.describe()
    cleaned = tenant_doc(run.doc, "1")
    assert cleaned["errors"] == []
    assert set(deleted_files(cleaned)) == tenant.delete
    problems = "\n".join(cleaned["problems"])
    for name in ("session-1.0.json", "pre-key-0.json", "sender-key-1@g.us--2--0.json", "session-3.0.json"):
        assert f"not a regular file (directory): {name}" in problems
        assert (tenant.path / name).is_dir()
    assert snapshot(tenant.path / "session-1.0.json") == before
    assert cleaned["categories"]["unknown"] == 1 + 4
    json.dumps(cleaned)
