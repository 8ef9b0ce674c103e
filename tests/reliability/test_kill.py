"""Kill at any point (issue 5, item 1).

A real `wa-sessions cleanup` process works on a seeded fleet and is SIGKILLed at a random moment:
either after a random delay (startup, config, scan, lock, deletion, output), or the moment its
history.jsonl reaches a random size (inside the deletion phase, often in the middle of a record).
Sometimes the recovery run is killed too. After every kill:

- every file that is gone is one the rules allow (the fleet's own oracle, not wa_sessions' code),
  never a protected file, and has a complete `deleted` record in history.jsonl (record, then unlink);
- no surviving file was modified;
- the state dir and history.jsonl stay readable, the next run completes with exit 0 (a lock left
  by the killed process does not block it), and the final tree equals the tree an uninterrupted
  run produces.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import stat
import subprocess
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from support.waiting import wait_for

from .support import (
    EMERGENCY_RULES,
    FIGURES,
    REGULAR_RULES,
    SEED,
    Fleet,
    assert_clean_stderr,
    build_fleet,
    clean_env,
    command,
    copy_tree,
    deleted_records,
    expected_after,
    kill,
    put,
    read_history,
    run_as,
    run_cli,
    snapshot,
)

KILL_ITERATIONS = int(os.environ.get("WA_RELIABILITY_KILLS", "32"))


def _history_size(root: Path) -> int:
    try:
        return os.stat(root / ".wa-sessions" / "history.jsonl").st_size
    except FileNotFoundError:
        return 0


def _wait_for_history(process: subprocess.Popen[bytes], root: Path, target: int) -> None:
    """Until the run has written `target` bytes of history, or ended; checked without pause, so
    that the kill lands right there."""
    wait_for(
        lambda: process.poll() is not None or _history_size(root) >= target,
        60,
        f"the run to write {target} bytes of history or end",
        interval=0,
    )


def _killed_run(
    args: Sequence[str], root: Path, rng: random.Random, duration: float, history_bytes: int
) -> tuple[str, bool]:
    """Start a run, kill it at a random point; return how the point was chosen and whether the
    process was still running when the signal was sent."""
    before = _history_size(root)
    FIGURES["wa-sessions processes run"] += 1
    process = subprocess.Popen(
        command(*args), env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    if rng.random() < 0.35:
        mode = "after a random delay"
        time.sleep(rng.uniform(0, duration * 1.1))
    else:
        mode = "at a random history size"
        target = before + rng.randint(1, max(1, history_bytes))
        _wait_for_history(process, root, target)
    running = process.poll() is None
    kill(process)
    return mode, running


def _check_after_kill(
    root: Path, fleet_before: dict[str, object], doomed: set[str], protected: set[str], context: str
) -> int:
    """The invariants that must hold after any kill. Return how many files were checked."""
    now = snapshot(root)
    gone = set(fleet_before) - set(now)
    assert gone <= doomed, f"{context}: deleted files the rules keep: {sorted(gone - doomed)[:10]}"
    assert not gone & protected, f"{context}: deleted protected files: {sorted(gone & protected)}"
    changed = [path for path in now if path in fleet_before and now[path] != fleet_before[path]]
    assert not changed, f"{context}: files modified: {changed[:10]}"
    assert set(now) <= set(fleet_before), f"{context}: files created: {sorted(set(now) - set(fleet_before))}"
    records, bad = read_history(root / ".wa-sessions")
    assert len(bad) <= 3, f"{context}: more broken history lines than kills: {bad}"
    recorded = {f"company_{company}/{name}" for company, name in deleted_records(records)}
    unrecorded = gone - recorded
    assert not unrecorded, f"{context}: deleted without a history record: {sorted(unrecorded)[:10]}"
    return len(fleet_before)


def kill_campaign(
    pristine: Path,
    fleet: Fleet,
    workdir: Path,
    rng: random.Random,
    figures: Counter[str],
    args_of: object,
    doomed: set[str],
    iterations: int,
    label: str,
) -> None:
    """Run `iterations` kill-and-recover rounds of the command `args_of(root)` on copies of the
    pristine fleet; compare each final tree with an uninterrupted run's."""
    make_args = args_of  # a callable: root -> argv
    assert callable(make_args)
    before = snapshot(pristine)
    expected = expected_after(before, doomed)
    protected = fleet.protected()
    assert doomed and doomed.isdisjoint(protected)

    baseline = copy_tree(pristine, workdir / "baseline")
    started = time.monotonic()
    result = run_cli(*make_args(baseline))
    duration = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert_clean_stderr(result)
    assert snapshot(baseline) == expected, f"seed {SEED}: an uninterrupted {label} does not match the oracle"
    history_bytes = _history_size(baseline)
    assert history_bytes > 0

    mid_deletion = 0
    for iteration in range(iterations):
        root = copy_tree(pristine, workdir / f"round-{iteration}")
        context = f"seed {SEED}, {label} round {iteration}"
        kills = 1 + (rng.random() < 0.3)
        for kill_number in range(kills):
            mode, running = _killed_run(make_args(root), root, rng, duration, history_bytes)
            figures[f"kill: {label}, SIGKILL {mode}"] += 1
            figures["kill: SIGKILLs that hit a running process"] += running
            figures["kill: files checked after a kill"] += _check_after_kill(
                root, before, doomed, protected, f"{context}, kill {kill_number}"
            )
        gone = set(before) - set(snapshot(root))
        if 0 < len(gone) < len(doomed):
            mid_deletion += 1
        recovery = run_as(0, 0, make_args(root))
        assert_clean_stderr(recovery, context)
        assert recovery.returncode == 0, (
            f"{context}: recovery exited {recovery.returncode}: {recovery.stderr}"
        )
        final = snapshot(root)
        assert final == expected, (
            f"{context}: final tree differs from an uninterrupted run: "
            f"missing {sorted(set(expected) - set(final))[:10]}, extra {sorted(set(final) - set(expected))[:10]}"
        )
        records, bad = read_history(root / ".wa-sessions")
        recorded = {f"company_{company}/{name}" for company, name in deleted_records(records)}
        assert doomed <= recorded, f"{context}: deletions missing from the history"
        assert len(bad) <= kills, f"{context}: history lines that do not parse: {bad}"
        assert (root / ".wa-sessions" / "history.jsonl").read_bytes().endswith(b"\n")
        leftovers = [str(path) for path in root.glob("*/.cleanup.unlinking")]
        assert not leftovers, f"{context}: a killed unlink was left behind: {leftovers}"
        figures["kill: files checked after recovery"] += len(final)
        figures[f"kill: {label} rounds"] += 1
        shutil.rmtree(root)
    figures[f"kill: {label} rounds that stopped mid-deletion"] += mid_deletion
    print(f"{label}: {iterations} rounds, {mid_deletion} stopped mid-deletion (seed {SEED})")
    assert mid_deletion > 0, f"seed {SEED}: no kill landed inside the deletion phase; the test proves nothing"


