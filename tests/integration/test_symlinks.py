"""Symlinks and special files are never followed, never deleted, and reported (SPEC §2, §9)."""

from __future__ import annotations

import os
from pathlib import Path

from .helpers import (
    creds_document,
    deleted_files,
    file_state,
    names,
    run_cli,
    set_age,
    snapshot,
    standard_tenant,
    tenant_doc,
    write_file,
)


def test_symlinked_key_files_pointing_outside_root_are_neither_followed_nor_deleted(
    root: Path, outside: Path, now: float
) -> None:
    tenant = standard_tenant(root / "company_1", now)
    # Old files outside root; links to them named like key files the rules would delete.
    target = write_file(outside, "victim-session.json", b'{"precious": true}', 100, now)
    target_bak = write_file(outside, "victim.bak", b"backup", 100, now)
    target_dir = outside / "victim-dir"
    target_dir.mkdir()
    write_file(target_dir, "session-15550000001.0.json", b"{}", 100, now)
    links = {
        "session-15550000077.0.json": target,  # the classic
        # in a companion's place, next to a real key file the rules delete
        "sender-key-120363000000000001@g.us--15550000003--0.json.bak": target_bak,
        "session-15550000078.0.json": target_dir,  # to a folder
        "pre-key-1000.json": outside / "does-not-exist.json",  # dangling
    }
    for name, points_to in links.items():
        os.symlink(points_to, tenant.path / name)
        set_age(tenant.path / name, 100, now, follow=False)  # the links themselves are old too
    before = snapshot(outside)

    scan = run_cli("scan", "--root", root, "--json")
    assert scan.returncode == 0, scan.describe()
    scanned = tenant_doc(scan.doc, "1")
    for name in links:
        assert f"not a regular file (symlink): {name}" in scanned["problems"], scanned["problems"]
    assert scanned["categories"]["unknown"] == 1 + len(links)  # notes.txt and the links

    cleanup = run_cli("cleanup", "--root", root, "--json")
    assert cleanup.returncode == 0, cleanup.describe()
    cleaned = tenant_doc(cleanup.doc, "1")
    for name in links:
        assert f"not a regular file (symlink): {name}" in cleaned["problems"], cleaned["problems"]
    assert cleaned["errors"] == []
    assert set(deleted_files(cleaned)) == tenant.delete  # the ordinary deletions, not the links
    for name, points_to in links.items():
        assert os.path.islink(tenant.path / name), name
        assert os.readlink(tenant.path / name) == os.fsdecode(points_to)
    assert snapshot(outside) == before


def test_symlinked_creds_json_is_not_read_so_pre_keys_are_not_pruned(
    root: Path, outside: Path, now: float
) -> None:
    tenant = standard_tenant(root / "company_1", now)
    os.unlink(tenant.path / "creds.json")
    os.unlink(tenant.path / "creds.json.bak")
    outside_creds = write_file(outside, "creds.json", creds_document(61), 0, now)
    before = file_state(outside_creds)
    os.symlink(outside_creds, tenant.path / "creds.json")

    run = run_cli("cleanup", "--root", root, "--json")
    assert run.returncode == 0, run.describe()
    cleaned = tenant_doc(run.doc, "1")
    deleted = set(deleted_files(cleaned))
    assert not any(name.startswith("pre-key-") for name in deleted), deleted
    assert "creds.json" not in deleted
    assert any("pre-keys not pruned" in note for note in cleaned["notes"]), cleaned["notes"]
    problems = "\n".join(cleaned["problems"])
    assert "not a regular file (symlink): creds.json" in problems
    assert all(f"pre-key-{i}.json" in names(tenant.path) for i in range(1, 61))
    assert os.path.islink(tenant.path / "creds.json")
    assert file_state(outside_creds) == before


def test_fifo_named_creds_json_does_not_hang_and_is_reported(root: Path, now: float) -> None:
    tenant = standard_tenant(root / "company_1", now)
    os.unlink(tenant.path / "creds.json")
    os.unlink(tenant.path / "creds.json.bak")
    os.mkfifo(tenant.path / "creds.json")
    os.mkfifo(tenant.path / "session-15550000088.0.json")
    set_age(tenant.path / "session-15550000088.0.json", 100, now, follow=False)

    run = run_cli("cleanup", "--root", root, "--json", timeout=30)
    assert run.returncode == 0, run.describe()
    cleaned = tenant_doc(run.doc, "1")
    problems = "\n".join(cleaned["problems"])
    assert "not a regular file (fifo): creds.json" in problems
    assert "not a regular file (fifo): session-15550000088.0.json" in problems
    assert "session-15550000088.0.json" not in deleted_files(cleaned)
    assert os.path.exists(tenant.path / "session-15550000088.0.json")
    assert any("pre-keys not pruned" in note for note in cleaned["notes"])


def _outside_tenant(folder: Path, now: float) -> None:
    """A folder full of old files every rule would delete."""
    folder.mkdir()
    write_file(folder, "creds.json", creds_document(201), 0, now)
    for key_id in range(1, 201):
        write_file(folder, f"pre-key-{key_id}.json", "{}", 100, now)
    for index in range(20):
        write_file(folder, f"session-1555000{index:04d}.0.json", "{}", 100, now)
        write_file(folder, f"sender-key-120363000000000000@g.us--1555000{index:04d}--0.json", "{}", 100, now)


