"""A purge kill campaign in which tenants also come back to life at random moments.

Each round starts a real `emergency-cleanup --purge-stale-dirs` over stale folders (with or
without backup), makes one of them come alive at a random moment (a Baileys-like write of a new
session file), SIGKILLs the run at another random moment (or lets it finish), then runs the purge
again. Checked after the kill: no folder we emptied holds files without its creds.json, and every
file gone is in a complete archive (backups/ or the temporary one in purging/). Checked after the
next run: a folder that came alive is whole (every original file back, identical, and the
writer's file kept), the others are gone and their archive complete.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import tarfile
import threading
import time
from collections import Counter
from pathlib import Path

from .support import SEED, clean_env, command, put

ROUNDS = int(os.environ.get("WA_PURGE_ALIVE_ROUNDS", "10"))
TENANTS = 4
FILES = 400
ALIVE = "session-15550009999.0.json"


def _build(root: Path) -> dict[str, bytes]:
    """Stale tenants; return `company_N/name` -> content of every file."""
    contents = {}
    for index in range(1, TENANTS + 1):
        folder = root / f"company_{index}"
        folder.mkdir(parents=True)
        files = {"creds.json": b'{"me": {"id": "15550000000:1@s.whatsapp.net"}, "nextPreKeyId": 1000}'}
        files["app-state-sync-key-AAAAAB3x.json"] = b'{"keyData": "k"}'
        for key_id in range(FILES):
            files[f"pre-key-{key_id}.json"] = f'{{"id": {key_id}, "tenant": {index}}}'.encode()
        for peer in range(20):
            files[f"session-1555000{peer:04d}.0.json"] = f'{{"peer": {peer}}}'.encode()
        for name, data in files.items():
            put(folder, name, 40, data)
            contents[f"company_{index}/{name}"] = data
    return contents


def _archived(state: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for archive in sorted([*state.glob("backups/*.tar.gz"), *state.glob("purging/*.tar.gz")]):
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                reader = tar.extractfile(member) if member.isfile() else None
                if reader is not None:
                    files[member.name] = reader.read()
    return files


def _files(folder: Path) -> dict[str, bytes]:
    if not folder.is_dir():
        return {}
    return {
        name: (folder / name).read_bytes()
        for name in os.listdir(folder)
        if not name.startswith(".") and (folder / name).is_file()
    }


def test_purges_killed_while_tenants_come_alive_lose_nothing_and_leave_no_folder_without_creds(
    tmp_path: Path, rng: random.Random, figures: Counter[str]
) -> None:
    for round_number in range(ROUNDS):
        context = f"seed {SEED}, round {round_number}"
        root = tmp_path / f"round-{round_number}" / "root"
        contents = _build(root)
        state = root / ".wa-sessions"
        args = [
            "emergency-cleanup",
            "--purge-stale-dirs",
            "--include-paired",
            "--older-than",
            "30d",
            "--yes",
            "--json",
            "--root",
            root,
        ]
        backup = rng.random() < 0.5
        if not backup:
            args.append("--no-backup")
        alive_company = f"company_{rng.randint(1, TENANTS)}"
        alive_at, kill_at = rng.uniform(0, 2.5), rng.uniform(0, 3.0)
        written = threading.Event()

        def come_alive(
            folder: Path = root / alive_company, delay: float = alive_at, written: threading.Event = written
        ) -> None:
            time.sleep(delay)
            try:
                fd = os.open(folder / ALIVE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            except OSError:
                return  # the folder was already gone: nothing came alive
            os.write(fd, b'{"fresh": true}')
            os.close(fd)
            written.set()

        writer = threading.Thread(target=come_alive)
        process = subprocess.Popen(
            command(*args), env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        writer.start()
        try:
            process.wait(timeout=kill_at)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            figures["purge-alive: runs killed"] += 1
        _, stderr = process.communicate(timeout=120)
        writer.join()
        assert b"Traceback" not in stderr and b"internal error" not in stderr, f"{context}: {stderr!r}"
        alive = written.is_set()
        figures["purge-alive: tenants that came alive"] += alive

        archived = _archived(state)
        for index in range(1, TENANTS + 1):
            company = f"company_{index}"
            present = _files(root / company)
            ours = {name: data for name, data in present.items() if name != ALIVE}
            if ours and company != alive_company:
                assert "creds.json" in present, f"{context}: {company} holds keys without its creds.json"
            for path, data in contents.items():
                folder, name = path.split("/", 1)
                if folder == company and name not in present and (root / company).exists():
                    assert archived.get(path) == data, f"{context}: {path} gone, not in a complete archive"
            figures["purge-alive: files checked after a kill"] += len(present)

        tenants_left = any((root / f"company_{index}").exists() for index in range(1, TENANTS + 1))
        recovery = subprocess.run(
            command(*args), env=clean_env(), capture_output=True, timeout=300, check=False
        )
        if tenants_left:  # looked at before the recovery, which may purge the last of them
            assert recovery.returncode == 0, f"{context}: {recovery.stderr!r}"
        else:  # every folder already purged: a root without a tenant is exit 2 (SPEC §4)
            assert recovery.returncode == 2, f"{context}: {recovery.stderr!r}"
            assert b"no tenant folder under" in recovery.stderr, f"{context}: {recovery.stderr!r}"
        for index in range(1, TENANTS + 1):
            company = f"company_{index}"
            present = _files(root / company)
            expected = {
                path.split("/", 1)[1]: data
                for path, data in contents.items()
                if path.startswith(company + "/")
            }
            if alive and company == alive_company:
                assert present.get(ALIVE) == b'{"fresh": true}', (
                    f"{context}: the live tenant's write was lost"
                )
                missing = sorted(name for name, data in expected.items() if present.get(name) != data)
                assert not missing, f"{context}: {company} came alive but lost {missing[:5]} ({len(missing)})"
                assert "creds.json" in present
            else:
                assert not (root / company).exists(), (
                    f"{context}: {company} was not purged: {sorted(present)[:5]}"
                )
                if backup:
                    archived = _archived(state)  # read once: every archive of the run, all its files
                    assert all(archived.get(f"{company}/{n}") == d for n, d in expected.items())
            figures["purge-alive: files checked after recovery"] += len(present)
        assert not list(state.glob("purging/*.json")), f"{context}: a marker outlived its purge"
        figures["purge-alive: rounds"] += 1
