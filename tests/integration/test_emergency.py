"""emergency-cleanup on real folders: the emergency profile only where due (or where named), and
--purge-stale-dirs: staleness by the newest file (not the folder's mtime), refusal without --yes,
verified backups that restore names, bytes and mtimes exactly, --no-backup, held locks, and
folders it must leave alone."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
from support.commands import purge_args

from wa_sessions.layout import display_name

from .fleet_helpers import LEVEL_FILES, make_fleet, on_disk, tenants_by_company, write_fleet_config
from .helpers import Run, history_lines, run_cli, snapshot, write_file

HOUR = 3600
ODD_NAME = b"odd-\xff-name.json"


# ---------------------------------------------------------------- the emergency profile


def test_profile_is_applied_only_to_tenants_at_emergency_or_above(
    root: Path, tmp_path: Path, now: float
) -> None:
    fleet = make_fleet(root, now)
    config = write_fleet_config(tmp_path / "config.yaml", root)

    run = run_cli("emergency-cleanup", "--config", config, "--json")

    assert run.returncode == 0, run.describe()
    tenants = tenants_by_company(run.doc)
    assert sorted(tenants) == sorted(fleet)
    for level, tenant in tenants.items():
        due = level in ("emergency", "danger")
        assert tenant["action"] == ("emergency" if due else "none"), level
        deleted = {item["file"] for item in tenant["deleted"]}
        assert deleted == (fleet[level].old | fleet[level].mid if due else set()), level
        assert len(on_disk(fleet[level].path)) == LEVEL_FILES[level] - len(deleted)
    reasons = {item["reason"] for item in tenants["danger"]["deleted"]}
    assert any("older than 3d" in reason for reason in reasons), reasons
    runs = json.loads((root / ".wa-sessions" / "runs.json").read_text())["commands"]
    assert "emergency-cleanup" in runs


def test_a_named_tenant_gets_the_profile_whatever_its_status(root: Path, tmp_path: Path, now: float) -> None:
    fleet = make_fleet(root, now, {"small": "healthy", "other": "danger"})
    config = write_fleet_config(tmp_path / "config.yaml", root)

    run = run_cli("emergency-cleanup", "--config", config, "--company", "small", "--json")

    assert run.returncode == 0, run.describe()
    tenants = tenants_by_company(run.doc)
    assert list(tenants) == ["small"]
    assert {item["file"] for item in tenants["small"]["deleted"]} == fleet["small"].old | fleet["small"].mid
    assert on_disk(fleet["other"].path) >= fleet["other"].mid


def test_dry_run_touches_nothing(root: Path, tmp_path: Path, now: float) -> None:
    fleet = make_fleet(root, now, {"d": "danger"})
    config = write_fleet_config(tmp_path / "config.yaml", root)
    before = snapshot(root)

    run = run_cli("emergency-cleanup", "--config", config, "--json", "--dry-run")

    assert run.returncode == 0, run.describe()
    assert snapshot(root) == before
    assert {i["file"] for i in tenants_by_company(run.doc)["d"]["deleted"]} == fleet["d"].old | fleet["d"].mid


def test_a_named_tenant_whose_lock_is_busy_is_skipped_with_exit_3(
    root: Path, tmp_path: Path, now: float, hold_lock: type
) -> None:
    fleet = make_fleet(root, now, {"d": "danger"})
    config = write_fleet_config(tmp_path / "config.yaml", root)
    hold_lock(fleet["d"].path / ".cleanup.lock")

    run = run_cli("emergency-cleanup", "--config", config, "--company", "d", "--json")

    assert run.returncode == 3, run.describe()
    tenant = tenants_by_company(run.doc)["d"]
    assert (tenant["action"], tenant["skipped_reason"]) == ("skipped", "locked by another process")
    assert len(on_disk(fleet["d"].path)) == LEVEL_FILES["danger"]


def test_purge_options_without_purge_are_a_usage_error(root: Path, tmp_path: Path, now: float) -> None:
    make_fleet(root, now, {"d": "danger"})
    config = write_fleet_config(tmp_path / "config.yaml", root)
    before = snapshot(root)
    for extra in (["--older-than", "1h"], ["--yes"], ["--no-backup"]):
        run = run_cli("emergency-cleanup", "--config", config, *extra)
        assert run.returncode == 2, run.describe()
        assert "--purge-stale-dirs" in run.stderr.decode()
    assert snapshot(root) == before


# ---------------------------------------------------------------- --purge-stale-dirs


def _flat(root: Path, name: str, now: float, age_hours: float, files: int = 4) -> Path:
    """A single-tenant session folder (sessions/<sessionId>/) whose files are `age_hours` old:
    an abandoned QR attempt (creds.json without `me`), what --purge-stale-dirs removes without
    --include-paired (SPEC §4)."""
    folder = root / name
    folder.mkdir()
    write_file(
        folder,
        "creds.json",
        json.dumps({"nextPreKeyId": 9}),
        age_hours / 24,
        now,
    )
    for index in range(files - 1):
        write_file(
            folder,
            f"pre-key-{index}.json",
            json.dumps({"k": index}) * (index + 1),
            age_hours / 24 + index,
            now,
        )
    return folder


@pytest.fixture
def flat(root: Path, tmp_path: Path, now: float) -> dict[str, Path]:
    """Sessions root of a single-tenant deployment (tenant_pattern "*"): two stale folders, one
    live folder whose own mtime is old, one stale folder whose own mtime is new."""
    folders = {
        "stale": _flat(root, "stale-session", now, 3),
        "live": _flat(root, "live-session", now, 0.1),
        "touched": _flat(root, "touched-dir", now, 5),
    }
    write_file(folders["stale"], ODD_NAME, b"\x00\x01binary\xfe", 4 / 24, now)
    old = now - 30 * 86400
    os.utime(folders["live"], (old, old))  # the folder's own mtime says nothing about use
    os.utime(folders["touched"], (now, now))
    return folders


def _purge_config(tmp_path: Path, root: Path) -> Path:
    return write_fleet_config(tmp_path / "config.yaml", root, tenant_pattern="*")


def test_purge_refuses_without_yes_and_touches_nothing(
    root: Path, tmp_path: Path, flat: dict[str, Path]
) -> None:
    config = _purge_config(tmp_path, root)
    before = snapshot(root)

    run = run_cli(*purge_args(config, "1h"))

    assert run.returncode == 2, run.describe()
    assert "--yes" in run.stderr.decode() and len(run.stderr.decode().splitlines()) == 1
    assert snapshot(root) == before
    assert not (root / ".wa-sessions").exists()


@pytest.mark.parametrize("age", ["", "soon", "-1h", "0s", "1y"])
def test_purge_rejects_a_bad_age(root: Path, tmp_path: Path, flat: dict[str, Path], age: str) -> None:
    config = _purge_config(tmp_path, root)
    run = run_cli(*purge_args(config, age), "--yes")
    assert run.returncode == 2, run.describe()
    assert all(path.exists() for path in flat.values())


def test_purge_needs_older_than(root: Path, tmp_path: Path, flat: dict[str, Path]) -> None:
    run = run_cli(
        "emergency-cleanup", "--config", _purge_config(tmp_path, root), "--purge-stale-dirs", "--yes"
    )
    assert run.returncode == 2 and b"--older-than" in run.stderr, run.describe()


def test_purge_dry_run_lists_what_it_would_remove_and_changes_nothing(
    root: Path, tmp_path: Path, flat: dict[str, Path]
) -> None:
    config = _purge_config(tmp_path, root)
    before = snapshot(root)

    run = run_cli(*purge_args(config, "1h"), "--dry-run", "--json")

    assert run.returncode == 0, run.describe()
    assert snapshot(root) == before
    assert not (root / ".wa-sessions").exists()
    tenants = tenants_by_company(run.doc)
    assert tenants["stale-session"]["action"] == "emergency"
    assert tenants["touched-dir"]["action"] == "emergency"
    assert tenants["live-session"]["action"] == "none"
    assert len(tenants["stale-session"]["deleted"]) == 5
    assert "odd-\\xff-name.json" in {item["file"] for item in tenants["stale-session"]["deleted"]}
    assert tenants["stale-session"]["files_after"] == 0
    assert run.doc["purge_stale_dirs"] is True and run.doc["older_than"] == "1h"


def _restore(archive: Path, into: Path) -> Path:
    into.mkdir()
    with tarfile.open(archive, "r:gz", encoding="utf-8", errors="surrogateescape") as tar:
        tar.extractall(into, filter="tar")
    return into


def _contents(folder: Path) -> dict[bytes, tuple[bytes, int]]:
    """name -> (bytes, mtime_ns) of every regular file, dot-entries included."""
    result = {}
    for name in os.listdir(os.fsencode(folder)):
        path = os.path.join(os.fsencode(folder), name)
        info = os.lstat(path)
        assert stat.S_ISREG(info.st_mode), name
        with open(path, "rb") as reader:
            result[name] = (reader.read(), info.st_mtime_ns)
    return result


def test_purge_archives_verifies_and_removes_only_stale_folders(
    root: Path, tmp_path: Path, flat: dict[str, Path]
) -> None:
    config = _purge_config(tmp_path, root)
    originals = {name: _contents(folder) for name, folder in flat.items()}
    live_before = snapshot(flat["live"])

    run = run_cli(*purge_args(config, "1h"), "--yes", "--json")

    assert run.returncode == 0, run.describe()
    assert not flat["stale"].exists() and not flat["touched"].exists()
    assert snapshot(flat["live"]) == live_before
    backups = root / ".wa-sessions" / "backups"
    assert stat.S_IMODE(backups.stat().st_mode) == 0o700
    archives = sorted(backups.iterdir())
    assert [
        a.name
        for a in archives
        if not re.fullmatch(r"(stale-session|touched-dir)-\d{8}T\d{6}Z\.tar\.gz", a.name)
    ] == []
    assert len(archives) == 2
    for archive in archives:
        assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    tenants = tenants_by_company(run.doc)
    for name in ("stale-session", "touched-dir"):
        assert tenants[name]["action"] == "emergency" and tenants[name]["files_after"] == 0
        assert tenants[name]["backup"] and Path(tenants[name]["backup"]).exists()
        assert tenants[name]["newest_file_at"].endswith("Z")
    assert tenants["live-session"]["action"] == "none" and tenants["live-session"]["backup"] is None

    # The archive restores the exact files: names (even not UTF-8), bytes, mtimes.
    stale_archive = Path(tenants["stale-session"]["backup"])
    restored = _restore(stale_archive, tmp_path / "restored") / "stale-session"
    got = _contents(restored)
    assert set(got) == set(originals["stale"]) and ODD_NAME in got
    for name, (data, mtime_ns) in originals["stale"].items():
        assert got[name][0] == data, name
        assert abs(got[name][1] - mtime_ns) < 1000, name  # Python's tarfile restores to the microsecond
    if shutil.which("tar"):
        by_tar = tmp_path / "by-gnu-tar"
        by_tar.mkdir()
        subprocess.run(["tar", "-xzpf", str(stale_archive), "-C", str(by_tar)], check=True)
        assert _contents(by_tar / "stale-session") == originals["stale"], "tar restores nanosecond mtimes"

    # Every removed file is in the history, with its backup named in the reason.
    lines = [line for line in history_lines(root / ".wa-sessions") if line["company"] == "stale-session"]
    assert len(lines) == 5 and all(line["event"] == "deleted" for line in lines)
    assert all(str(stale_archive) in line["reason"] for line in lines)


def test_purge_without_backup_removes_and_archives_nothing(
    root: Path, tmp_path: Path, flat: dict[str, Path]
) -> None:
    config = _purge_config(tmp_path, root)

    run = run_cli(*purge_args(config, "1h"), "--yes", "--no-backup")

    assert run.returncode == 0, run.describe()
    assert not flat["stale"].exists() and flat["live"].exists()
    assert not (root / ".wa-sessions" / "backups").exists()


def test_purge_skips_a_folder_whose_lock_is_held(
    root: Path, tmp_path: Path, flat: dict[str, Path], hold_lock: type
) -> None:
    config = _purge_config(tmp_path, root)
    hold_lock(flat["stale"] / ".cleanup.lock")
    before = snapshot(flat["stale"])

    dry = run_cli(*purge_args(config, "1h"), "--dry-run", "--json")
    run = run_cli(*purge_args(config, "1h"), "--yes", "--json")

    named = run_cli(
        "emergency-cleanup",
        "--config",
        config,
        "--purge-stale-dirs",
        "--older-than",
        "1h",
        "--yes",
        "--company",
        "stale-session",
    )

    assert tenants_by_company(dry.doc)["stale-session"]["skipped_reason"] == "locked by another process"
    # SPEC §5: run without --company, a busy folder is skipped and the run succeeds; named, exit 3.
    assert run.returncode == 0, run.describe()
    tenant = tenants_by_company(run.doc)["stale-session"]
    assert (tenant["action"], tenant["skipped_reason"]) == ("skipped", "locked by another process")
    assert tenant["files_before"] == 5, "a busy folder is still counted"
    assert named.returncode == 3, named.describe()
    assert snapshot(flat["stale"]) == before
    assert not flat["touched"].exists(), "other stale folders are still purged"


def test_purge_leaves_folders_holding_links_or_subfolders_and_never_follows_a_symlinked_folder(
    root: Path, tmp_path: Path, now: float
) -> None:
    config = _purge_config(tmp_path, root)
    outside = tmp_path / "outside"
    outside.mkdir()
    write_file(outside, "precious.json", "{}", 30, now)
    with_link = _flat(root, "with-link", now, 5)
    os.symlink(outside / "precious.json", with_link / "link.json")
    os.lchown(with_link / "link.json", os.getuid(), os.getgid())
    with_dir = _flat(root, "with-dir", now, 5)
    (with_dir / "sub").mkdir()
    os.symlink(outside, root / "linked-session")
    before = snapshot(tmp_path)

    run = run_cli(*purge_args(config, "1h"), "--yes", "--json")

    assert run.returncode == 0, run.describe()
    tenants = tenants_by_company(run.doc)
    assert (
        tenants["with-link"]["action"] == "skipped" and "link.json" in tenants["with-link"]["skipped_reason"]
    )
    assert tenants["with-dir"]["action"] == "skipped"
    assert tenants["linked-session"]["action"] == "skipped"

    def unchanged(shot: dict[bytes, tuple[object, ...]]) -> dict[bytes, tuple[object, ...]]:
        # The state dir appears under root (so root's own mtime moves); nothing else may change.
        return {k: v for k, v in shot.items() if b".wa-sessions" not in k and k != b"root"}

    assert unchanged(snapshot(tmp_path)) == unchanged(before)


def test_purge_keeps_the_folder_when_the_backup_cannot_be_written(
    root: Path, tmp_path: Path, flat: dict[str, Path]
) -> None:
    config = _purge_config(tmp_path, root)
    (root / ".wa-sessions").mkdir(mode=0o700)
    (root / ".wa-sessions" / "backups").write_text("not a folder")
    before = _contents(flat["stale"])

    run = run_cli(*purge_args(config, "1h"), "--yes", "--json")

    assert run.returncode == 1, run.describe()
    after = _contents(flat["stale"])
    after.pop(b".cleanup.lock", None)  # our own lock file, taken before the backup
    assert after == before
    errors = tenants_by_company(run.doc)["stale-session"]["errors"]
    assert errors and "backup failed, nothing removed" in errors[0]["error"]
    assert b"backup failed" in run.stderr


def test_purge_never_removes_the_state_dir_even_when_it_matches_the_pattern(
    root: Path, tmp_path: Path, flat: dict[str, Path]
) -> None:
    state_dir = root / "state"
    config = write_fleet_config(tmp_path / "config.yaml", root, tenant_pattern="*", state_dir=str(state_dir))
    state_dir.mkdir()
    old = time.time() - 86400
    (state_dir / "history.jsonl").write_text("")
    os.utime(state_dir / "history.jsonl", (old, old))

    run = run_cli(*purge_args(config, "1h"), "--yes", "--json")

    assert run.returncode == 0, run.describe()
    assert state_dir.is_dir() and (state_dir / "backups").is_dir()
    assert "state" not in tenants_by_company(run.doc)  # the state dir is never a tenant
    assert not flat["stale"].exists()


def test_a_folder_written_to_while_it_is_archived_is_kept(
    root: Path, tmp_path: Path, flat: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from wa_sessions.actions import purge_steps as emergency
    from wa_sessions.actions.purge import run_purge
    from wa_sessions.config import load_settings

    real_archive = emergency.archive_folder

    def archive_then_write(*args: object, **kwargs: object) -> object:
        made = real_archive(*args, **kwargs)  # type: ignore[arg-type]
        (flat["stale"] / "creds.json").write_text('{"written": "by Baileys, just now"}')
        return made

    monkeypatch.setattr(emergency, "archive_folder", archive_then_write)
    settings = load_settings(_purge_config(tmp_path, root))
    result = run_purge(settings, ["stale-session"], older_than="1h", yes=True, backup=True, dry_run=False)

    (outcome,) = result.tenants
    assert (outcome.action, outcome.skipped_reason) == ("skipped", "changed while being archived; kept")
    assert outcome.deleted == [] and not outcome.errors
    assert (flat["stale"] / "creds.json").read_text() == '{"written": "by Baileys, just now"}'
    assert len(list(flat["stale"].iterdir())) == 6  # 5 files and our lock file
    assert list((root / ".wa-sessions" / "backups").iterdir()), "the archive stays"


# A purge killed between its first unlink and the folder's rmdir leaves the folder emptied or
# part-emptied, its own mtime new. The killer SIGKILLs the real run at a chosen point.
_KILL_AFTER_UNLINKS = """
import os, signal
_real_unlink = os.unlink
_unlinked = []
def _unlink_then_die(path, *args, **kwargs):
    _real_unlink(path, *args, **kwargs)
    if os.fsdecode(path).startswith(".cleanup.unlinking."):  # a file the deletion engine removed
        _unlinked.append(path)
        if len(_unlinked) == 2:
            os.kill(os.getpid(), signal.SIGKILL)
