"""A live writer (issue 5, item 2).

While several wa-sessions processes (`cleanup`, and `multitenant-cleanup` with the regular and
the emergency profile) clean the same fleet over and over, another process behaves like Baileys
(baileys_like_writer.py): pre-key batches with creds.json updates, consumed pre-keys, session and
sender-key rewrites in place, `.tmp` + rename with a `.bak`, keys that age and are used again a
moment later. Afterwards: no file that was fresh when it was deleted, no protected file deleted,
the newest pre-key alive, no traceback, every exit code in {0, 3}.

The deterministic tests below pin the moment the writer strikes: between the plan and the unlink.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wa_sessions.apply import apply_plan
from wa_sessions.history import History
from wa_sessions.rules import Rule, plan_tenant
from wa_sessions.stores.folder import FolderKeys, scan_tenant

from .support import (
    DAY,
    FIGURES,
    SEED,
    build_fleet,
    clean_env,
    command,
    put,
    read_history,
    run_cli,
    snapshot,
)

WRITER_SECONDS = float(os.environ.get("WA_RELIABILITY_WRITER_SECONDS", "15"))
WRITER = Path(__file__).with_name("baileys_like_writer.py")
EMERGENCY_AGE = {"session": 3 * DAY, "sender-key": 1 * DAY}


def _cleaner(argv: list[str], stop: threading.Event, results: list[subprocess.CompletedProcess[str]]) -> None:
    while not stop.is_set():
        FIGURES["wa-sessions processes run"] += 1
        results.append(
            subprocess.run(
                command(*argv), env=clean_env(), capture_output=True, text=True, timeout=120, check=False
            )
        )


def _last_operations(log_path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    last: dict[tuple[str, str], dict[str, Any]] = {}
    for line in log_path.read_text().splitlines():
        entry = json.loads(line)
        last[(entry["tenant"], entry["file"])] = entry
    return last


def test_cleaners_racing_a_baileys_like_writer_never_delete_a_fresh_or_protected_file(
    world: Path, rng: random.Random
) -> None:
    root = world / "sessions"
    fleet = build_fleet(root, rng, tenants=4)
    counts = [len(os.listdir(root / t.folder)) for t in fleet.tenants]
    regular = world / "regular.yaml"
    regular.write_text(
        json.dumps(
            {"thresholds": {"warning": 1, "critical": 2, "trigger": 3, "emergency": 4, "danger": 10**6}}
        )
    )
    emergency = world / "emergency.yaml"
    emergency.write_text(
        json.dumps({"thresholds": {"warning": 1, "critical": 2, "trigger": 3, "emergency": 4, "danger": 5}})
    )
    protected_before = {path for path in snapshot(root) if path in fleet.protected()}
    assert min(counts) > 5

    log_path = world / "writer.jsonl"
    writer = subprocess.Popen(
        [
            sys.executable,
            str(WRITER),
            str(root),
            str(WRITER_SECONDS),
            str(rng.randrange(2**31)),
            str(log_path),
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    stop = threading.Event()
    results: list[subprocess.CompletedProcess[str]] = []
    cleaners = [
        ["cleanup", "--root", str(root), "--json"],
        ["cleanup", "--root", str(root), "--quiet"],
        ["multitenant-cleanup", "--root", str(root), "--config", str(regular), "--force", "--json"],
        ["multitenant-cleanup", "--root", str(root), "--config", str(emergency), "--json"],
    ]
    threads = [threading.Thread(target=_cleaner, args=(argv, stop, results)) for argv in cleaners]
    for thread in threads:
        thread.start()
    _, writer_errors = writer.communicate(timeout=WRITER_SECONDS + 120)
    stop.set()
    for thread in threads:
        thread.join()
    assert writer.returncode == 0, writer_errors

    context = f"seed {SEED}"
    for result in results:
        assert "Traceback" not in result.stderr, f"{context}: {result.args}\n{result.stderr}"
        assert result.returncode in (0, 3), (
            f"{context}: {result.args} exited {result.returncode}\n{result.stderr}"
        )
        if "--json" in result.args and result.returncode != 3:
            assert json.loads(result.stdout)["schema"] == 1, result
    final = run_cli("cleanup", "--root", root, "--json")  # the writer has stopped: one more pass
    assert final.returncode == 0, final.stderr

    present = set(snapshot(root))
    last = _last_operations(log_path)
    lost = [  # files judged by age: sessions and sender keys with their companions
        f"{tenant}/{name} (written {time.time() - entry['time']:.1f}s before the end)"
        for (tenant, name), entry in last.items()
        if entry["op"] == "fresh"
        and name.startswith(("session-", "sender-key-", "creds.json"))
        and not name.startswith("sender-key-memory-")
        and f"{tenant}/{name}" not in present
    ]
    if lost:
        records, _ = read_history(root / ".wa-sessions")
        lost_names = {entry.split(" ")[0].split("/", 1)[1] for entry in lost}
        story = [r for r in records if r.get("file") in lost_names]
        story += [
            entry
            for line in log_path.read_text().splitlines()
            if (entry := json.loads(line))["file"] in lost_names
        ]
        raise AssertionError(f"{context}: fresh files deleted: {lost[:10]}\n" + "\n".join(map(str, story)))
    assert protected_before <= present, f"{context}: protected files deleted: {protected_before - present}"

    for tenant in fleet.tenants:
        # The 20 highest pre-key ids ever written are never beyond the newest 20 of those that
        # exist (ids only grow), so no profile may delete them; the writer may have consumed some.
        creds = json.loads((root / tenant.folder / "creds.json").read_text())
        for key_id in range(creds["nextPreKeyId"] - 20, creds["nextPreKeyId"]):
            name = f"pre-key-{key_id}.json"
            consumed = last.get((tenant.folder, name), {}).get("op") == "removed"
            assert consumed or (root / tenant.folder / name).exists(), f"{context}: pre-key {name} deleted"

    records, bad = read_history(root / ".wa-sessions")
    assert not bad
    deleted = [r for r in records if r.get("event") == "deleted"]
    for record in deleted:
        category = record["category"]
        if category in EMERGENCY_AGE:
            age = _epoch(record["time"]) - _epoch(record["mtime"])
            assert age > EMERGENCY_AGE[category] - 2, f"{context}: deleted while fresh: {record}"
    log = log_path.read_text().splitlines()
    operations = Counter(json.loads(line)["op"] for line in log)
    FIGURES["live writer: cleaner runs"] += len(results)
    FIGURES["live writer: cleaner runs that found a lock busy (exit 3)"] += sum(
        r.returncode == 3 for r in results
    )
    FIGURES["live writer: writer operations"] += len(log)
    FIGURES["live writer: files deleted while the writer ran"] += len(deleted)
    FIGURES["live writer: files checked at the end"] += len(present)
    print(f"{len(results)} cleaner runs, writer operations {dict(operations)}, {len(deleted)} deleted")
    assert len(deleted) > 100, "the cleaners deleted too little for the race to mean anything"
    assert operations["aged"] > 20


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


# ---------------------------------------------------------------- the writer strikes between plan and unlink


def _plan(folder: Path, rules: dict[str, Rule]) -> tuple[int, Any]:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    scanned = scan_tenant(fd, time.time())
    return fd, plan_tenant(scanned.entries, rules, scanned.creds, time.time())


def _apply(fd: int, plan: Any, state_dir: Path) -> Any:
    history = History(state_dir)
    try:
        return apply_plan(FolderKeys(fd), "1", plan, history)
    finally:
        history.close()
        os.close(fd)


def test_a_key_file_rewritten_in_place_after_the_plan_is_kept(world: Path) -> None:
    folder = world / "company_1"
    folder.mkdir()
    put(
        folder, "creds.json", 0, json.dumps({"nextPreKeyId": 2, "me": {"id": "15550000000:1@s.whatsapp.net"}})
    )
    put(folder, "session-1.0.json", 20)
    put(folder, "session-2.0.json", 20)
    fd, plan = _plan(folder, {"session": Rule(max_age=14 * 86400)})
    assert len(plan.deletions) == 2
    (folder / "session-1.0.json").write_text('{"used": true}')  # Baileys uses it: same inode, new mtime
    applied = _apply(fd, plan, world / "state")
    assert (folder / "session-1.0.json").read_text() == '{"used": true}'
    assert not (folder / "session-2.0.json").exists()
    assert [d.entry.name for d in applied.deleted] == ["session-2.0.json"]
    FIGURES["live writer: deterministic plan/unlink races"] += 1


def test_a_key_file_replaced_by_rename_after_the_plan_is_kept_with_its_backup(world: Path) -> None:
    folder = world / "company_1"
    folder.mkdir()
    put(folder, "creds.json", 0, json.dumps({"nextPreKeyId": 2}))
    put(folder, "session-1.0.json", 20)
    put(folder, "session-1.0.json.bak", 20)
    fd, plan = _plan(folder, {"session": Rule(max_age=14 * 86400)})
    assert len(plan.deletions) == 2
    (folder / "session-1.0.json.tmp").write_text('{"new": 1}')
    os.replace(folder / "session-1.0.json.tmp", folder / "session-1.0.json")
    _apply(fd, plan, world / "state")
    assert (folder / "session-1.0.json").read_text() == '{"new": 1}'
    FIGURES["live writer: deterministic plan/unlink races"] += 1


def test_a_backup_written_after_the_plan_keeps_its_key_file(world: Path) -> None:
    """The `.bak` is rewritten (Baileys is about to replace the key file): the key is in use, so
    the key file must not go either, or Baileys' next read would find only the `.bak`."""
    folder = world / "company_1"
    folder.mkdir()
    put(folder, "creds.json", 0, json.dumps({"nextPreKeyId": 2}))
    put(folder, "session-1.0.json", 20)
    put(folder, "session-1.0.json.bak", 20)
    fd, plan = _plan(folder, {"session": Rule(max_age=14 * 86400)})
    (folder / "session-1.0.json.bak").write_text('{"copy": 1}')
    applied = _apply(fd, plan, world / "state")
    assert (folder / "session-1.0.json").exists(), applied
    assert (folder / "session-1.0.json.bak").read_text() == '{"copy": 1}'
    FIGURES["live writer: deterministic plan/unlink races"] += 1


