"""Safety on the paths beside the main cleanup (issue "Safety on every path"): the purge meeting a
tenant that comes back to life, our sender key and its memory as one unit, planted lock files,
the state dir as root, state-dir trust, leftovers of killed runs, temp files of killed runs.

Everything runs through the real command line on real files; kills are real SIGKILLs.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from support.commands import purge_args
from support.waiting import wait_for

from .support import DAY, assert_clean_stderr, clean_env, put, run_cli

OWN = "15550000000"
ME = {"id": f"{OWN}:12@s.whatsapp.net", "lid": "100000000000002:12@lid"}
GROUP = "120363000000000000@g.us"


def _creds(next_pre_key_id: int = 10) -> str:
    return json.dumps(
        {
            "registrationId": 1,
            "nextPreKeyId": next_pre_key_id,
            "firstUnuploadedPreKeyId": next_pre_key_id,
            "me": ME,
        }
    )


def _config(path: Path, root: Path, **extra: Any) -> Path:
    settings: dict[str, Any] = {"root": str(root), "tenant_pattern": "company_*"}
    settings.update(extra)
    path.write_text(json.dumps(settings))
    return path


def _json(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert_clean_stderr(result)
    document = json.loads(result.stdout)  # one complete document, whatever happened
    assert isinstance(document, dict)
    return document


def _tenants(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {tenant["company"]: tenant for tenant in document["tenants"]}


def _contents(folder: Path) -> dict[str, tuple[bytes, int]]:
    """name -> (content, mtime_ns) of every regular file that is not one of our dot-entries."""
    result = {}
    for name in os.listdir(folder):
        if name.startswith(".cleanup."):
            continue
        path = folder / name
        info = path.lstat()
        if stat.S_ISREG(info.st_mode):
            result[name] = (path.read_bytes(), info.st_mtime_ns)
    return result


def _with_prelude(prelude: str, *args: str | os.PathLike[str]) -> list[str]:
    """`python -c PRELUDE; wa_sessions.cli.run(ARGS)`: a real run with a hook planted in it."""
    code = (
        prelude
        + "\nimport sys as _sys\nfrom wa_sessions.cli import run as _run\n_sys.exit(_run(_sys.argv[1:]))\n"
    )
    return [sys.executable, "-c", code, *(os.fspath(arg) for arg in args)]


# ---------------------------------------------------------------- 1. a purge meeting a live tenant


def _stale_tenant(folder: Path, pre_keys: int) -> None:
    folder.mkdir()
    put(folder, "creds.json", 10, _creds(pre_keys + 1))
    put(folder, "creds.json.bak", 10, _creds(pre_keys + 1))
    put(folder, "app-state-sync-key-AAAAAB3x.json", 10, b'{"keyData": "x"}')
    put(folder, "lid-mapping-15550000001.json", 10, b'"100000000000009"')
    for key_id in range(1, pre_keys + 1):
        put(folder, f"pre-key-{key_id}.json", 10, b'{"private": "k"}')
    put(folder, "session-15550000001.0.json", 10, b'{"session": "old"}')


@pytest.mark.parametrize("backup", ["--backup", "--no-backup"])
def test_a_purge_that_meets_a_tenant_coming_back_to_life_leaves_the_folder_whole(
    tmp_path: Path, backup: str
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    folder = root / "company_1"
    _stale_tenant(folder, 20_000)
    before = _contents(folder)
    config = _config(tmp_path / "config.yaml", root, state_dir=str(tmp_path / "state"))
    args = [*purge_args(config, "1d"), "--include-paired", "--yes", "--json"]
    if backup == "--no-backup":
        args.append("--no-backup")
    session = folder / "session-15550000001.0.json"
    touched = threading.Event()

    def come_alive() -> None:
        """As soon as the first file of the folder disappears, Baileys writes a session. (Not
        within 60s: touched stays unset, and the test says so.)"""
        with contextlib.suppress(AssertionError):
            wait_for(
                lambda: any(
                    not (folder / name).exists()
                    for name in ("app-state-sync-key-AAAAAB3x.json", "creds.json", "pre-key-1.json")
                ),
                60,
                "the purge to remove a first file",
                interval=0.0005,
            )
            session.write_bytes(b'{"session": "fresh"}')
            touched.set()

    watcher = threading.Thread(target=come_alive)
    watcher.start()
    result = run_cli(*args, timeout=300)
    watcher.join()

    assert touched.is_set(), "the purge never began removing files"
    document = _json(result)
    outcome = _tenants(document)["1"]
    assert outcome["action"] == "skipped", outcome
    assert "put back from the archive" in outcome["skipped_reason"], outcome
    after = _contents(folder)
    assert session.read_bytes() == b'{"session": "fresh"}', "the writer's file is never replaced"
    missing = sorted(set(before) - set(after))
    assert not missing, f"files lost: {missing[:5]} ({len(missing)})"
    changed = [name for name in before if name != session.name and after[name] != before[name]]
    assert not changed, f"files not put back identically: {changed[:5]}"
    assert not list((tmp_path / "state" / "purging").glob("*.json")), "the purge is over: no marker left"
    if backup == "--no-backup":
        assert not list((tmp_path / "state" / "purging").glob("*.tar.gz")), "the temporary archive is gone"


# ---------------------------------------------------------------- 3. sender key and memory: one unit


def _group_tenant(folder: Path) -> None:
    folder.mkdir(parents=True)
    put(folder, "creds.json", 0.01, _creds())
    put(folder, f"sender-key-{GROUP}--{OWN}--0.json", 10, b'{"own": "key"}')
    put(folder, f"sender-key-memory-{GROUP}.json", 10, b'{"15550000001": true}')
    put(folder, f"sender-key-{GROUP}--15550000009--0.json", 10, b'{"other": "key"}')


RULES_WITH_MEMORY = {"sender-key": {"max_age": "3d"}, "sender-key-memory": {"max_age": "3d"}}


def test_our_sender_key_and_its_memory_are_one_unit_even_with_a_rule_on_the_memory(tmp_path: Path) -> None:
    root = tmp_path / "root"
    _group_tenant(root / "company_1")
    config = _config(tmp_path / "config.yaml", root, rules=RULES_WITH_MEMORY)

    dry = _json(run_cli("cleanup", "--config", config, "--dry-run", "--json"))
    planned = [item["file"] for item in _tenants(dry)["1"]["deleted"]]
    memory, own = f"sender-key-memory-{GROUP}.json", f"sender-key-{GROUP}--{OWN}--0.json"
    assert memory in planned and own in planned
    assert planned.index(memory) == planned.index(own) - 1, f"memory first, then our key: {planned}"

    # A run killed right after it unlinks the first of the pair: the memory, never our key.
    killer = """