def test_cleanup_killed_at_random_points_deletes_only_what_the_rules_allow_and_recovers(
    world: Path, rng: random.Random, figures: Counter[str]
) -> None:
    pristine = world / "pristine"
    fleet = build_fleet(pristine, rng, tenants=5)
    doomed = fleet.doomed(REGULAR_RULES)
    kill_campaign(
        pristine,
        fleet,
        world,
        rng,
        figures,
        lambda root: ["cleanup", "--root", str(root), "--json"],
        doomed,
        KILL_ITERATIONS,
        "cleanup",
    )


def _run_killed_after_unlinks(root: Path, unlinks: int) -> int:
    """Run `cleanup` in a forked child that SIGKILLs itself right after its `unlinks`-th unlink;
    return how many unlinks it made."""
    from wa_sessions import cli

    real_unlink = os.unlink
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read)
        done = 0

        def unlink_then_die(path: object, *args: object, **kwargs: object) -> None:
            nonlocal done
            real_unlink(path, *args, **kwargs)  # type: ignore[arg-type]
            done += 1
            os.write(write, b".")
            if done == unlinks:
                os.kill(os.getpid(), signal.SIGKILL)

        os.unlink = unlink_then_die  # type: ignore[assignment]
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        try:
            cli.run(["cleanup", "--root", str(root)])
        finally:
            os._exit(0)
    os.close(write)
    made = 0
    while chunk := os.read(read, 4096):
        made += len(chunk)
    os.close(read)
    os.waitpid(pid, 0)
    return made


