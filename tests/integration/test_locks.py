"""Per-tenant locks between real processes (SPEC §5, §7): busy means skipped and exit 3, `locks.wait`
waits, and a lock left by a killed process never blocks the next run."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from wa_sessions.apply import HISTORY_BATCH

from .helpers import (
    LockHolder,
    deleted_files,
    finish,
    history_deleted,
    names,
    plan_hook,
    popen_cli,
    run_cli,
    snapshot,
    standard_tenant,
    tenant_doc,
    write_config,
)


def test_tenant_locked_by_another_process_is_skipped_with_exit_3(
    root: Path, now: float, hold_lock: type[LockHolder]
) -> None:
    tenant = standard_tenant(root / "company_1", now)
    holder = hold_lock(tenant.path / ".cleanup.lock")
    before = snapshot(tenant.path)

    run = run_cli("cleanup", "--company", "1", "--root", root, "--json")

    assert run.returncode == 3, run.describe()
    skipped = tenant_doc(run.doc, "1")
    assert skipped["action"] == "skipped"
    assert "lock" in (skipped["skipped_reason"] or ""), skipped
    assert skipped["deleted"] == [] and skipped["errors"] == []
    assert snapshot(tenant.path) == before
    assert not (root / ".wa-sessions" / "history.jsonl").exists()
    holder.release()


def test_other_tenants_are_cleaned_while_one_is_locked(
    root: Path, now: float, hold_lock: type[LockHolder]
) -> None:
    locked = standard_tenant(root / "company_1", now)
    free = standard_tenant(root / "company_2", now)
    hold_lock(locked.path / ".cleanup.lock")
    before = snapshot(locked.path)

    run = run_cli("cleanup", "--root", root, "--json")

    # SPEC §5: run without --company, a busy tenant is skipped, counted, and the run succeeds.
    assert run.returncode == 0, run.describe()
    assert tenant_doc(run.doc, "1")["action"] == "skipped"
    assert tenant_doc(run.doc, "1")["files_before"] == len(names(locked.path))
    assert set(deleted_files(tenant_doc(run.doc, "2"))) == free.delete
    assert not (free.delete & names(free.path))
    assert snapshot(locked.path) == before


def test_locks_wait_waits_for_a_holder_that_releases_in_time(
    root: Path, tmp_path: Path, now: float, hold_lock: type[LockHolder]
) -> None:
    tenant = standard_tenant(root / "company_1", now)
    config = write_config(tmp_path / "config.yaml", {"locks": {"wait": "20s"}})
    holder = hold_lock(tenant.path / ".cleanup.lock")

    started = time.monotonic()
    proc = popen_cli("cleanup", "--company", "1", "--root", root, "--config", config, "--json")
    time.sleep(2.0)  # well past start-up and scan: the run is now waiting for the lock
    assert proc.poll() is None, "cleanup finished while another process held the tenant lock"
    assert tenant.delete <= names(tenant.path), "files deleted while another process held the lock"
    holder.release()
    run = finish(proc, started)

    assert run.returncode == 0, run.describe()
    assert run.elapsed < 20, "waited for the whole locks.wait although the lock was released"
    cleaned = tenant_doc(run.doc, "1")
    assert cleaned["action"] == "cleanup"
    assert set(deleted_files(cleaned)) == tenant.delete
    assert not (tenant.delete & names(tenant.path))


def test_locks_wait_gives_up_after_the_wait(
    root: Path, tmp_path: Path, now: float, hold_lock: type[LockHolder]
) -> None:
    tenant = standard_tenant(root / "company_1", now)
    config = write_config(tmp_path / "config.yaml", {"locks": {"wait": "1s"}})
    hold_lock(tenant.path / ".cleanup.lock")
    before = snapshot(tenant.path)

    run = run_cli("cleanup", "--company", "1", "--root", root, "--config", config, "--json")

    assert run.returncode == 3, run.describe()
    assert run.elapsed >= 1.0, f"gave up after {run.elapsed:.2f}s, before locks.wait (1s)"
    assert tenant_doc(run.doc, "1")["action"] == "skipped"
    assert snapshot(tenant.path) == before


def test_two_cleanups_of_one_tenant_at_once_delete_each_file_once(
    root: Path, tmp_path: Path, now: float
) -> None:
    tenant = standard_tenant(root / "company_1", now, pre_keys=400)  # 350 pre-keys to delete
    config = write_config(tmp_path / "config.yaml", {"locks": {"wait": "30s"}})
    started = time.monotonic()
    # Each run dawdles 1s between its plan and its apply (inside the lock), so the runs surely
    # overlap; a marker present from plan to end of apply shows whether both were inside at once.
    marker, overlap = tmp_path / "inside", tmp_path / "overlap"
    slow = plan_hook(
        tenant.path,
        tmp_path / "planned.json",
        f"""