import os, signal
_real = os.unlink
def _unlink(path, *args, **kwargs):
    _real(path, *args, **kwargs)
    name = os.fsdecode(path)
    if name.startswith(".cleanup.unlinking.") and ("memory" in name or "--OWN--" in name):
        os.kill(os.getpid(), signal.SIGKILL)
os.unlink = _unlink
""".replace("OWN", OWN)
    killed = subprocess.run(
        _with_prelude(killer, "cleanup", "--config", config, "--json"),
        env=clean_env(),
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert killed.returncode == -signal.SIGKILL
    folder = root / "company_1"
    assert not (folder / memory).exists(), "the memory file goes first"
    assert (folder / own).exists(), "our key stays until its memory is gone"


# ---------------------------------------------------------------- 4. planted lock files


@pytest.mark.parametrize("kind", ["symlink", "directory"])
def test_a_planted_lock_file_skips_its_tenant_and_the_purge_dry_run_goes_on(
    tmp_path: Path, kind: str
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    for company in ("1", "2"):
        _stale_tenant(root / f"company_{company}", 5)
    lock = root / "company_1" / ".cleanup.lock"
    if kind == "symlink":
        lock.symlink_to(tmp_path / "elsewhere")
    else:
        lock.mkdir()
    config = _config(tmp_path / "config.yaml", root, state_dir=str(tmp_path / "state"))

    result = run_cli(*purge_args(config, "1d"), "--include-paired", "--dry-run", "--json")

    document = _json(result)
    assert result.returncode == 1, result.stderr
    tenants = _tenants(document)
    assert tenants["1"]["action"] == "skipped" and tenants["1"]["errors"], tenants["1"]
    assert tenants["2"]["action"] == "emergency" and tenants["2"]["deleted"], tenants["2"]
    assert not (tmp_path / "elsewhere").exists()


# ---------------------------------------------------------------- 5. state dir = root


def test_with_the_state_dir_as_root_its_folders_are_never_tenants(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    _stale_tenant(root / "old_1", 3)
    config = _config(tmp_path / "config.yaml", root, tenant_pattern="*", state_dir=str(root))
    first = run_cli(*purge_args(config, "1d"), "--include-paired", "--yes", "--json")
    assert first.returncode == 0, first.stderr
    (archive,) = (root / "backups").iterdir()
    old = time.time() - 30 * DAY
    for path in (archive, root / "backups", root / "purging"):
        if path.exists():
            os.utime(path, (old, old))
    _stale_tenant(root / "old_2", 3)

    second = run_cli(*purge_args(config, "1d"), "--include-paired", "--yes", "--no-backup", "--json")

    document = _json(second)
    assert second.returncode == 0, second.stderr
    assert set(_tenants(document)) == {"old_2"}, "backups/ and purging/ are ours, not tenants"
    assert archive.is_file(), "the archive of the earlier purge survives"
    assert not (root / "old_2").exists()


# ---------------------------------------------------------------- 6. state-dir trust


def _old_session_tenant(root: Path) -> Path:
    folder = root / "company_1"
    folder.mkdir(parents=True)
    put(folder, "creds.json", 0.01, _creds())
    put(folder, "session-15550000001.0.json", 30, b"{}")
    return folder


def test_parents_of_the_state_dir_are_created_0755_at_most_even_under_umask_000(tmp_path: Path) -> None:
    root = tmp_path / "root"
    _old_session_tenant(root)
    state = tmp_path / "a" / "b" / "state"
    config = _config(tmp_path / "config.yaml", root, state_dir=str(state))

    result = subprocess.run(
        [sys.executable, "-m", "wa_sessions", "cleanup", "--config", str(config), "--json"],
        env=clean_env(),
        capture_output=True,
        text=True,
        check=False,
        umask=0,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    for parent in (tmp_path / "a", tmp_path / "a" / "b"):
        assert stat.S_IMODE(parent.stat().st_mode) & 0o022 == 0, oct(parent.stat().st_mode)


def test_a_world_writable_state_dir_is_refused_and_nothing_deleted(tmp_path: Path) -> None:
    root = tmp_path / "root"
    folder = _old_session_tenant(root)
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o777)
    config = _config(tmp_path / "config.yaml", root, state_dir=str(state))

    result = run_cli("cleanup", "--config", config)

    assert result.returncode == 1
    assert_clean_stderr(result)
    assert "world-writable" in result.stderr
    assert (folder / "session-15550000001.0.json").exists()


def test_a_hard_linked_history_is_refused_and_the_outside_file_untouched(tmp_path: Path) -> None:
    root = tmp_path / "root"
    folder = _old_session_tenant(root)
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    outside = tmp_path / "outside.log"
    outside.write_text("precious\n")
    os.link(outside, state / "history.jsonl")
    config = _config(tmp_path / "config.yaml", root, state_dir=str(state))

    result = run_cli("cleanup", "--config", config)

    assert result.returncode == 1
    assert_clean_stderr(result)
    assert outside.read_text() == "precious\n"
    assert (folder / "session-15550000001.0.json").exists()


def _fresh_folder_with_planted_marker(tmp_path: Path, document: dict[str, Any]) -> tuple[Path, Path]:
    root = tmp_path / "root"
    folder = root / "company_1"
    folder.mkdir(parents=True)
    put(folder, "creds.json", 0.001, _creds())
    put(folder, "session-15550000001.0.json", 0.001, b"{}")
    state = tmp_path / "state"
    (state / "purging").mkdir(parents=True, mode=0o700)
    state.chmod(0o700)
    info = folder.stat()
    files = []
    for name in sorted(os.listdir(folder)):
        entry = (folder / name).stat()
        files.append([name, entry.st_ino, entry.st_size, entry.st_mtime_ns])
    marker = {"folder": "company_1", "newest_ns": 0, "files": files, **document}
    if document.get("schema") == 2:
        marker["files"] = [[*item, "0" * 64] for item in files]
    (state / "purging" / f"{info.st_dev}-{info.st_ino}.json").write_text(json.dumps(marker))
    return folder, _config(tmp_path / "config.yaml", root, state_dir=str(state))


@pytest.mark.parametrize(
    "document",
    [
        {"schema": 1, "archive": None},
        {"schema": 2, "subdir": "backups", "archive": "missing.tar.gz"},
        {"schema": 2, "subdir": "purging", "archive": "../../outside.tar.gz"},
    ],
    ids=["no-archive", "missing-archive", "escaping-name"],
)
def test_a_planted_purge_marker_never_makes_a_live_folder_go(
    tmp_path: Path, document: dict[str, Any]
) -> None:
    folder, config = _fresh_folder_with_planted_marker(tmp_path, document)
    before = _contents(folder)

    result = run_cli(*purge_args(config, "1d"), "--include-paired", "--yes", "--json")

    _json(result)
    assert _contents(folder) == before


def test_a_symlinked_purging_folder_is_not_followed(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    _stale_tenant(root / "company_1", 3)
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    outside = tmp_path / "outside"
    outside.mkdir()
    (state / "purging").symlink_to(outside)
    config = _config(tmp_path / "config.yaml", root, state_dir=str(state))

    result = run_cli(*purge_args(config, "1d"), "--include-paired", "--yes", "--json")

    document = _json(result)
    assert result.returncode == 1
    assert list(outside.iterdir()) == []
    assert (root / "company_1" / "creds.json").exists(), "no marker, no purge"
    assert _tenants(document)["1"]["errors"]


# ---------------------------------------------------------------- 7. leftovers of killed runs


def test_a_file_found_in_use_and_killed_before_it_was_put_back_is_not_lost(tmp_path: Path) -> None:
    root = tmp_path / "root"
    folder = _old_session_tenant(root)
    session = folder / "session-15550000001.0.json"
    session.write_bytes(b'{"in": "use"}')
    old = time.time() - 30 * DAY
    os.utime(session, (old, old))
    config = _config(tmp_path / "config.yaml", root, state_dir=str(tmp_path / "state"))
    # Baileys writes the session in the instant it is set aside (the check sees it), and the run
    # is killed as it puts the file back.
    writer_then_kill = """
