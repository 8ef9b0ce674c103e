"""Plan, then apply (SPEC §9): a file that vanished is not an error; a file that changed is kept
and reported. Exercised on the apply layer directly and through a real CLI process whose
`plan_tenant` is wrapped to change the folder right after the plan was made."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from wa_sessions.apply import apply_plan
from wa_sessions.config import load_settings
from wa_sessions.history import open_history
from wa_sessions.rules import Plan, plan_tenant
from wa_sessions.stores.folder import FolderKeys, scan_tenant

from .helpers import (
    creds_document,
    deleted_files,
    file_state,
    history_lines,
    history_net,
    names,
    plan_hook,
    run_cli,
    set_age,
    snapshot,
    standard_tenant,
    tenant_doc,
    write_config,
    write_file,
)

GONE = ["session-15550000001.0.json", "pre-key-3.json"]
REFRESHED = "sender-key-120363000000000001@g.us--15550000003--0.json"
REPLACED = "pre-key-2.json"
SYMLINKED = "session-100000000000002_1.0.json"


@pytest.fixture
def planned(root: Path, now: float) -> Iterator[tuple[int, Plan, set[str]]]:
    """An open tenant folder, its plan under the default rules, and the expected deletions."""
    tenant = standard_tenant(root / "company_1", now)
    rules = load_settings(None, {"root": root}).rules
    fd = os.open(tenant.path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        scanned = scan_tenant(fd, time.time())
        plan = plan_tenant(scanned.entries, rules, scanned.creds, time.time())
        assert {deletion.entry.name for deletion in plan.deletions} == tenant.delete
        yield fd, plan, tenant.delete
    finally:
        os.close(fd)


def _replace_with_new_inode(path: Path, age_days: float, now: float) -> None:
    """What Baileys' write-temp-then-rename does: same name, new inode (made to keep the old mtime)."""
    temp = path.with_name(path.name + ".new")
    temp.write_bytes(b'{"rewritten": true}')
    os.replace(temp, path)
    set_age(path, age_days, now)


def test_apply_layer_file_gone_after_plan_is_not_an_error(
    root: Path, tmp_path: Path, planned: tuple[int, Plan, set[str]]
) -> None:
    fd, plan, expected = planned
    for name in GONE:
        os.unlink(root / "company_1" / name)
    with open_history(tmp_path / "state") as history:
        applied = apply_plan(FolderKeys(fd), "1", plan, history)
    assert applied.errors == []
    assert applied.vanished == len(GONE)
    assert {deletion.entry.name for deletion in applied.deleted} == expected - set(GONE)
    assert not (expected & names(root / "company_1"))
    deleted, taken_back = history_net(tmp_path / "state")
    assert deleted == expected - set(GONE)
    assert taken_back == dict.fromkeys(GONE, "already gone")


def test_apply_layer_file_changed_after_plan_is_kept_and_reported(
    root: Path, tmp_path: Path, now: float, outside: Path, planned: tuple[int, Plan, set[str]]
) -> None:
    fd, plan, expected = planned
    folder = root / "company_1"
    os.utime(folder / REFRESHED)  # Baileys used the key again: mtime is now
    _replace_with_new_inode(folder / REPLACED, 30, now)
    target = write_file(outside, "target.json", b"outside", 100, now)
    os.unlink(folder / SYMLINKED)
    os.symlink(target, folder / SYMLINKED)
    before_target = file_state(target)

    with open_history(tmp_path / "state") as history:
        applied = apply_plan(FolderKeys(fd), "1", plan, history)

    changed = {REFRESHED, REPLACED, SYMLINKED}
    assert applied.errors == []
    assert {deletion.entry.name for deletion in applied.deleted} == expected - changed
    assert changed <= names(folder)
    for name, why in ((REFRESHED, "modified"), (REPLACED, "replaced"), (SYMLINKED, "regular file")):
        notes = [note for note in applied.kept if note.startswith(name)]
        assert len(notes) == 1 and why in notes[0] and "kept" in notes[0], applied.kept
    assert os.path.islink(folder / SYMLINKED)
    assert file_state(target) == before_target