os.unlink = _unlink_then_die
"""
_KILL_AT_RMDIR = """
import os, signal
def _die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
os.rmdir = _die
"""


def _purge(config: Path, *extra: str, prelude: str | None = None) -> Run:
    return run_cli(
        "emergency-cleanup",
        "--config",
        config,
        "--company",
        "stale-session",
        "--purge-stale-dirs",
        "--older-than",
        "1h",
        "--json",
        *extra,
        prelude=prelude,
    )


@pytest.mark.parametrize(
    ("killer", "left"), [(_KILL_AFTER_UNLINKS, 3), (_KILL_AT_RMDIR, 0)], ids=["after-2-unlinks", "at-rmdir"]
)
def test_the_next_run_finishes_a_purge_killed_after_it_began_removing_files(
    root: Path, tmp_path: Path, flat: dict[str, Path], now: float, killer: str, left: int
) -> None:
    config = _purge_config(tmp_path, root)
    originals = _contents(flat["stale"])
    state = root / ".wa-sessions"

    killed = _purge(config, "--yes", prelude=killer)

    assert killed.returncode == -signal.SIGKILL, killed.describe()
    assert len([n for n in os.listdir(flat["stale"]) if n != ".cleanup.lock"]) == left
    assert flat["stale"].stat().st_mtime > now - 60, "removing files made the folder look fresh"
    (archive,) = (state / "backups").iterdir()
    assert [path.name for path in (state / "purging").iterdir()] != []

    dry = _purge(config, "--dry-run")
    assert dry.returncode == 0, dry.describe()
    planned = tenants_by_company(dry.doc)["stale-session"]
    assert planned["action"] == "emergency" and len(planned["deleted"]) == left
    assert any("by the interrupted run" in note for note in planned["notes"]), planned
    assert flat["stale"].exists()

    run = _purge(config, "--yes")

    assert run.returncode == 0, run.describe()
    assert not flat["stale"].exists()
    assert flat["live"].exists() and flat["touched"].exists()  # --company: only the one named
    done = tenants_by_company(run.doc)["stale-session"]
    assert done["action"] == "emergency" and done["files_after"] == 0 and done["errors"] == []
    assert done["backup"] == str(archive)
    assert len(done["deleted"]) == left
    assert all("finishing an interrupted purge" in item["reason"] for item in done["deleted"])
    assert list((state / "backups").iterdir()) == [archive], "the first run's archive is not written again"
    assert list((state / "purging").iterdir()) == []
    got = _contents(_restore(archive, tmp_path / "restored") / "stale-session")
    assert {name: data for name, (data, _) in got.items()} == {n: d for n, (d, _) in originals.items()}
    recorded = {
        line["file"]
        for line in history_lines(state)
        if line["company"] == "stale-session" and line["event"] == "deleted"
    }
    assert recorded == {display_name(os.fsdecode(name)) for name in originals}


def test_a_folder_emptied_by_a_killed_purge_and_then_written_to_is_kept(
    root: Path, tmp_path: Path, flat: dict[str, Path]
) -> None:
    config = _purge_config(tmp_path, root)
    originals = _contents(flat["stale"])
    assert _purge(config, "--yes", prelude=_KILL_AT_RMDIR).returncode == -signal.SIGKILL
    (flat["stale"] / "creds.json").write_text('{"written": "by Baileys, pairing again"}')

    run = _purge(config, "--yes")

    assert run.returncode == 0, run.describe()
    outcome = tenants_by_company(run.doc)["stale-session"]
    assert outcome["action"] == "skipped" and "put back from the archive" in outcome["skipped_reason"]
    assert (flat["stale"] / "creds.json").read_text() == '{"written": "by Baileys, pairing again"}'
    back = _contents(flat["stale"])  # the rest of the folder is whole again, the writer's file kept
    assert {name for name in originals if name != b"creds.json"} <= set(back)
    assert all(back[name] == data for name, data in originals.items() if name != b"creds.json")
    assert list((root / ".wa-sessions" / "purging").iterdir()) == []


def test_an_empty_folder_is_judged_by_its_own_mtime(root: Path, tmp_path: Path, now: float) -> None:
    """Without a killed purge behind it, a new empty folder (Baileys about to write creds.json) is
    kept; an old one is removed."""
    config = _purge_config(tmp_path, root)
    (root / "new-empty").mkdir()
    (root / "old-empty").mkdir()
    os.utime(root / "old-empty", (now - 7200, now - 7200))

    run = run_cli(*purge_args(config, "1h"), "--yes", "--json")

    assert run.returncode == 0, run.describe()
    assert (root / "new-empty").is_dir() and not (root / "old-empty").exists()


def test_the_next_archiving_removes_what_killed_archivings_left(
    root: Path, tmp_path: Path, flat: dict[str, Path], now: float
) -> None:
    """A killed archiving leaves `.<archive>.<pid>.partial` (a copy of creds.json); the next one
    removes those of processes that are gone and that nobody wrote to for LEFTOVER_AGE."""
    gone = subprocess.Popen(["true"])
    gone.wait()
    backups = root / ".wa-sessions" / "backups"
    backups.mkdir(parents=True, mode=0o700)
    old = now - 3600
    leftovers = {
        f".stale-session-20261101T000000Z.tar.gz.{gone.pid}.partial": (old, False),
        f".live-session-20261101T000000Z.tar.gz.{gone.pid}.partial": (now, True),  # too recent
        f".touched-dir-20261101T000000Z.tar.gz.{os.getpid()}.partial": (old, True),  # its process lives
        "notes.txt": (old, True),
    }
    for name, (mtime, _) in leftovers.items():
        (backups / name).write_bytes(b'{"creds": "copy"}')
        os.utime(backups / name, (mtime, mtime))

    assert _purge(_purge_config(tmp_path, root), "--yes").returncode == 0
    assert not flat["stale"].exists()
    left = {path.name for path in backups.iterdir()}
    assert {name for name, (_, stays) in leftovers.items() if stays} <= left
    assert {name for name, (_, stays) in leftovers.items() if not stays} & left == set()
    assert len(left) == 4, left  # and the new archive


def test_a_paired_folder_whose_creds_a_killed_run_left_set_aside_is_not_purged(
    root: Path, tmp_path: Path, now: float
) -> None:
    """A killed run left creds.json set aside (`.cleanup.unlinking.creds.json`): listed without
    its creds, the folder looks unpaired; the recovery under the lock puts creds.json back, and
    pairing is judged again there, so the paired folder is kept without --include-paired."""
    folder = _flat(root, "paired-session", now, 5)
    write_file(
        folder,
        "creds.json",
        json.dumps({"nextPreKeyId": 9, "me": {"id": "1555:1@s.whatsapp.net"}}),
        5 / 24,
        now,
    )
    os.rename(folder / "creds.json", folder / ".cleanup.unlinking.creds.json")
    config = _purge_config(tmp_path, root)

    run = run_cli(*purge_args(config, "1h"), "--yes", "--json")

    assert run.returncode == 0, run.describe()
    (tenant,) = json.loads(run.stdout)["tenants"]
    assert tenant["action"] == "skipped" and "--include-paired" in tenant["skipped_reason"]
    assert sorted(os.listdir(folder)) == [
        ".cleanup.lock",
        "creds.json",
        "pre-key-0.json",
        "pre-key-1.json",
        "pre-key-2.json",
    ]