import os, signal, time
_rename = os.rename
def _rename_and_write(src, dst, *args, **kwargs):
    _rename(src, dst, *args, **kwargs)
    if os.fsdecode(dst).startswith(".cleanup.unlinking"):
        fd = os.open(dst, os.O_WRONLY | os.O_TRUNC, dir_fd=kwargs["dst_dir_fd"])
        os.write(fd, b'{"fresh": "write"}')
        os.close(fd)
        def _die(*a, **k):
            os.kill(os.getpid(), signal.SIGKILL)
        os.link = _die
        os.rename = _die
os.rename = _rename_and_write
"""
    killed = subprocess.run(
        _with_prelude(writer_then_kill, "cleanup", "--config", config),
        env=clean_env(),
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr

    after = run_cli("cleanup", "--config", config, "--json")

    assert after.returncode == 0, after.stderr
    _json(after)
    assert session.read_bytes() == b'{"fresh": "write"}', "the key in use is back under its name"
    assert not [name for name in os.listdir(folder) if name.startswith(".cleanup.unlinking")]


def test_a_leftover_whose_name_was_taken_since_never_replaces_the_new_file(tmp_path: Path) -> None:
    root = tmp_path / "root"
    folder = _old_session_tenant(root)
    put(folder, ".cleanup.unlinking.session-15550000002.0.json", 30, b'{"old": "copy"}')
    put(folder, "session-15550000002.0.json", 0.001, b'{"new": "file"}')
    put(folder, ".cleanup.unlinking.session-15550000003.0.json", 0.001, b'{"set": "aside"}')
    config = _config(tmp_path / "config.yaml", root, state_dir=str(tmp_path / "state"))

    result = run_cli("cleanup", "--config", config, "--json")

    assert result.returncode == 0, result.stderr
    assert (folder / "session-15550000002.0.json").read_bytes() == b'{"new": "file"}'
    assert (folder / "session-15550000003.0.json").read_bytes() == b'{"set": "aside"}'
    assert not [name for name in os.listdir(folder) if name.startswith(".cleanup.unlinking")]


# ---------------------------------------------------------------- 12. temp files of killed runs


def test_temp_files_of_killed_runs_are_removed_once_old(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    _stale_tenant(root / "company_1", 3)
    state = tmp_path / "state"
    (state / "purging").mkdir(parents=True, mode=0o700)
    state.chmod(0o700)
    old = time.time() - 3600
    stale = [state / ".pending.json.k2j3h4l5.tmp", state / "purging" / ".65024-1.json.abcdef12.tmp"]
    fresh = state / ".cooldowns.json.zz9988aa.tmp"
    for path in (*stale, fresh):
        path.write_text("{")
    for path in stale:
        os.utime(path, (old, old))
    config = _config(tmp_path / "config.yaml", root, state_dir=str(state))

    result = run_cli(*purge_args(config, "1d"), "--include-paired", "--yes", "--json")

    assert result.returncode == 0, result.stderr
    assert not any(path.exists() for path in stale)
    assert fresh.exists(), "a temp file written to in the last 10 minutes may be a live run's"


# ---------------------------------------------------------------- 12. the lock file without /proc


SWAP_AFTER_OPEN = """
import contextlib, os
import wa_sessions.stores.folder as _cleanup
_real_open = _cleanup.open_tenant
@contextlib.contextmanager
def _open_then_swap(root_fd, tenant):
    with _real_open(root_fd, tenant) as fd:  # the owner swaps the folder for a symlink
        os.rename(tenant.name, tenant.name + ".moved", src_dir_fd=root_fd, dst_dir_fd=root_fd)
        os.symlink(OUTSIDE, tenant.name, dir_fd=root_fd)
        yield fd
_cleanup.open_tenant = _open_then_swap
"""


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root and unshare(1) to hide /proc"
)
def test_without_proc_the_lock_file_is_never_created_through_a_swapped_folder(tmp_path: Path) -> None:
    root = tmp_path / "root"
    _old_session_tenant(root)
    outside = tmp_path / "outside"
    outside.mkdir()
    config = _config(tmp_path / "config.yaml", root, state_dir=str(tmp_path / "state"))
    inner = _with_prelude(
        SWAP_AFTER_OPEN.replace("OUTSIDE", repr(str(outside))), "cleanup", "--config", config
    )
    script = 'mount -t tmpfs none /proc && exec "$@"'
    probe = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", "true"], check=False
    )
    if probe.returncode != 0:
        pytest.skip("cannot mount over /proc in a mount namespace here")

    result = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *inner],
        env=clean_env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert "Traceback" not in result.stderr, result.stderr
    assert not (outside / ".cleanup.lock").exists(), "the lock file was created through the symlink"
    assert os.listdir(outside) == []