def test_tenant_folder_that_is_a_symlink_is_reported_and_never_followed(
    root: Path, outside: Path, now: float
) -> None:
    real = standard_tenant(root / "company_1", now)
    target = outside / "elsewhere"
    _outside_tenant(target, now)
    os.symlink(target, root / "company_2")
    before = snapshot(outside)

    scan = run_cli("scan", "--root", root, "--json")
    assert scan.returncode == 0, scan.describe()
    scanned = tenant_doc(scan.doc, "2")
    assert (scanned["files"], scanned["status"]) == (None, "unknown")  # not read: never 0, healthy
    assert any("symlink" in problem for problem in scanned["problems"]), scanned["problems"]

    everything = run_cli("cleanup", "--root", root, "--json")
    # SPEC is silent on the exit code; a symlinked tenant is reported, not a failed tenant.
    assert everything.returncode == 0, everything.describe()
    skipped = tenant_doc(everything.doc, "2")
    assert skipped["action"] == "skipped"
    assert "symlink" in (skipped["skipped_reason"] or ""), skipped
    assert any("symlink" in problem for problem in skipped["problems"])
    assert skipped["deleted"] == []
    assert set(deleted_files(tenant_doc(everything.doc, "1"))) == real.delete

    named = run_cli("cleanup", "--company", "2", "--root", root, "--json")
    assert named.returncode in (0, 1), named.describe()
    only = tenant_doc(named.doc, "2")
    assert only["action"] == "skipped" and only["deleted"] == [], only
    assert "symlink" in (only["skipped_reason"] or "")

    assert snapshot(outside) == before  # nothing touched, not even a lock file created there
    assert not os.path.lexists(target / ".cleanup.lock")
    assert os.path.islink(root / "company_2") and os.readlink(root / "company_2") == str(target)


def _lock_symlink_tree(root: Path, outside: Path, now: float) -> tuple[Path, set[str]]:
    standard_tenant(root / "company_1", now)
    other = standard_tenant(root / "company_2", now)
    precious = outside / "precious.json"
    precious.write_bytes(b'{"do not": "truncate"}')
    set_age(precious, 10, now)
    os.symlink(precious, root / "company_1" / ".cleanup.lock")
    return precious, other.delete


def test_lock_file_planted_as_symlink_never_touches_its_target(root: Path, outside: Path, now: float) -> None:
    precious, _ = _lock_symlink_tree(root, outside, now)
    before = file_state(precious)
    run = run_cli("cleanup", "--company", "1", "--root", root, "--json")
    assert run.returncode != 0, run.describe()  # the tenant could not be locked: not "done"
    assert file_state(precious) == before
    assert os.path.islink(root / "company_1" / ".cleanup.lock")


def test_lock_file_planted_as_symlink_fails_one_tenant_and_the_run_goes_on(
    root: Path, outside: Path, now: float
) -> None:
    precious, expected_other = _lock_symlink_tree(root, outside, now)
    before = file_state(precious)
    run = run_cli("cleanup", "--root", root, "--json")
    assert run.returncode == 1, run.describe()
    doc = run.doc
    broken = tenant_doc(doc, "1")
    assert broken["deleted"] == []
    assert broken["errors"] or broken["skipped_reason"], broken
    assert set(deleted_files(tenant_doc(doc, "2"))) == expected_other
    assert file_state(precious) == before


def test_lock_file_swapped_for_a_symlink_after_it_was_opened_never_reaches_the_target(
    root: Path, outside: Path, now: float
) -> None:
    first = standard_tenant(root / "company_1", now)
    other = standard_tenant(root / "company_2", now)
    precious = outside / "precious.json"
    precious.write_bytes(b'{"do not": "truncate"}')
    before = file_state(precious)
    lock = root / "company_1" / ".cleanup.lock"
    # The narrowest window, made deterministic: right after the lock file was opened (relative to
    # the tenant's descriptor), it is replaced by a symlink. The lock is taken on the descriptor
    # already open, so nothing ever opens the name again: the symlink is never followed.
    hook = f"""
import os
import wa_sessions.locks as _locks
_real_open = _locks._open_lock_file
def _open_then_swap(*args, **kwargs):
    fd = _real_open(*args, **kwargs)
    if os.path.lexists({str(lock)!r}) and not os.path.islink({str(lock)!r}):
        os.unlink({str(lock)!r})
        os.symlink({str(precious)!r}, {str(lock)!r})
    return fd
_locks._open_lock_file = _open_then_swap
"""
    run = run_cli("cleanup", "--root", root, "--json", prelude=hook)

    assert file_state(precious) == before
    assert os.path.islink(lock)
    assert run.returncode == 0, run.describe()
    assert set(deleted_files(tenant_doc(run.doc, "1"))) == first.delete
    assert set(deleted_files(tenant_doc(run.doc, "2"))) == other.delete