def test_cli_file_gone_between_plan_and_apply_exits_0(root: Path, tmp_path: Path, now: float) -> None:
    tenant = standard_tenant(root / "company_1", now)
    record = tmp_path / "planned.json"
    hook = plan_hook(tenant.path, record, f"for name in {GONE!r}:\n    os.unlink(os.path.join(tenant, name))")

    run = run_cli("cleanup", "--root", root, "--json", prelude=hook)

    assert run.returncode == 0, run.describe()
    assert set(json.loads(record.read_text())) == tenant.delete  # the hook ran on the real plan
    cleaned = tenant_doc(run.doc, "1")
    assert cleaned["errors"] == []
    assert set(deleted_files(cleaned)) == tenant.delete - set(GONE)
    assert not (tenant.delete & names(tenant.path))
    assert cleaned["files_after"] == len(names(tenant.path))
    deleted, taken_back = history_net(root / ".wa-sessions")
    assert deleted == tenant.delete - set(GONE)
    assert taken_back == dict.fromkeys(GONE, "already gone")


def test_cli_file_gone_between_history_record_and_unlink_exits_0(root: Path, now: float) -> None:
    """The narrowest window: re-checked, recorded, then gone just before the unlink (which starts
    by moving the file aside to .cleanup.unlinking)."""
    tenant = standard_tenant(root / "company_1", now)
    hook = f"""
import os
_real_rename = os.rename
def _racing_rename(path, *args, **kwargs):
    if path in {GONE!r}:
        os.remove(os.path.join({str(tenant.path)!r}, path))
    return _real_rename(path, *args, **kwargs)
os.rename = _racing_rename
"""
    run = run_cli("cleanup", "--root", root, "--json", prelude=hook)

    assert run.returncode == 0, run.describe()
    cleaned = tenant_doc(run.doc, "1")
    assert cleaned["errors"] == []
    assert set(deleted_files(cleaned)) == tenant.delete - set(GONE)
    assert not (tenant.delete & names(tenant.path))
    assert cleaned["files_after"] == len(names(tenant.path))
    # Whatever the history says about the racing files, it must not leave them counted as deleted by us.
    net: dict[str, int] = {}
    for line in history_lines(root / ".wa-sessions"):
        net[line["file"]] = net.get(line["file"], 0) + (
            1 if line.get("event", "deleted") == "deleted" else -1
        )
    assert {name for name, count in net.items() if count > 0} == tenant.delete - set(GONE)


def test_cli_file_changed_between_plan_and_apply_is_kept_and_reported(
    root: Path, tmp_path: Path, outside: Path, now: float
) -> None:
    tenant = standard_tenant(root / "company_1", now)
    target = write_file(outside, "target.json", b"outside", 100, now)
    before_target = file_state(target)
    record = tmp_path / "planned.json"
    old_ns = int((now - 30 * 86400) * 1e9)
    hook = plan_hook(
        tenant.path,
        record,
        f"""
os.utime(os.path.join(tenant, {REFRESHED!r}))
with open(os.path.join(tenant, "new.tmp"), "wb") as out:
    out.write(b'{{"rewritten": true}}')
os.replace(os.path.join(tenant, "new.tmp"), os.path.join(tenant, {REPLACED!r}))
os.utime(os.path.join(tenant, {REPLACED!r}), ns=({old_ns}, {old_ns}))
os.unlink(os.path.join(tenant, {SYMLINKED!r}))
os.symlink({str(target)!r}, os.path.join(tenant, {SYMLINKED!r}))
""",
    )

    run = run_cli("cleanup", "--root", root, "--json", prelude=hook)

    assert run.returncode == 0, run.describe()
    assert set(json.loads(record.read_text())) == tenant.delete
    cleaned = tenant_doc(run.doc, "1")
    changed = {REFRESHED, REPLACED, SYMLINKED}
    assert cleaned["errors"] == []
    assert set(deleted_files(cleaned)) == tenant.delete - changed
    assert changed <= names(tenant.path)
    assert not ((tenant.delete - changed) & names(tenant.path))
    for name in changed:
        assert any(name in note and "kept" in note for note in cleaned["notes"]), (name, cleaned["notes"])
    assert os.path.islink(tenant.path / SYMLINKED)
    assert file_state(target) == before_target
    assert (tenant.path / REPLACED).read_bytes() == b'{"rewritten": true}'
    assert cleaned["files_after"] == len(names(tenant.path))
    deleted, taken_back = history_net(root / ".wa-sessions")
    assert deleted == tenant.delete - changed
    assert set(taken_back) == changed
    assert all("kept" in error for error in taken_back.values()), taken_back


