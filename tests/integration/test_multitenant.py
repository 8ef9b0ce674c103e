"""multitenant-cleanup on real folders: every status level gets its action, cooldowns (frozen
clock, in process), --force, danger bypassing the cooldown, a tenant locked by another real
process, a tenant that fails mid-run, two overlapping runs, and dry runs that change nothing."""

from __future__ import annotations

import errno
import json
import os
import select
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from freezegun import freeze_time
from support.privileges import NOBODY, become_prelude, chown_tree

from wa_sessions.actions.multitenant import run_multitenant
from wa_sessions.config import load_settings
from wa_sessions.history_totals import history_totals

from .fleet_helpers import (
    LEVEL_FILES,
    MID,
    OLD,
    make_fleet,
    make_tenant,
    on_disk,
    tenants_by_company,
    write_fleet_config,
)
from .helpers import finish, history_lines, popen_cli, run_cli, snapshot

EXPECTED_ACTION = {
    "healthy": "none",
    "warning": "none",
    "critical": "none",
    "trigger": "cleanup",
    "emergency": "cleanup",
    "danger": "emergency",
}


def test_every_level_gets_its_action_and_every_tenant_is_listed(
    root: Path, tmp_path: Path, now: float
) -> None:
    fleet = make_fleet(root, now)
    config = write_fleet_config(tmp_path / "config.yaml", root)

    run = run_cli("multitenant-cleanup", "--config", config, "--json")

    assert run.returncode == 0, run.describe()
    assert run.stderr == b""
    document = run.doc
    assert document["command"] == "multitenant-cleanup" and document["schema"] == 1
    tenants = tenants_by_company(document)
    assert sorted(tenants) == sorted(fleet), "every tenant is listed, due or not"
    assert [t["company"] for t in document["tenants"]] == sorted(fleet)
    for level, tenant in tenants.items():
        assert tenant["status_before"] == level
        assert tenant["action"] == EXPECTED_ACTION[level], level
        assert tenant["skipped_reason"] is None
        assert tenant["dry_run"] is False
        deleted = {item["file"] for item in tenant["deleted"]}
        if EXPECTED_ACTION[level] == "none":
            expected = set()
        elif EXPECTED_ACTION[level] == "cleanup":
            expected = fleet[level].old
        else:
            expected = fleet[level].old | fleet[level].mid
        assert deleted == expected, level
        assert tenant["files_after"] == LEVEL_FILES[level] - len(expected)
        assert len(on_disk(fleet[level].path)) == tenant["files_after"]
        assert not expected & on_disk(fleet[level].path)

    state_dir = root / ".wa-sessions"
    cooldowns = json.loads((state_dir / "cooldowns.json").read_text())["tenants"]
    assert sorted(cooldowns) == ["company_danger", "company_emergency", "company_trigger"]
    runs = json.loads((state_dir / "runs.json").read_text())["commands"]
    assert "multitenant-cleanup" in runs
    recorded = {(line["company"], line["file"]) for line in history_lines(state_dir)}
    assert recorded == {
        (company, item["file"]) for company, tenant in tenants.items() for item in tenant["deleted"]
    }


def test_dry_run_changes_neither_files_nor_state(root: Path, tmp_path: Path, now: float) -> None:
    fleet = make_fleet(root, now)
    config = write_fleet_config(tmp_path / "config.yaml", root)
    before = snapshot(root)

    run = run_cli("multitenant-cleanup", "--config", config, "--json", "--dry-run")

    assert run.returncode == 0, run.describe()
    assert snapshot(root) == before
    assert not (root / ".wa-sessions").exists()
    tenants = tenants_by_company(run.doc)
    assert {item["file"] for item in tenants["trigger"]["deleted"]} == fleet["trigger"].old
    assert {item["file"] for item in tenants["danger"]["deleted"]} == fleet["danger"].old | fleet[
        "danger"
    ].mid
    assert all(tenant["dry_run"] for tenant in tenants.values())


def test_dry_run_does_not_record_a_cooldown(root: Path, tmp_path: Path, now: float) -> None:
    make_fleet(root, now, {"a": "trigger"})
    config = write_fleet_config(tmp_path / "config.yaml", root)
    assert run_cli("multitenant-cleanup", "--config", config, "--dry-run").returncode == 0

    real = run_cli("multitenant-cleanup", "--config", config, "--json")

    assert tenants_by_company(real.doc)["a"]["action"] == "cleanup"