def _half_deleted_units(root: Path, tenant: str, me: str) -> list[str]:
    """Pairs a kill must never split: our own sender key gone while its group's sender-key-memory
    stays (members listed there would never get our new key), or a key file gone while its
    `.bak`/`.tmp` stays (Baileys would read the old value back)."""
    names = set(os.listdir(root / tenant))
    broken = []
    for name in names:
        if name.startswith("sender-key-memory-") and name.endswith(".json"):
            group = name[len("sender-key-memory-") : -len(".json")]
            own = f"sender-key-{group}--{me}--7.json"
            if own not in names and (own + ".bak") not in names:
                broken.append(f"{name} kept without {own}")
        for suffix in (".bak", ".tmp"):
            if name.endswith(".json" + suffix) and name[: -len(suffix)] not in names:
                broken.append(f"{name} kept without {name[: -len(suffix)]}")
    return broken


def test_a_kill_after_any_unlink_never_splits_a_key_or_a_sender_key_pair(
    world: Path, rng: random.Random, figures: Counter[str]
) -> None:
    """Deterministic companion of the random campaign: a kill right after each unlink in turn."""
    now = time.time()
    pristine = world / "pristine"
    tenant = pristine / "company_1"
    tenant.mkdir(parents=True)
    me = "15550000000"
    put(tenant, "creds.json", 0, json.dumps({"nextPreKeyId": 5, "me": {"id": f"{me}:7@s.whatsapp.net"}}), now)
    for index, group in enumerate(["120363000000000001@g.us", "120363000000000002@g.us", "9@g.us"]):
        put(tenant, f"sender-key-{group}--{me}--7.json", 10, now=now)
        if index == 1:
            put(tenant, f"sender-key-{group}--{me}--7.json.bak", 10, now=now)
        put(tenant, f"sender-key-memory-{group}.json", 0.1, now=now)
        put(tenant, f"sender-key-{group}--15559999999--0.json", 10, now=now)
    for index in range(4):
        name = f"session-1666000000{index}.0.json"
        put(tenant, name, 30, now=now)
        put(tenant, name + ".bak", 30, now=now)
        if index % 2:
            put(tenant, name + ".tmp", 30, now=now)
    keep = {"creds.json"}
    total = len(os.listdir(tenant)) - len(keep)
    assert not _half_deleted_units(pristine, "company_1", me)

    for unlinks in range(1, total):
        root = copy_tree(pristine, world / f"after-{unlinks}")
        made = _run_killed_after_unlinks(root, unlinks)
        assert made == unlinks, f"the run made {made} unlinks, expected to die after {unlinks}"
        figures["kill: deterministic kills right after an unlink"] += 1
        broken = _half_deleted_units(root, "company_1", me)
        assert not broken, f"killed after unlink {unlinks}/{total}: {broken}"
        recovery = run_as(0, 0, ["cleanup", "--root", root, "--json"])
        assert recovery.returncode == 0, recovery.stderr
        assert sorted(os.listdir(root / "company_1")) == [".cleanup.lock", "creds.json"], (
            f"killed after unlink {unlinks}: the next run did not finish the job"
        )


def _thresholds_between(counts: list[int]) -> dict[str, int]:
    """Thresholds that put the tenants of the fleet at mixed levels: the smallest below
    `trigger`, the largest at `danger`, the others at `trigger` or `emergency`."""
    ordered = sorted(counts)
    trigger = ordered[0] + 1
    danger = ordered[-1]
    assert trigger < danger - 3, ordered
    return {
        "warning": trigger - 3,
        "critical": trigger - 2,
        "trigger": trigger,
        "emergency": (trigger + danger) // 2,
        "danger": danger,
    }