def test_a_sender_key_memory_rewritten_after_the_plan_keeps_our_sender_key(world: Path) -> None:
    """Baileys just sent to the group and recorded who has our key: deleting our sender key now
    would leave a memory file naming members who will never get the new key."""
    folder = world / "company_1"
    folder.mkdir()
    group = "120363000000000001@g.us"
    put(
        folder, "creds.json", 0, json.dumps({"nextPreKeyId": 2, "me": {"id": "15550000000:1@s.whatsapp.net"}})
    )
    put(folder, f"sender-key-{group}--15550000000--1.json", 10)
    put(folder, f"sender-key-memory-{group}.json", 10)
    fd, plan = _plan(folder, {"sender-key": Rule(max_age=3 * 86400)})
    assert len(plan.deletions) == 2
    (folder / f"sender-key-memory-{group}.json").write_text('{"15550000001": true}')
    applied = _apply(fd, plan, world / "state")
    assert (folder / f"sender-key-{group}--15550000000--1.json").exists(), applied
    assert (folder / f"sender-key-memory-{group}.json").exists()
    FIGURES["live writer: deterministic plan/unlink races"] += 1


def test_a_pre_key_consumed_after_the_plan_is_not_an_error(world: Path) -> None:
    folder = world / "company_1"
    folder.mkdir()
    put(folder, "creds.json", 0, json.dumps({"nextPreKeyId": 10}))
    for key_id in range(1, 10):
        put(folder, f"pre-key-{key_id}.json", 30)
    fd, plan = _plan(folder, {"pre-key": Rule(keep_newest=3)})
    assert len(plan.deletions) == 6
    (folder / "pre-key-2.json").unlink()
    applied = _apply(fd, plan, world / "state")
    assert applied.errors == [] and applied.vanished == 1 and len(applied.deleted) == 5
    assert sorted(os.listdir(folder)) == ["creds.json", "pre-key-7.json", "pre-key-8.json", "pre-key-9.json"]
    FIGURES["live writer: deterministic plan/unlink races"] += 1