def _frozen_run(config: Path, *, force: bool = False) -> dict[str, tuple[str, str | None, int]]:
    result = run_multitenant(load_settings(config), dry_run=False, force=force)
    assert result.exit_code == 0, [t.errors for t in result.tenants]
    return {t.before.company: (t.action, t.skipped_reason, len(t.deleted)) for t in result.tenants}


def test_cooldown_is_honoured_then_expires_and_force_and_danger_bypass_it(
    root: Path, tmp_path: Path, now: float
) -> None:
    fleet = make_fleet(root, now, {"t": "trigger", "d": "danger", "h": "healthy"})
    config = write_fleet_config(tmp_path / "config.yaml", root, auto={"cooldown": "6h"})
    start = datetime.now(UTC)

    with freeze_time(start, ignore=["filelock"]) as clock:
        first = _frozen_run(config)
        assert first["t"] == ("cleanup", None, OLD)
        assert first["d"] == ("emergency", None, OLD + MID)
        assert first["h"] == ("none", None, 0)

        # An hour later both are still due (t: trigger, d: emergency now) but cleaned an hour ago.
        make_tenant(fleet["t"].path, time.time(), LEVEL_FILES["trigger"])
        clock.tick(timedelta(hours=1))
        second = _frozen_run(config)
        for company in ("t", "d"):
            action, reason, deleted = second[company]
            assert (action, deleted) == ("skipped", 0), company
            assert reason is not None and reason.startswith("cooldown: cleaned 1h ago"), reason
        assert fleet["t"].old <= on_disk(fleet["t"].path), "a tenant in its cooldown is not touched"

        # d back at danger: the emergency profile runs whatever the cooldown says.
        make_tenant(fleet["d"].path, time.time() - 3600, LEVEL_FILES["danger"])
        clock.tick(timedelta(minutes=30))
        third = _frozen_run(config)
        assert third["d"] == ("emergency", None, OLD + MID)
        assert third["t"][0] == "skipped"

        # --force ignores the cooldown.
        clock.tick(timedelta(minutes=30))
        forced = _frozen_run(config, force=True)
        assert forced["t"] == ("cleanup", None, OLD)

        # Without --force, t waits 6h from its last cleanup (the forced one), then is due again.
        make_tenant(fleet["t"].path, time.time(), LEVEL_FILES["trigger"])
        clock.tick(timedelta(hours=5, minutes=59))
        assert _frozen_run(config)["t"][0] == "skipped"
        clock.tick(timedelta(minutes=2))
        assert _frozen_run(config)["t"] == ("cleanup", None, OLD)


def test_cooldown_counts_only_runs_of_this_command(root: Path, tmp_path: Path, now: float) -> None:
    make_fleet(root, now, {"t": "trigger"})
    config = write_fleet_config(tmp_path / "config.yaml", root)
    make_tenant(root / "company_t", now, LEVEL_FILES["trigger"])
    assert run_cli("cleanup", "--config", config, "--company", "t").returncode == 0
    make_tenant(root / "company_t", now, LEVEL_FILES["trigger"])

    run = run_cli("multitenant-cleanup", "--config", config, "--json")

    assert tenants_by_company(run.doc)["t"]["action"] == "cleanup"


def test_a_tenant_locked_by_another_process_is_skipped_and_the_run_succeeds(
    root: Path, tmp_path: Path, now: float, hold_lock: type
) -> None:
    fleet = make_fleet(root, now, {"busy": "trigger", "free": "trigger"})
    config = write_fleet_config(tmp_path / "config.yaml", root, locks={"wait": "30s"})
    holder = hold_lock(fleet["busy"].path / ".cleanup.lock")
    before = snapshot(fleet["busy"].path)

    started = time.monotonic()
    run = run_cli("multitenant-cleanup", "--config", config, "--json")

    assert run.returncode == 0, run.describe()
    assert time.monotonic() - started < 20, "multitenant-cleanup does not wait for busy tenants"
    tenants = tenants_by_company(run.doc)
    assert tenants["busy"]["action"] == "skipped"
    assert tenants["busy"]["skipped_reason"] == "locked by another process"
    assert tenants["busy"]["status_before"] == "trigger"
    assert tenants["busy"]["files_before"] == LEVEL_FILES["trigger"]
    assert tenants["busy"]["deleted"] == []
    assert snapshot(fleet["busy"].path) == before
    assert tenants["free"]["action"] == "cleanup"
    assert not fleet["free"].old & on_disk(fleet["free"].path)
    cooldowns = json.loads((root / ".wa-sessions" / "cooldowns.json").read_text())["tenants"]
    assert "company_busy" not in cooldowns, "a skipped tenant gets no cooldown"

    quiet = run_cli("multitenant-cleanup", "--config", config, "--quiet")
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, b"", b""), quiet.describe()

    holder.release()
    after = run_cli("multitenant-cleanup", "--config", config, "--json")
    assert tenants_by_company(after.doc)["busy"]["action"] == "cleanup"


