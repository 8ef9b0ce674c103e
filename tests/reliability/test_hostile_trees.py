"""Hostile trees (issue 5, item 3): whoever can write a tenant folder (the Baileys process, a
compromised tenant) must not be able to steer a root-run wa-sessions outside `root`, block it,
crash it, or forge its output.

Every test keeps an `outside` folder next to root, full of files named like old key files, and
checks that it is byte-for-byte untouched afterwards; outputs are parsed (JSON) or checked line
by line (text).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from support.privileges import NOBODY, chown_tree

from .support import (
    DAY,
    FIGURES,
    Ran,
    assert_clean_stderr,
    put,
    run_as,
    run_cli,
    snapshot,
)

OLD_SESSION = "session-15550000001.0.json"
CREDS = json.dumps(
    {"nextPreKeyId": 30, "firstUnuploadedPreKeyId": 30, "me": {"id": "15550000000:1@s.whatsapp.net"}}
)


def tenant(root: Path, name: str = "company_1", *, old: int = 3, pre_keys: int = 0) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    put(folder, "creds.json", 0, CREDS)
    put(folder, "app-state-sync-key-AAAAAB3x.json", 400)
    for index in range(old):
        put(folder, f"session-1666000000{index}.0.json", 20)
    put(folder, "session-17770000000.0.json", 1)
    for key_id in range(1, pre_keys + 1):
        put(folder, f"pre-key-{key_id}.json", 30)
    return folder


@pytest.fixture
def outside(world: Path) -> Path:
    """A folder outside root holding what a hostile tenant would love us to delete."""
    folder = world / "outside"
    tenant(folder.parent, "outside", old=5, pre_keys=60)
    put(folder, OLD_SESSION, 20, "precious")
    (folder / "company_9").mkdir()
    put(folder / "company_9", OLD_SESSION, 20, "precious too")
    return folder


@pytest.fixture
def root(world: Path) -> Path:
    path = world / "sessions"
    path.mkdir()
    return path


def _unchanged(outside: Path, before: dict[str, Any]) -> None:
    assert snapshot(outside) == before, "something outside root changed"
    FIGURES["hostile: outside files checked unchanged"] += len(before)


def _json(result: subprocess.CompletedProcess[str] | Ran) -> dict[str, Any]:
    assert_clean_stderr(result)
    document = json.loads(result.stdout)
    assert document["schema"] == 1
    return document


def _count(kind: str) -> None:
    FIGURES[f"hostile: {kind}"] += 1


# ---------------------------------------------------------------- symlinks and swaps


def test_a_tenant_folder_swapped_for_a_symlink_between_scan_and_apply_is_never_followed(
    root: Path, outside: Path
) -> None:
    folder = tenant(root, old=3)
    before = snapshot(outside)

    def swap_after_the_plan() -> None:
        from wa_sessions.actions import cleanup

        real = cleanup.plan_tenant

        def plan_then_swap(*args: Any, **kwargs: Any) -> Any:
            plan = real(*args, **kwargs)
            os.rename(folder, root / "moved-away")
            os.symlink(outside, folder)
            return plan

        cleanup.plan_tenant = plan_then_swap  # type: ignore[assignment]

    result = run_as(0, 0, ["cleanup", "--root", root, "--json"], prepare=swap_after_the_plan)
    document = _json(result)
    assert result.returncode == 0, result.stderr
    _unchanged(outside, before)
    # the deletions went where the plan was made: the folder that was opened, now moved-away
    assert len(document["tenants"][0]["deleted"]) == 3
    assert not list((root / "moved-away").glob("session-1666*"))
    _count("tenant folder swapped for a symlink between scan and apply")


def test_a_tenant_folder_swapped_for_a_symlink_before_it_is_opened_is_reported_not_followed(
    root: Path, outside: Path
) -> None:
    folder = tenant(root, old=3)
    before = snapshot(outside)

    def swap_after_listing() -> None:
        from wa_sessions.stores import folder as cleanup

        real = cleanup.select_tenants

        def select_then_swap(*args: Any, **kwargs: Any) -> Any:
            tenants = real(*args, **kwargs)
            os.rename(folder, root / "moved-away")
            os.symlink(outside, folder)
            return tenants

        cleanup.select_tenants = select_then_swap  # type: ignore[assignment]

    result = run_as(0, 0, ["cleanup", "--root", root, "--json"], prepare=swap_after_listing)
    document = _json(result)
    assert result.returncode == 1
    assert document["tenants"][0]["deleted"] == []
    assert "symlink" in document["tenants"][0]["skipped_reason"]
    _unchanged(outside, before)
    _count("tenant folder swapped for a symlink between listing and opening")


def test_the_root_swapped_for_another_folder_mid_run_never_leads_a_deletion_out_of_it(
    world: Path, root: Path, outside: Path
) -> None:
    tenant(root, old=3)
    link = world / "root-link"
    link.symlink_to(root)
    before = snapshot(outside)

    def swap_root_after_the_plan() -> None:
        from wa_sessions.actions import cleanup

        real = cleanup.plan_tenant

        def plan_then_swap(*args: Any, **kwargs: Any) -> Any:
            plan = real(*args, **kwargs)
            link.unlink()
            link.symlink_to(outside.parent / "outside-root")
            return plan

        cleanup.plan_tenant = plan_then_swap  # type: ignore[assignment]

    shutil.copytree(outside, outside.parent / "outside-root", symlinks=True)
    other_before = snapshot(outside.parent / "outside-root")
    state_dir = world / "state"
    result = run_as(
        0,
        0,
        ["cleanup", "--root", link, "--json"],
        env={"WA_SESSIONS_STATE_DIR": str(state_dir)},
        prepare=swap_root_after_the_plan,
    )
    document = _json(result)
    assert result.returncode == 0, result.stderr
    assert len(document["tenants"][0]["deleted"]) == 3
    assert not list(root.glob("company_1/session-1666*"))
    assert snapshot(outside.parent / "outside-root") == other_before
    _unchanged(outside, before)
    _count("root swapped mid-run")


def test_symlinks_and_hard_links_to_files_outside_root_never_reach_them(root: Path, outside: Path) -> None:
    folder = tenant(root, old=1)
    victim = outside / OLD_SESSION
    (folder / "session-15550000009.0.json").symlink_to(victim)  # named like an old key file
    os.utime(folder / "session-15550000009.0.json", (0, 0), follow_symlinks=False)
    (folder / "sender-key-1@g.us--15550000009--0.json").symlink_to(outside / "company_9")
    os.link(outside / "company_9" / OLD_SESSION, folder / "session-15550000008.0.json")  # a hard link
    (root / "company_2").symlink_to(outside)  # a tenant folder that is a symlink
    (root / "company_3").mkdir()
    (root / "company_3" / "creds.json").symlink_to(outside / "creds.json")  # valid creds, outside
    for key_id in range(1, 80):
        put(root / "company_3", f"pre-key-{key_id}.json", 30)
    (root / "company_4").mkdir()
    (root / "company_4" / ".cleanup.lock").symlink_to(outside / "notes-lock")  # planted lock
    put(root / "company_4", "session-1.0.json", 20)
    (root / "company_5").mkdir()
    (root / "company_5" / ".cleanup.unlinking").symlink_to(victim)  # planted leftover
    put(root / "company_5", "session-1.0.json", 20)
    before = snapshot(outside)

    for args in (["scan", "--json"], ["cleanup", "--dry-run", "--json"], ["cleanup", "--json"]):
        result = run_cli(*args, "--root", root)
        document = _json(result)
        assert result.returncode in (0, 1), result.stderr
        _unchanged(outside, before)
    tenants = {t["company"]: t for t in document["tenants"]}
    assert {d["file"] for d in tenants["1"]["deleted"]} == {
        "session-16660000000.0.json",
        "session-15550000008.0.json",
    }
    assert (folder / "session-15550000009.0.json").is_symlink()
    assert tenants["2"]["deleted"] == [] and tenants["2"]["action"] == "skipped"
    assert tenants["3"]["deleted"] == [], "creds.json read through a symlink"
    assert tenants["4"]["deleted"] == [] and tenants["4"]["errors"], "lock file followed"
    assert [d["file"] for d in tenants["5"]["deleted"]] == ["session-1.0.json"]
    assert not (outside / "notes-lock").exists()
    assert (outside / "company_9" / OLD_SESSION).read_text() == "precious too"
    _count("symlinks and hard links to outside files")


def test_a_folder_flipping_between_a_directory_and_a_symlink_while_processes_clean_and_purge(
    world: Path, root: Path, outside: Path, rng: random.Random
) -> None:
    """A racing swapper process against real scan, cleanup, multitenant-cleanup and
    emergency-cleanup --purge-stale-dirs processes."""
    tenant(root, "company_1", old=20, pre_keys=60)
    tenant(root, "company_2", old=5)
    for name in os.listdir(root / "company_2"):  # company_2 is stale: a purge candidate
        os.utime(root / "company_2" / name, (time.time() - 30 * DAY,) * 2)
    before = snapshot(outside)
    config = world / "config.yaml"
    config.write_text(
        json.dumps({"thresholds": {"warning": 1, "critical": 2, "trigger": 3, "emergency": 4, "danger": 5}})
    )
    stop = threading.Event()
    swaps = Counter[str]()

    def swapper() -> None:
        while not stop.is_set():
            for name in ("company_1", "company_2"):
                path = root / name
                aside = root / f"aside-{name}"
                try:
                    os.rename(path, aside)
                    os.symlink(outside, path)
                    time.sleep(rng.uniform(0, 0.003))
                    os.unlink(path)
                    os.rename(aside, path)
                    swaps["swaps"] += 1
                except OSError:
                    swaps["missed"] += 1
                time.sleep(rng.uniform(0, 0.003))

    thread = threading.Thread(target=swapper)
    thread.start()
    results = []
    try:
        for round_number in range(6):
            for args in (
                ["scan", "--json"],
                ["cleanup", "--json"],
                ["multitenant-cleanup", "--force", "--config", str(config), "--json"],
                [
                    "emergency-cleanup",
                    "--purge-stale-dirs",
                    "--include-paired",
                    "--older-than",
                    "10d",
                    "--yes",
                    "--json",
                ],
            ):
                results.append(run_cli(*args, "--root", root, env={"WA_SESSIONS_LOCKS__WAIT": "0s"}))
            FIGURES["hostile: swap race rounds"] += round_number >= 0
    finally:
        stop.set()
        thread.join()
    for result in results:
        assert_clean_stderr(result)
        if result.returncode == 2:  # listed while the folder was neither (mid-swap), or purged: no tenant
            assert "no tenant folder under" in result.stderr, result.stderr
            continue
        assert result.returncode in (0, 1, 3), result.stderr
        if result.returncode != 3:
            json.loads(result.stdout)
    _unchanged(outside, before)
    FIGURES["hostile: folder/symlink swaps raced"] += swaps["swaps"]
    assert swaps["swaps"] > 20


# ---------------------------------------------------------------- special files, odd entries


def test_fifos_sockets_and_directories_named_like_key_files_never_block_and_are_kept(root: Path) -> None:
    folder = tenant(root, old=1)
    os.mkfifo(folder / "session-15550000002.0.json")
    os.mkfifo(folder / "pre-key-1.json")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(os.fspath(folder / "sender-key-1@g.us--15550000003--0.json"))
    (folder / "session-15550000004.0.json").mkdir()
    put(folder / "session-15550000004.0.json", "inside.json", 20)
    for name in ("session-15550000002.0.json", "pre-key-1.json", "session-15550000004.0.json"):
        os.utime(folder / name, (0, 0), follow_symlinks=False)
    (root / "company_2").mkdir()
    os.mkfifo(root / "company_2" / "creds.json")  # creds.json a FIFO: never opened for a blocking read
    for key_id in range(1, 80):
        put(root / "company_2", f"pre-key-{key_id}.json", 30)
    (root / "company_3").mkdir()
    os.mkfifo(root / "company_3" / ".cleanup.lock")
    put(root / "company_3", "session-1.0.json", 20)
    try:
        for args in (["scan", "--json"], ["cleanup", "--json"], ["cleanup", "--json", "--verbose"]):
            result = run_cli(*args, "--root", root, timeout=60)
            document = _json(result)
        tenants = {t["company"]: t for t in document["tenants"]}
        assert tenants["1"]["deleted"] == []
        assert os.path.exists(folder / "session-15550000002.0.json")
        assert (folder / "session-15550000004.0.json" / "inside.json").exists()
        problems = " ".join(tenants["1"]["problems"])
        assert "fifo" in problems and "socket" in problems and "directory" in problems
        assert tenants["2"]["deleted"] == [], "pre-keys pruned without readable creds"
        assert tenants["3"]["deleted"] == [] and tenants["3"]["errors"]
    finally:
        listener.close()
    _count("FIFOs, sockets and directories named like key files")


def test_crafted_names_are_escaped_in_json_and_cannot_forge_lines_of_text_output(root: Path) -> None:
    folder = tenant(root, old=0)
    names = [
        b"session-1\nFORGED wa-sessions: nothing deleted.json",
        b"session-2\rFORGED.json",
        b"session-3\x1b[2KFORGED.json",
        b"session-\xff\xfe.0.json",
        b"session-" + b"9" * 242 + b".json",  # 255 bytes
        "session-√ü.0.json".encode(),
    ]
    for name in names:
        put(folder, name, 20)
    assert len(names[4]) == 255
    raw = os.fsencode(root) + b"/company_\xff\n2"
    os.mkdir(raw)
    put(os.fsdecode(raw), b"session-4\nFORGED.json", 20)
    put(os.fsdecode(raw), "creds.json", 0, CREDS)

    dry = run_cli("cleanup", "--dry-run", "--root", root, "--json")
    document = _json(dry)
    planned = {d["file"] for t in document["tenants"] for d in t["deleted"]}
    expected = {
        os.fsdecode(name).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        for name in names
    }
    assert expected <= planned
    assert "session-\\xff\\xfe.0.json" in planned
    for args in (["cleanup", "--dry-run"], ["cleanup", "--dry-run", "--verbose"], ["scan", "--verbose"]):
        text = run_cli(*args, "--root", root)
        assert_clean_stderr(text)
        forged = [line for line in (text.stdout + text.stderr).splitlines() if "FORGED" in line.split(" ")[0]]
        forged += [line for line in (text.stdout + text.stderr).split("\r") if line.startswith("FORGED")]
        assert not forged, f"{args}: a file name forged output lines: {forged}"
        assert "\x1b" not in text.stdout + text.stderr
    real = run_cli("cleanup", "--root", root, "--json")
    assert real.returncode == 0, real.stderr
    assert sorted(os.listdir(folder)) == [
        ".cleanup.lock",
        "app-state-sync-key-AAAAAB3x.json",
        "creds.json",
        "session-17770000000.0.json",
    ]
    assert os.listdir(raw) and b"session-4\nFORGED.json" not in os.listdir(raw)
    _count("crafted names (newlines, escapes, non-UTF-8, 255 bytes)")


def test_empty_corrupt_and_truncated_files_and_future_mtimes_are_reported_and_judged_safely(
    root: Path,
) -> None:
    folder = tenant(root, old=1, pre_keys=80)
    (folder / "creds.json").write_text(CREDS[: len(CREDS) // 2])  # truncated mid-write
    put(folder, "session-15550000005.0.json", 20, b"")  # 0-byte
    put(folder, "session-15550000006.0.json", 20, b"{\x00\xff not json")
    put(folder, "session-15550000007.0.json", -365)  # a year in the future: the clock moved back
    put(folder, "sender-key-1@g.us--15550000000--0.json", -30)
    result = run_cli("cleanup", "--root", root, "--json", "--verbose")
    document = _json(result)
    state = document["tenants"][0]
    deleted = {d["file"] for d in state["deleted"]}
    assert {"session-15550000005.0.json", "session-15550000006.0.json"} <= deleted
    assert not any(name.startswith("pre-key-") for name in deleted), "pre-keys pruned with unreadable creds"
    assert (folder / "session-15550000007.0.json").exists()
    assert (folder / "sender-key-1@g.us--15550000000--0.json").exists()
    problems = " ".join(state["problems"])
    assert "creds.json is unparseable" in problems
    assert "future" in problems and "empty key file" in problems
    _count("empty, corrupt, truncated files and future mtimes")


def test_a_tenant_folder_the_run_cannot_read_fails_alone(root: Path, world: Path) -> None:
    """As a non-root user: root would read through the missing permission."""
    tenant(root, "company_1", old=2)
    tenant(root, "company_2", old=2)
    chown_tree(root, NOBODY, NOBODY)
    os.chown(root / "company_2", 0, 0)
    os.chmod(root / "company_2", 0o700)
    result = run_as(NOBODY, NOBODY, ["cleanup", "--root", root, "--json"])
    document = _json(result)
    assert result.returncode == 1
    tenants = {t["company"]: t for t in document["tenants"]}
    assert len(tenants["1"]["deleted"]) == 2
    assert tenants["2"]["deleted"] == [] and "Permission denied" in json.dumps(tenants["2"])
    assert len(list((root / "company_2").glob("session-*"))) == 3
    text = run_as(NOBODY, NOBODY, ["scan", "--root", root])
    assert text.returncode == 1 and "Traceback" not in text.stderr
    assert len(text.stderr.strip().splitlines()) == 1, text.stderr
    _count("unreadable tenant folder (non-root)")