class _StrikingHistory(History):
    """A history whose first batch of `deleted` records lets the writer strike: the moment
    between the last check of a file and its unlink."""

    def __init__(self, state_dir: Path, strike: Any):
        super().__init__(state_dir)
        self.strike = strike

    def write_lines(self, lines: Sequence[str]) -> None:
        super().write_lines(lines)
        if self.strike is not None and any(json.loads(line)["event"] == "deleted" for line in lines):
            strike, self.strike = self.strike, None
            strike()


def _apply_with_strike(folder: Path, world: Path, rules: dict[str, Rule], strike: Any) -> Any:
    fd, plan = _plan(folder, rules)
    history = _StrikingHistory(world / "state", strike)
    try:
        return apply_plan(FolderKeys(fd), "1", plan, history)
    finally:
        history.close()
        os.close(fd)


def _old_session(world: Path) -> Path:
    folder = world / "company_1"
    folder.mkdir()
    put(folder, "creds.json", 0, json.dumps({"nextPreKeyId": 2}))
    put(folder, "session-1.0.json", 20, '{"old": 1}')
    return folder


def test_a_rewrite_in_place_between_the_last_check_and_the_unlink_is_not_lost(world: Path) -> None:
    folder = _old_session(world)
    applied = _apply_with_strike(
        folder,
        world,
        {"session": Rule(max_age=14 * 86400)},
        lambda: (folder / "session-1.0.json").write_text("{}"),
    )
    assert (folder / "session-1.0.json").read_text() == "{}", "Baileys' write went to a deleted file"
    assert applied.deleted == []
    records, _ = read_history(world / "state")
    assert [r["event"] for r in records] == ["deleted", "failed"], "the record was not taken back"
    assert not [name for name in os.listdir(folder) if name.startswith(".cleanup.")], os.listdir(folder)
    FIGURES["live writer: deterministic plan/unlink races"] += 1