def test_a_lock_left_by_a_killed_process_does_not_block(
    root: Path, tmp_path: Path, now: float, hold_lock: type
) -> None:
    fleet = make_fleet(root, now, {"t": "trigger"})
    config = write_fleet_config(tmp_path / "config.yaml", root)
    (root / ".wa-sessions").mkdir(mode=0o700)
    hold_lock(root / ".wa-sessions" / "run.lock").kill()
    hold_lock(fleet["t"].path / ".cleanup.lock").kill()

    run = run_cli("multitenant-cleanup", "--config", config, "--json")

    assert run.returncode == 0, run.describe()
    assert tenants_by_company(run.doc)["t"]["action"] == "cleanup"


def test_a_failing_tenant_does_not_stop_the_run_and_the_run_exits_1(
    root: Path, tmp_path: Path, now: float
) -> None:
    fleet = make_fleet(root, now, {"a": "trigger", "b": "trigger", "c": "danger"})
    # b's lock file is a planted symlink: b cannot be locked, so it must not be touched.
    os.symlink(tmp_path / "elsewhere", fleet["b"].path / ".cleanup.lock")
    config = write_fleet_config(tmp_path / "config.yaml", root)

    run = run_cli("multitenant-cleanup", "--config", config, "--json")

    assert run.returncode == 1, run.describe()
    tenants = tenants_by_company(run.doc)
    assert tenants["b"]["errors"] and tenants["b"]["deleted"] == []
    assert fleet["b"].old <= on_disk(fleet["b"].path)
    assert tenants["a"]["action"] == "cleanup" and not fleet["a"].old & on_disk(fleet["a"].path)
    assert tenants["c"]["action"] == "emergency" and not fleet["c"].mid & on_disk(fleet["c"].path)
    assert b"b: .cleanup.lock" in run.stderr
    assert not (tmp_path / "elsewhere").exists()