def test_multitenant_cleanup_killed_at_random_points_recovers_to_the_uninterrupted_tree(
    world: Path, rng: random.Random, figures: Counter[str]
) -> None:
    pristine = world / "pristine"
    fleet = build_fleet(pristine, rng, tenants=5)
    counts = {t.folder: len(os.listdir(pristine / t.folder)) for t in fleet.tenants}
    thresholds = _thresholds_between(list(counts.values()))
    config = world / "config.yaml"
    config.write_text(json.dumps({"thresholds": thresholds}))
    doomed: set[str] = set()
    for tenant in fleet.tenants:
        if counts[tenant.folder] >= thresholds["danger"]:
            doomed |= {f"{tenant.folder}/{name}" for name in tenant.doomed(EMERGENCY_RULES)}
        elif counts[tenant.folder] >= thresholds["trigger"]:
            doomed |= {f"{tenant.folder}/{name}" for name in tenant.doomed(REGULAR_RULES)}
    kill_campaign(
        pristine,
        fleet,
        world,
        rng,
        figures,
        lambda root: ["multitenant-cleanup", "--root", str(root), "--config", str(config), "--json"],
        doomed,
        max(8, KILL_ITERATIONS // 2),
        "multitenant-cleanup",
    )


def test_emergency_cleanup_killed_at_random_points_recovers_to_the_uninterrupted_tree(
    world: Path, rng: random.Random, figures: Counter[str]
) -> None:
    """Without --company, emergency-cleanup picks the tenants at `emergency` or above: a kill that
    leaves one half-cleaned below that level must not make the next run pass it over."""
    pristine = world / "pristine"
    fleet = build_fleet(pristine, rng, tenants=4)
    counts = {t.folder: len(os.listdir(pristine / t.folder)) for t in fleet.tenants}
    thresholds = _thresholds_between(list(counts.values()))
    config = world / "config.yaml"
    config.write_text(json.dumps({"thresholds": thresholds}))
    doomed = {
        f"{tenant.folder}/{name}"
        for tenant in fleet.tenants
        if counts[tenant.folder] >= thresholds["emergency"]
        for name in tenant.doomed(EMERGENCY_RULES)
    }
    kill_campaign(
        pristine,
        fleet,
        world,
        rng,
        figures,
        lambda root: ["emergency-cleanup", "--root", str(root), "--config", str(config), "--json"],
        doomed,
        max(8, KILL_ITERATIONS // 3),
        "emergency-cleanup",
    )


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_parallel_cleanup_killed_mid_run_leaves_its_workers_harmless_and_recovers(
    world: Path, rng: random.Random, figures: Counter[str]
) -> None:
    """`cleanup --jobs 2` forks workers. Killing the whole process group (systemd stopping the
    unit) or only the parent (the OOM killer) must leave the same guarantees; orphaned workers
    finish their tenant under its lock and go."""
    pristine = world / "pristine"
    fleet = build_fleet(pristine, rng, tenants=6)
    doomed = fleet.doomed(REGULAR_RULES)
    before = snapshot(pristine)
    expected = expected_after(before, doomed)
    rounds = max(6, KILL_ITERATIONS // 4)
    for iteration in range(rounds):
        context = f"seed {SEED}, parallel round {iteration}"
        root = copy_tree(pristine, world / f"parallel-{iteration}")
        FIGURES["wa-sessions processes run"] += 1
        process = subprocess.Popen(
            command("cleanup", "--root", root, "--jobs", "2"),
            env=clean_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        target = rng.randint(1, 40_000)
        _wait_for_history(process, root, target)
        whole_group = rng.random() < 0.5
        with contextlib.suppress(ProcessLookupError):
            if whole_group:
                os.killpg(process.pid, signal.SIGKILL)
            else:
                process.send_signal(signal.SIGKILL)
        process.wait()
        figures[
            f"kill: cleanup --jobs 2, SIGKILL to the {'process group' if whole_group else 'parent only'}"
        ] += 1
        wait_for(
            lambda pid=process.pid: not _group_alive(pid),
            60,
            f"the orphaned workers to end ({context})",
            interval=0.02,
        )
        figures["kill: files checked after a kill"] += _check_after_kill(
            root, before, doomed, fleet.protected(), context
        )
        recovery = run_as(0, 0, ["cleanup", "--root", root, "--json"])
        assert recovery.returncode == 0, f"{context}: {recovery.stderr}"
        assert snapshot(root) == expected, f"{context}: final tree differs from an uninterrupted run"
        figures["kill: cleanup --jobs 2 rounds"] += 1
        shutil.rmtree(root)


def _archived_files(backups: Path) -> dict[str, bytes]:
    """`company_X/name` -> content, over every complete archive (the `.partial` of a killed run
    are not archives)."""
    import tarfile

    files: dict[str, bytes] = {}
    for archive in sorted(backups.glob("*.tar.gz")):
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                if member.isfile():
                    reader = tar.extractfile(member)
                    assert reader is not None
                    files[member.name] = reader.read()
    return files


def test_a_purge_killed_at_random_points_loses_no_file_that_is_not_in_an_archive(
    world: Path, rng: random.Random, figures: Counter[str]
) -> None:
    """`emergency-cleanup --purge-stale-dirs` removes whole folders after archiving them: after any
    kill, every file gone is in a complete archive with its content, nothing fresh is touched,
    archives stay 0600, and the next run finishes the purge."""
    pristine = world / "pristine"
    fleet = build_fleet(pristine, rng, tenants=4)
    stale = {tenant.folder for tenant in fleet.tenants[:3]}
    for folder in stale:  # nothing written for 40 days
        for name in os.listdir(pristine / folder):
            os.utime(pristine / folder / name, (time.time() - 40 * 86400,) * 2)
    before = snapshot(pristine)
    contents = {path: (pristine / path).read_bytes() for path, (kind, *_) in before.items() if kind == "-"}
    args = [
        "emergency-cleanup",
        "--purge-stale-dirs",
        "--include-paired",
        "--older-than",
        "30d",
        "--yes",
        "--json",
    ]
    baseline = copy_tree(pristine, world / "purge-baseline")
    started = time.monotonic()
    assert run_cli(*args, "--root", baseline).returncode == 0
    duration = time.monotonic() - started
    history_bytes = _history_size(baseline)
    expected = {path: value for path, value in before.items() if path.split("/")[0] not in stale}
    assert snapshot(baseline) == expected
    for iteration in range(max(6, KILL_ITERATIONS // 4)):
        context = f"seed {SEED}, purge round {iteration}"
        root = copy_tree(pristine, world / f"purge-{iteration}")
        mode, _ = _killed_run([*args, "--root", str(root)], root, rng, duration, history_bytes)
        figures[f"kill: emergency-cleanup --purge-stale-dirs, SIGKILL {mode}"] += 1
        now = snapshot(root)
        gone = {path for path in set(before) - set(now) if before[path][0] == "-"}
        assert all(path.split("/")[0] in stale for path in gone), f"{context}: a fresh folder was touched"
        archived = _archived_files(root / ".wa-sessions" / "backups")
        lost = [path for path in gone if archived.get(path) != contents[path]]
        assert not lost, f"{context}: removed without a complete archive: {sorted(lost)[:5]}"
        for entry in (
            (root / ".wa-sessions" / "backups").iterdir()
            if (root / ".wa-sessions" / "backups").exists()
            else []
        ):
            assert stat.S_IMODE(entry.lstat().st_mode) == 0o600, f"{context}: {entry.name} is not 0600"
        figures["kill: files checked after a kill"] += len(before)
        recovery = run_as(0, 0, [*args, "--root", root])
        assert recovery.returncode == 0, f"{context}: {recovery.stderr}"
        assert snapshot(root) == expected, f"{context}: the next run did not finish the purge"
        archived = _archived_files(root / ".wa-sessions" / "backups")
        assert all(
            archived.get(path) == data for path, data in contents.items() if path.split("/")[0] in stale
        )
        # a killed archiving leaves its 0600 `.partial` behind until a later archiving, 10 minutes
        # on, removes it (SECURITY.md, "What wa-sessions does not defend against"; test_emergency.py tests the removal)
        figures["kill: purge leftovers (.partial, 0600)"] += len(
            list((root / ".wa-sessions" / "backups").glob(".*"))
        )
        figures["kill: emergency-cleanup --purge-stale-dirs rounds"] += 1
        shutil.rmtree(root)