def _old_files_folder(folder: Path, now: float) -> None:
    """A folder full of old files every rule would delete (with a parseable creds.json)."""
    folder.mkdir()
    write_file(folder, "creds.json", creds_document(121), 0, now)
    for key_id in range(1, 121):
        write_file(folder, f"pre-key-{key_id}.json", "{}", 100, now)
    for index in range(10):
        write_file(folder, f"session-1555000{index:04d}.0.json", "{}", 100, now)


def test_tenant_swapped_for_a_symlink_after_listing_is_not_followed(
    root: Path, tmp_path: Path, outside: Path, now: float
) -> None:
    tenant = standard_tenant(root / "company_1", now)
    elsewhere, moved = outside / "elsewhere", outside / "moved"
    _old_files_folder(elsewhere, now)
    record = tmp_path / "listed.json"
    hook = f"""
import json, os
import wa_sessions.stores.folder as _common
_real_list = _common.list_tenants
def _list_then_swap(*args, **kwargs):
    tenants = _real_list(*args, **kwargs)
    with open({str(record)!r}, "w") as out:
        json.dump([tenant.name for tenant in tenants], out)
    os.rename({str(tenant.path)!r}, {str(moved)!r})
    os.symlink({str(elsewhere)!r}, {str(tenant.path)!r})
    return tenants
_common.list_tenants = _list_then_swap
"""
    before_elsewhere = snapshot(elsewhere)

    run = run_cli("cleanup", "--root", root, "--json", prelude=hook)

    assert json.loads(record.read_text()) == ["company_1"]
    assert run.returncode in (0, 1), run.describe()
    swapped = tenant_doc(run.doc, "1")
    assert swapped["action"] == "skipped" and swapped["deleted"] == [], swapped
    assert snapshot(elsewhere) == before_elsewhere
    assert tenant.delete <= names(moved)


def test_tenant_swapped_for_a_symlink_after_opening_never_reaches_the_target(
    root: Path, tmp_path: Path, outside: Path, now: float
) -> None:
    tenant = standard_tenant(root / "company_1", now)
    elsewhere, moved = outside / "elsewhere", outside / "moved"
    _old_files_folder(elsewhere, now)
    record = tmp_path / "planned.json"
    hook = plan_hook(
        tenant.path,
        record,
        f"os.rename(tenant, {str(moved)!r})\nos.symlink({str(elsewhere)!r}, tenant)",
    )
    before_elsewhere = snapshot(elsewhere)

    run = run_cli("cleanup", "--root", root, "--json", prelude=hook)

    assert set(json.loads(record.read_text())) == tenant.delete
    assert run.returncode == 0, run.describe()
    # The run keeps to the folder it opened (by descriptor): the planned files there, nothing else.
    assert set(deleted_files(tenant_doc(run.doc, "1"))) <= tenant.delete
    assert snapshot(elsewhere) == before_elsewhere
    assert not os.path.lexists(elsewhere / ".cleanup.lock")


def test_history_that_cannot_be_written_means_nothing_is_deleted(
    root: Path, tmp_path: Path, now: float
) -> None:
    tenant = standard_tenant(root / "company_1", now)
    blocker = tmp_path / "not-a-folder"
    blocker.write_bytes(b"")
    config = write_config(tmp_path / "config.yaml", {"state_dir": str(blocker / "state")})
    before = snapshot(tenant.path)

    run = run_cli("cleanup", "--root", root, "--config", config, "--json")

    assert run.returncode == 1, run.describe()
    cleaned = tenant_doc(run.doc, "1")
    assert cleaned["deleted"] == [] and cleaned["errors"], cleaned
    assert cleaned["files_after"] == cleaned["files_before"]
    after = snapshot(tenant.path)
    after.pop(b".cleanup.lock", None)  # taking the lock is allowed; the folder's mtime moves with it
    assert {k: v for k, v in after.items() if k != b"."} == {k: v for k, v in before.items() if k != b"."}