def test_a_file_that_cannot_be_deleted_fails_its_tenant_only(
    root: Path, tmp_path: Path, now: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = make_fleet(root, now, {"a": "trigger", "b": "trigger"})
    config = write_fleet_config(tmp_path / "config.yaml", root)
    broken = sorted(fleet["a"].old)[0]
    real_rename = os.rename

    # apply moves a file aside (rename to .cleanup.unlinking) before it unlinks it: fail that step
    def rename(path: str, *args: object, src_dir_fd: int | None = None, **kwargs: object) -> None:
        folder = os.readlink(f"/proc/self/fd/{src_dir_fd}") if src_dir_fd is not None else ""
        if path == broken and folder == str(fleet["a"].path):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real_rename(path, *args, src_dir_fd=src_dir_fd, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "rename", rename)
    result = run_multitenant(load_settings(config), dry_run=False)
    monkeypatch.undo()

    assert result.exit_code == 1
    outcome = {t.before.company: t for t in result.tenants}
    assert outcome["a"].errors == [(broken, "cannot delete: Input/output error")]
    assert len(outcome["a"].deleted) == OLD - 1 and broken in on_disk(fleet["a"].path)
    assert len(outcome["b"].deleted) == OLD
    totals = history_totals(root / ".wa-sessions")
    assert totals["a"].deleted == OLD - 1, "the failed line takes back its deleted line"
    assert totals["b"].deleted == OLD
    cooldowns = json.loads((root / ".wa-sessions" / "cooldowns.json").read_text())["tenants"]
    assert "company_a" not in cooldowns and "company_b" in cooldowns


def test_an_overlapping_run_exits_3_with_one_line_and_changes_nothing(
    root: Path, tmp_path: Path, now: float
) -> None:
    fleet = make_fleet(root, now, {"t": "trigger"})
    config = write_fleet_config(tmp_path / "config.yaml", root)
    holds_the_lock, told = os.pipe()  # the first run writes one byte here once it holds the run lock
    slow = (
        "import os, time\n"
        "import wa_sessions.actions.multitenant as multitenant\n"
        "_clean = multitenant._clean_fleet\n"
        "def _slow(*args, **kwargs):\n"
        f"    os.write({told}, b'x')\n"
        "    time.sleep(3)\n"
        "    return _clean(*args, **kwargs)\n"
        "multitenant._clean_fleet = _slow\n"
    )
    started = time.monotonic()
    first = popen_cli("multitenant-cleanup", "--config", config, "--json", prelude=slow, pass_fds=[told])
    os.close(told)
    try:
        ready, _, _ = select.select([holds_the_lock], [], [], 30)
        assert ready and os.read(holds_the_lock, 1) == b"x", "the first run did not start"
        files_while_running = on_disk(fleet["t"].path)

        second = run_cli("multitenant-cleanup", "--config", config, "--json")

        assert second.returncode == 3, second.describe()
        assert second.stdout == b""
        lines = second.stderr.decode().splitlines()
        assert len(lines) == 1 and "run.lock" in lines[0] and "nothing done" in lines[0], lines
        assert on_disk(fleet["t"].path) == files_while_running
    finally:
        done = finish(first, started)
        os.close(holds_the_lock)
    assert done.returncode == 0, done.describe()
    assert tenants_by_company(done.doc)["t"]["action"] == "cleanup"


def test_the_run_lock_held_by_another_process_exits_3(
    root: Path, tmp_path: Path, now: float, hold_lock: type
) -> None:
    make_fleet(root, now, {"t": "trigger"})
    config = write_fleet_config(tmp_path / "config.yaml", root)
    (root / ".wa-sessions").mkdir(mode=0o700)
    hold_lock(root / ".wa-sessions" / "run.lock")
    before = snapshot(root / "company_t")

    run = run_cli("multitenant-cleanup", "--config", config)
    quiet = run_cli("multitenant-cleanup", "--config", config, "--quiet")

    assert run.returncode == 3, run.describe()
    assert len(run.stderr.decode().splitlines()) == 1
    # --quiet: another run had it, not an error for cron to mail
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (3, b"", b""), quiet.describe()
    assert snapshot(root / "company_t") == before


def test_dry_run_while_the_run_lock_is_held_still_reports(
    root: Path, tmp_path: Path, now: float, hold_lock: type
) -> None:
    make_fleet(root, now, {"t": "trigger"})
    config = write_fleet_config(tmp_path / "config.yaml", root)
    (root / ".wa-sessions").mkdir(mode=0o700)
    hold_lock(root / ".wa-sessions" / "run.lock")

    run = run_cli("multitenant-cleanup", "--config", config, "--json", "--dry-run")

    assert run.returncode == 0, run.describe()
    assert tenants_by_company(run.doc)["t"]["action"] == "cleanup"


def test_human_output_names_every_tenant(root: Path, tmp_path: Path, now: float) -> None:
    make_fleet(root, now)
    config = write_fleet_config(tmp_path / "config.yaml", root)

    run = run_cli("multitenant-cleanup", "--config", config)

    assert run.returncode == 0, run.describe()
    text = run.stdout.decode()
    for level in LEVEL_FILES:
        assert level in text
    assert "wa-sessions multitenant-cleanup of" in text


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a process as another user")
def test_a_state_dir_the_run_cannot_write_is_one_line_and_exit_1_with_nothing_deleted(
    world: Path, now: float
) -> None:
    root = world / "root"
    root.mkdir(mode=0o755)
    fleet = make_fleet(root, now, {"t": "trigger"})
    make_tenant(root / "company_h", now, 15, old=0, mid=0)  # nothing to delete
    chown_tree(root, NOBODY, NOBODY)
    (root / ".wa-sessions").mkdir(mode=0o700)  # root's: nobody can neither lock nor record there
    config = write_fleet_config(world / "config.yaml", root)
    config.chmod(0o644)
    as_nobody = become_prelude(NOBODY, NOBODY)

    run = run_cli("multitenant-cleanup", "--config", config, "--quiet", prelude=as_nobody, cwd=world)

    assert run.returncode == 1, run.describe()
    lines = run.stderr.decode().splitlines()
    assert (
        len(lines) == 1
        and ("cannot lock" in lines[0] or "refused" in lines[0])
        and "internal error" not in lines[0]
    ), lines
    assert fleet["t"].old <= on_disk(fleet["t"].path)

    # A cleanup with nothing to delete succeeds even though its success cannot be recorded.
    quiet = run_cli("cleanup", "--config", config, "--company", "h", "--quiet", prelude=as_nobody, cwd=world)
    assert (quiet.returncode, quiet.stderr) == (0, b""), quiet.describe()
