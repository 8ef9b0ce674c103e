"""Failing writes (issue 5, item 4).

The rule, decided and documented in SECURITY.md and state.py: **record first, then delete**. A
deletion is appended to history.jsonl before the unlink; when the record cannot be written whole,
that file and the rest of the tenant are left alone and the run exits 1 with a one-line error.
When an unlink fails after its record, a `failed` line takes the record back.

Faults injected here: a state dir that cannot be created (a file in the way, a symlink, no
permission for a non-root user), history.jsonl that is a symlink or a directory, writes cut off
mid-line by RLIMIT_FSIZE in the child process (seeded random limits), a full filesystem (a tiny
tmpfs, where the machine allows mounting one), and unlinks refused by the folder's permissions.
After each, the next run with the fault gone completes the job.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import resource
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.privileges import NOBODY, chown_tree

from wa_sessions.history_totals import history_totals

from .support import (
    FIGURES,
    REGULAR_RULES,
    SEED,
    assert_clean_stderr,
    build_fleet,
    clean_env,
    command,
    copy_tree,
    deleted_records,
    expected_after,
    read_history,
    run_as,
    run_cli,
    snapshot,
)

FSIZE_ITERATIONS = int(os.environ.get("WA_RELIABILITY_FSIZE", "12"))
#: Thresholds (file counts) so low that every tenant of a built fleet is at emergency, never at danger.
LOW_THRESHOLDS = {
    "WA_SESSIONS_THRESHOLDS__WARNING": "1",
    "WA_SESSIONS_THRESHOLDS__CRITICAL": "2",
    "WA_SESSIONS_THRESHOLDS__TRIGGER": "3",
    "WA_SESSIONS_THRESHOLDS__EMERGENCY": "4",
    "WA_SESSIONS_THRESHOLDS__DANGER": "1000000",
}


@pytest.fixture
def fleet_root(world: Path, rng: random.Random) -> tuple[Path, Any]:
    root = world / "sessions"
    fleet = build_fleet(root, rng, tenants=3)
    return root, fleet


def _one_line_error(stderr: str, *needles: str) -> None:
    lines = stderr.strip().splitlines()
    assert lines, "no error reported"
    assert all(line.startswith("wa-sessions: ") for line in lines), stderr
    assert any(all(needle in line for needle in needles) for line in lines), stderr
    assert "Traceback" not in stderr


def _recovers(root: Path, expected: dict[str, Any], *extra: str) -> None:
    result = run_cli("cleanup", "--root", root, "--json", *extra)
    assert result.returncode == 0, result.stderr
    assert snapshot(root) == expected, "the next run did not finish the job"


@pytest.mark.parametrize(
    "make_bad_state_dir",
    [
        pytest.param(
            lambda world: (world / "a-file").write_text("") or world / "a-file" / "state",
            id="file-in-the-way",
        ),
        pytest.param(
            lambda world: (
                (world / "elsewhere").mkdir()
                or os.symlink(world / "elsewhere", world / "link")
                or world / "link"
            ),
            id="symlink",
        ),
        pytest.param(
            lambda world: (
                (world / "s").mkdir()
                or os.symlink("/etc/passwd", world / "s" / "history.jsonl")
                or world / "s"
            ),
            id="history-symlink",
        ),
        pytest.param(
            lambda world: (world / "d" / "history.jsonl").mkdir(parents=True) or world / "d",
            id="history-directory",
        ),
    ],
)
def test_a_state_dir_that_cannot_be_written_deletes_nothing_and_says_so(
    world: Path, fleet_root: tuple[Path, Any], make_bad_state_dir: Any
) -> None:
    root, fleet = fleet_root
    before = snapshot(root)
    passwd = Path("/etc/passwd").read_bytes()
    state_dir = make_bad_state_dir(world)
    for args in (
        ["cleanup"],
        ["multitenant-cleanup", "--force"],
        ["emergency-cleanup", "--company", fleet.tenants[0].company],
    ):
        result = run_cli(
            *args,
            "--root",
            root,
            env={"WA_SESSIONS_STATE_DIR": str(state_dir), **LOW_THRESHOLDS},
        )
        assert result.returncode == 1, f"{args}: {result.returncode} {result.stderr}"
        _one_line_error(result.stderr)
        assert snapshot(root) == before, f"{args} deleted files it could not record"
        FIGURES["failing writes: unwritable state dir runs"] += 1
    assert Path("/etc/passwd").read_bytes() == passwd
    _recovers(root, expected_after(before, fleet.doomed(REGULAR_RULES)))


def test_a_state_dir_the_user_may_not_write_deletes_nothing(fleet_root: tuple[Path, Any]) -> None:
    root, fleet = fleet_root
    chown_tree(root, NOBODY, NOBODY)
    state_dir = root / ".wa-sessions"
    state_dir.mkdir(mode=0o700)  # root's
    before = snapshot(root)
    result = run_as(NOBODY, NOBODY, ["cleanup", "--root", root, "--json"])
    assert result.returncode == 1
    _one_line_error(result.stderr, "Permission denied")
    assert snapshot(root) == before
    FIGURES["failing writes: unwritable state dir runs"] += 1
    _recovers(root, expected_after(before, fleet.doomed(REGULAR_RULES)))


def _limited(limit: int) -> Any:
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a killing signal
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def _run_with_fsize_limit(args: list[str], root: Path, limit: int) -> subprocess.CompletedProcess[str]:
    """`wa-sessions ARGS --root ROOT` with the low thresholds, its files limited to `limit` bytes."""
    FIGURES["wa-sessions processes run"] += 1
    return subprocess.run(
        command(*args, "--root", root),
        env=clean_env(LOW_THRESHOLDS),
        capture_output=True,
        text=True,
        preexec_fn=_limited(limit),
        timeout=120,
        check=False,
    )


def test_writes_cut_off_by_rlimit_fsize_never_lose_a_record_and_the_next_run_recovers(
    world: Path, rng: random.Random, figures: Counter[str]
) -> None:
    pristine = world / "pristine"
    fleet = build_fleet(pristine, rng, tenants=3)
    doomed = fleet.doomed(REGULAR_RULES)
    before = snapshot(pristine)
    expected = expected_after(before, doomed)
    baseline = copy_tree(pristine, world / "baseline")
    assert run_cli("cleanup", "--root", baseline).returncode == 0
    full = (baseline / ".wa-sessions" / "history.jsonl").stat().st_size

    for iteration in range(FSIZE_ITERATIONS):
        context = f"seed {SEED}, RLIMIT_FSIZE round {iteration}"
        root = copy_tree(pristine, world / f"round-{iteration}")
        limit = rng.choice([0, 1, rng.randrange(2, 400), rng.randrange(400, full)])
        args = rng.choice([["cleanup", "--json"], ["cleanup"], ["multitenant-cleanup", "--force", "--json"]])
        result = _run_with_fsize_limit(args, root, limit)
        assert result.returncode == 1, f"{context}: limit {limit}: exit {result.returncode}\n{result.stderr}"
        _one_line_error(result.stderr, "File too large")
        if "--json" in args:
            json.loads(result.stdout)
        gone = set(before) - set(snapshot(root))
        assert gone <= doomed, f"{context}: deleted what the rules keep"
        records, bad = read_history(root / ".wa-sessions")
        recorded = {f"company_{c}/{f}" for c, f in deleted_records(records)}
        assert gone <= recorded, (
            f"{context}: deleted without a complete record: {sorted(gone - recorded)[:5]}"
        )
        assert len(gone) == len(recorded), (
            f"{context}: a record was written but its file not deleted, or the reverse"
        )
        assert len(bad) <= 1
        figures["failing writes: RLIMIT_FSIZE faults injected"] += 1
        figures["failing writes: files deleted before the limit hit"] += len(gone)

        recovery = run_cli("cleanup", "--root", root, "--json")
        assert_clean_stderr(recovery, context)
        assert recovery.returncode == 0, f"{context}: {recovery.stderr}"
        assert snapshot(root) == expected, f"{context}: the next run did not finish the job"
        data = (root / ".wa-sessions" / "history.jsonl").read_bytes()
        assert data.endswith(b"\n")
        records, bad = read_history(root / ".wa-sessions")
        assert len(bad) <= 1 and doomed <= {f"company_{c}/{f}" for c, f in deleted_records(records)}
        figures["failing writes: files checked after recovery"] += len(expected)


@contextlib.contextmanager
def _tiny_filesystem(path: Path, size: str) -> Iterator[None]:
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, check=False
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_full_filesystem_under_the_state_dir_never_loses_a_record(
    world: Path, fleet_root: tuple[Path, Any]
) -> None:
    root, fleet = fleet_root
    before = snapshot(root)
    full = world / "full"
    with _tiny_filesystem(full, "8k"):
        filler = full / "filler"
        with contextlib.suppress(OSError), filler.open("wb") as writer:
            while True:
                writer.write(b"x" * 512)
                writer.flush()
        state = full / "state"
        result = run_cli("cleanup", "--root", root, "--json", env={"WA_SESSIONS_STATE_DIR": str(state)})
        assert result.returncode == 1, result.stderr
        _one_line_error(result.stderr)
        gone = set(before) - set(snapshot(root))
        records, _ = read_history(state) if state.exists() else ([], [])
        assert gone <= {f"company_{c}/{f}" for c, f in deleted_records(records)}
        FIGURES["failing writes: full filesystem runs"] += 1
        filler.unlink()
        _recovers(root, expected_after(before, fleet.doomed(REGULAR_RULES)), "--quiet")


def test_unlinks_the_folder_refuses_are_taken_back_in_the_history(fleet_root: tuple[Path, Any]) -> None:
    """As a non-root user who may write the state dir but not the tenant folders."""
    root, fleet = fleet_root
    state = root / ".wa-sessions"
    state.mkdir()
    os.chown(state, NOBODY, NOBODY)
    os.chmod(root, 0o755)
    for tenant in fleet.tenants:  # the lock file is theirs: only the unlinks are refused
        lock = root / tenant.folder / ".cleanup.lock"
        lock.touch()
        os.chown(lock, NOBODY, NOBODY)
    before = snapshot(root)
    result = run_as(NOBODY, NOBODY, ["cleanup", "--root", root, "--json"])
    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert all(t["deleted"] == [] and t["errors"] for t in document["tenants"])
    assert snapshot(root) == before
    records, bad = read_history(state)
    events = Counter(record["event"] for record in records)
    assert events["deleted"] == events["failed"] >= 1 and not bad
    assert all(total.deleted == 0 for total in history_totals(state).values())
    FIGURES["failing writes: refused unlinks taken back"] += events["failed"]
    chown_tree(state, 0, 0)  # root refuses a state dir another user owns: the operator takes it back
    _recovers(root, expected_after(before, fleet.doomed(REGULAR_RULES)))


def test_a_fleet_run_whose_state_writes_all_fail_reports_them_instead_of_crashing(
    fleet_root: tuple[Path, Any],
) -> None:
    """RLIMIT_FSIZE 0: pending.json, cooldowns.json and runs.json cannot be written; the errors
    that are not a tenant's (company null in the webhook payload) once crashed the run's summary."""
    root, _ = fleet_root
    before = snapshot(root)
    for args in (
        ["multitenant-cleanup", "--force", "--json"],
        ["multitenant-cleanup", "--force"],
        ["emergency-cleanup", "--json"],
    ):
        result = _run_with_fsize_limit(args, root, 0)
        assert result.returncode == 1, result.stderr
        _one_line_error(result.stderr, "File too large")
        if "--json" in args:
            json.loads(result.stdout)
        assert snapshot(root) == before
        FIGURES["failing writes: RLIMIT_FSIZE faults injected"] += 1