def test_a_replacement_by_rename_between_the_last_check_and_the_unlink_is_not_lost(world: Path) -> None:
    folder = _old_session(world)

    def replace() -> None:
        (folder / "session-1.0.json.tmp").write_text('{"new": 1}')
        os.replace(folder / "session-1.0.json.tmp", folder / "session-1.0.json")

    _apply_with_strike(folder, world, {"session": Rule(max_age=14 * 86400)}, replace)
    assert (folder / "session-1.0.json").read_text() == '{"new": 1}', "the writer's new file was deleted"
    FIGURES["live writer: deterministic plan/unlink races"] += 1


def test_a_writer_that_opened_the_file_before_the_unlink_and_writes_after_it_is_not_lost(world: Path) -> None:
    """Baileys' writeFile: open (O_TRUNC) just before the unlink, write just after it."""
    folder = _old_session(world)
    opened: list[Any] = []
    _apply_with_strike(
        folder,
        world,
        {"session": Rule(max_age=14 * 86400)},
        lambda: opened.append(open(folder / "session-1.0.json", "w")),  # noqa: SIM115
    )
    with opened[0] as writer:
        writer.write('{"late": 1}')
    assert (folder / "session-1.0.json").read_text() == '{"late": 1}', "the write went to a deleted file"
    FIGURES["live writer: deterministic plan/unlink races"] += 1