try:
    os.close(os.open({str(marker)!r}, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
except FileExistsError:
    open({str(overlap)!r}, "w").close()
import time
time.sleep(1.0)
""",
    )
    slow += f"""
_real_apply = _cleanup.apply_plan
def _apply_then_leave(*args, **kwargs):
    try:
        return _real_apply(*args, **kwargs)
    finally:
        os.unlink({str(marker)!r})
_cleanup.apply_plan = _apply_then_leave
"""
    procs = [
        popen_cli("cleanup", "--company", "1", "--root", root, "--config", config, "--json", prelude=slow)
        for _ in range(2)
    ]
    runs = [finish(proc, started) for proc in procs]

    assert not overlap.exists(), "both runs were between plan and apply at the same time"
    for run in runs:
        assert run.returncode == 0, run.describe()
        assert tenant_doc(run.doc, "1")["errors"] == []
    first, second = (set(deleted_files(tenant_doc(run.doc, "1"))) for run in runs)
    assert not first & second, f"deleted twice: {sorted(first & second)[:5]}"
    assert first | second == tenant.delete
    assert not (tenant.delete & names(tenant.path))
    assert sorted(history_deleted(root / ".wa-sessions")) == sorted(tenant.delete)


def test_lock_left_by_a_killed_holder_does_not_block_the_next_run(
    root: Path, now: float, hold_lock: type[LockHolder]
) -> None:
    tenant = standard_tenant(root / "company_1", now)
    holder = hold_lock(tenant.path / ".cleanup.lock")
    holder.kill()
    assert holder.proc.returncode == -signal.SIGKILL
    assert (tenant.path / ".cleanup.lock").exists()  # the lock file is left behind

    run = run_cli("cleanup", "--company", "1", "--root", root, "--json")

    assert run.returncode == 0, run.describe()
    assert set(deleted_files(tenant_doc(run.doc, "1"))) == tenant.delete
    assert not (tenant.delete & names(tenant.path))


def test_cleanup_killed_mid_run_leaves_nothing_that_breaks_the_next_run(root: Path, now: float) -> None:
    tenant = standard_tenant(root / "company_1", now)
    history = root / ".wa-sessions" / "history.jsonl"
    # SIGKILL ourselves right after the third unlink of the real run.
    killer = """
import os, signal
_real_unlink = os.unlink
_unlinked = []
def _unlink_then_die(*args, **kwargs):
    _real_unlink(*args, **kwargs)
    _unlinked.append(args[0])
    if len(_unlinked) == 3:
        os.kill(os.getpid(), signal.SIGKILL)
os.unlink = _unlink_then_die
"""
    killed = run_cli("cleanup", "--company", "1", "--root", root, "--json", prelude=killer)
    assert killed.returncode == -signal.SIGKILL, killed.describe()
    gone_first = tenant.delete - names(tenant.path)
    assert len(gone_first) == 3
    # Record first, then delete, a batch at a time: every deleted file has its record; the rest of
    # the killed batch is recorded but still there (the next run deletes and records it again).
    recorded_first = history_deleted(root / ".wa-sessions")
    assert gone_first <= set(recorded_first) <= tenant.delete
    assert len(recorded_first) == len(set(recorded_first)) <= HISTORY_BATCH
    # ... and a history line cut short by a kill mid-write must not break the next run either.
    with history.open("ab") as out:
        out.write(b'{"event":"deleted","time":"2026-')

    run = run_cli("cleanup", "--company", "1", "--root", root, "--json")

    assert run.returncode == 0, run.describe()
    cleaned = tenant_doc(run.doc, "1")
    assert cleaned["errors"] == []
    assert set(deleted_files(cleaned)) == tenant.delete - gone_first
    assert not (tenant.delete & names(tenant.path))
    assert tenant.protected | tenant.keep <= names(tenant.path)
    lines = history.read_bytes().split(b"\n")
    cut = len(recorded_first)
    assert lines[-1] == b"" and lines[cut] == b'{"event":"deleted","time":"2026-'
    later = [json.loads(line)["file"] for line in lines[cut + 1 : -1]]
    assert sorted(later) == sorted(tenant.delete - gone_first)
    assert os.path.exists(tenant.path / ".cleanup.lock")
