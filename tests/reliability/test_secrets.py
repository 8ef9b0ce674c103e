"""Secrets and permissions (issue 5, item 6).

- Emergency backups hold creds.json (the account's keys): archives are 0600 in a 0700 folder,
  whatever the umask, and a backups folder planted as a symlink is not followed.
- The state dir is 0700 and everything in it 0600.
- The webhook URL's credentials (user info, path token, query) never appear on stdout or
  stderr, in any format, in the state files, nor in config show/validate; the webhook still gets
  them (HTTP Basic auth), from a real HTTP server on loopback that accepts, fails, or hangs.
- Files the tool creates in a tenant folder do not change its owner's access to it: the
  folder's owner, mode and the owner's ability to read, clean and remove it stay as they were.
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import stat
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.privileges import NOBODY, chown_tree

from .support import FIGURES, assert_clean_stderr, put, run_as, run_cli

DAY = 86400
SECRETS = ("hunter2", "s3cr3t-path-token", "qs-token-42", "webhook-user")


def _stale_tenant(root: Path, name: str = "company_1") -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    put(folder, "creds.json", 40, json.dumps({"nextPreKeyId": 3, "noiseKey": "PRIVATE"}))
    put(folder, "session-1.0.json", 40)
    put(folder, "app-state-sync-key-AAAAAB3x.json", 40)
    return folder


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077])
def test_backup_archives_are_0600_in_a_0700_folder_whatever_the_umask(world: Path, umask: int) -> None:
    root = world / "sessions"
    _stale_tenant(root, "company_1")
    _stale_tenant(root, "company_2")
    previous = os.umask(umask)
    try:
        result = run_cli(
            "emergency-cleanup",
            "--purge-stale-dirs",
            "--include-paired",
            "--older-than",
            "10d",
            "--yes",
            "--root",
            root,
            "--json",
        )
    finally:
        os.umask(previous)
    assert result.returncode == 0, result.stderr
    backups = root / ".wa-sessions" / "backups"
    archives = sorted(backups.iterdir())
    assert len(archives) == 2, archives
    assert _mode(root / ".wa-sessions") == 0o700
    assert _mode(backups) == 0o700
    for archive in archives:
        assert _mode(archive) == 0o600, f"{archive.name}: {oct(_mode(archive))}"
        with tarfile.open(archive) as tar:
            names = tar.getnames()
            assert any(name.endswith("/creds.json") for name in names), names  # which is why 0600 matters
    for name in os.listdir(root / ".wa-sessions"):
        path = root / ".wa-sessions" / name
        if path.is_file():
            assert _mode(path) == 0o600, f"{name}: {oct(_mode(path))}"
    assert not (root / "company_1").exists()
    FIGURES["secrets: backup archives checked 0600 in 0700"] += len(archives)


def test_a_backups_folder_with_loose_permissions_or_symlinked_is_refused(world: Path) -> None:
    """A backups folder others can write to may already hold what they planted (an archive a
    restore would trust): refused, as sshd refuses a loose ~/.ssh, until the operator fixes it."""
    root = world / "sessions"
    _stale_tenant(root)
    backups = root / ".wa-sessions" / "backups"
    backups.mkdir(parents=True, mode=0o777)
    backups.chmod(0o777)
    purge = (
        "emergency-cleanup",
        "--purge-stale-dirs",
        "--include-paired",
        "--older-than",
        "10d",
        "--yes",
        "--root",
        root,
    )
    result = run_cli(*purge)
    assert_clean_stderr(result)
    assert result.returncode == 1, result.stderr
    assert "is group- or world-writable (mode 777); refused" in result.stderr
    assert (root / "company_1" / "creds.json").exists(), "a folder was removed without its backup"
    assert list(backups.iterdir()) == []
    backups.chmod(0o700)  # what the message asks the operator to do
    result = run_cli(*purge)
    assert result.returncode == 0, result.stderr
    assert not (root / "company_1").exists()
    assert all(_mode(archive) == 0o600 for archive in backups.iterdir())

    other = world / "other"
    _stale_tenant(other)
    elsewhere = world / "readable-by-all"
    elsewhere.mkdir(mode=0o755)
    (other / ".wa-sessions").mkdir(mode=0o700)
    (other / ".wa-sessions" / "backups").symlink_to(elsewhere)
    result = run_cli(
        "emergency-cleanup",
        "--purge-stale-dirs",
        "--include-paired",
        "--older-than",
        "10d",
        "--yes",
        "--root",
        other,
    )
    assert_clean_stderr(result)
    assert result.returncode == 1, result.stderr
    assert list(elsewhere.iterdir()) == [], "an archive of creds.json went through a symlink"
    assert (other / "company_1" / "creds.json").exists(), "a folder was removed without its backup"
    FIGURES["secrets: backup folder attacks checked"] += 2


# ---------------------------------------------------------------- the webhook


class _Hook(http.server.BaseHTTPRequestHandler):
    behaviour = "ok"
    received: list[dict[str, Any]] = []  # noqa: RUF012

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length)
        type(self).received.append(
            {"path": self.path, "auth": self.headers.get("Authorization"), "body": body}
        )
        if self.behaviour == "hang":
            time.sleep(2.5)
            return
        self.send_response(200 if self.behaviour == "ok" else 500)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[tuple[str, type[_Hook]]]:
    handler = type("Hook", (_Hook,), {"received": [], "behaviour": "ok"})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        yield (
            f"http://{SECRETS[3]}:{SECRETS[0]}@127.0.0.1:{port}/hooks/{SECRETS[1]}?key={SECRETS[2]}",
            handler,
        )
    finally:
        server.shutdown()
        server.server_close()


def _alarming_root(world: Path) -> Path:
    root = world / "sessions"
    folder = root / "company_1"
    folder.mkdir(parents=True)
    put(folder, "creds.json", 0, json.dumps({"nextPreKeyId": 300}))
    for key_id in range(1, 300):
        put(folder, f"pre-key-{key_id}.json", 30)
    return root


def _no_secret(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} printed in {where}"


@pytest.mark.parametrize("behaviour", ["ok", "error", "hang", "refused"])
def test_webhook_credentials_never_appear_in_output_logs_or_state(
    world: Path, hook: tuple[str, type[_Hook]], behaviour: str
) -> None:
    url, handler = hook
    handler.behaviour = behaviour
    if behaviour == "refused":
        url = url.replace(url.split("@")[1].split("/")[0], "127.0.0.1:9")
    root = _alarming_root(world)
    config = world / "config.yaml"
    config.write_text(json.dumps({"notify": {"webhook_url": url, "timeout": "1s"}}))
    outputs = []
    for args, env in (
        (["multitenant-cleanup", "--force", "--json", "--config", str(config)], {}),
        (["multitenant-cleanup", "--force", "--verbose", "--config", str(config)], {}),
        (["emergency-cleanup", "--verbose", "--dry-run"], {"NOTIFICATION_WEBHOOK": url}),
        (["emergency-cleanup", "--company", "1"], {"WA_SESSIONS_NOTIFY__WEBHOOK_URL": url}),
        (["config", "show", "--config", str(config)], {}),
        (["config", "show", "--json"], {"NOTIFICATION_WEBHOOK": url}),
        (["config", "validate", "--config", str(config)], {}),
        (["scan", "--json", "--config", str(config)], {"WA_SESSIONS_NOTIFY__TIMEOUT": "bogus"}),
        (["report", "--format", "markdown", "--config", str(config)], {}),
    ):
        result = run_cli(*args, "--root", root, env=env)
        assert_clean_stderr(result, str(args))
        outputs.append((args, result))
        _no_secret(result.stdout, f"stdout of {args}")
        _no_secret(result.stderr, f"stderr of {args}")
        FIGURES["secrets: outputs checked for webhook credentials"] += 1
    for folder, _, files in os.walk(root):
        for name in files:
            _no_secret((Path(folder) / name).read_bytes().decode("utf-8", "replace"), f"{folder}/{name}")
    warnings = [r.stderr for args, r in outputs if args[0] == "multitenant-cleanup"]
    if behaviour == "ok":
        assert handler.received, "the webhook was never called"
        expected = "Basic " + base64.b64encode(f"{SECRETS[3]}:{SECRETS[0]}".encode()).decode()
        assert handler.received[0]["auth"] == expected, "the credentials did not reach the webhook"
        assert SECRETS[1] in handler.received[0]["path"]
    else:
        assert "warning" in warnings[0], warnings  # the first run alerts; the second has nothing to say
        assert all(r.returncode == 0 for args, r in outputs if args[0] == "multitenant-cleanup")


# ---------------------------------------------------------------- the tenant owner's access


def test_files_the_tool_creates_in_a_tenant_folder_leave_its_owner_in_full_control(world: Path) -> None:
    """Baileys runs as its own user; wa-sessions runs as root from cron. After root's runs the
    owner can still read, clean (as wa-sessions itself) and remove its folder."""
    root = world / "sessions"
    folder = root / "company_1"
    folder.mkdir(parents=True)
    put(folder, "creds.json", 0, json.dumps({"nextPreKeyId": 3}))
    for index in range(4):
        put(folder, f"session-1666000000{index}.0.json", 20)
    chown_tree(root, NOBODY, NOBODY)
    folder.chmod(0o700)
    before = os.stat(folder)

    result = run_cli("cleanup", "--root", root)  # root, from cron
    assert result.returncode == 0, result.stderr
    after = os.stat(folder)
    assert (after.st_uid, after.st_gid, stat.S_IMODE(after.st_mode)) == (
        before.st_uid,
        before.st_gid,
        stat.S_IMODE(before.st_mode),
    )
    created = [name for name in os.listdir(folder) if name.startswith(".")]
    for name in created:
        info = os.lstat(folder / name)
        assert (info.st_uid, info.st_gid) == (NOBODY, NOBODY), (
            f"{name} is owned by {info.st_uid}:{info.st_gid}"
        )

    for index in range(4):
        put(folder, f"session-1777000000{index}.0.json", 20)
        os.chown(folder / f"session-1777000000{index}.0.json", NOBODY, NOBODY)
    state = world / "owner-state"
    state.mkdir()
    os.chown(state, NOBODY, NOBODY)
    own = run_as(
        NOBODY, NOBODY, ["cleanup", "--root", root, "--json"], env={"WA_SESSIONS_STATE_DIR": str(state)}
    )
    assert own.returncode == 0, f"the owner can no longer clean its own folder: {own.stderr}"
    assert not list(folder.glob("session-1777*"))

    def remove_folder() -> None:
        import shutil

        shutil.rmtree(folder)

    removed = run_as(NOBODY, NOBODY, ["--version"], prepare=remove_folder)
    assert removed.returncode == 0 and not folder.exists(), removed.stderr
    FIGURES["secrets: tenant-owner access checks"] += 3


def test_a_lock_file_planted_as_a_hard_link_is_never_handed_to_the_folder_owner(world: Path) -> None:
    root = world / "sessions"
    folder = root / "company_1"
    folder.mkdir(parents=True)
    put(folder, "creds.json", 0, json.dumps({"nextPreKeyId": 3}))
    chown_tree(root, NOBODY, NOBODY)
    valuable = world / "root-only"
    valuable.write_text("root's secret")
    valuable.chmod(0o600)
    os.link(valuable, folder / ".cleanup.lock")
    empty = world / "root-empty"
    empty.touch()
    (root / "company_2").mkdir()
    os.chown(root / "company_2", NOBODY, NOBODY)
    os.link(empty, root / "company_2" / ".cleanup.lock")
    result = run_cli("cleanup", "--root", root)
    assert result.returncode == 0, result.stderr
    for path in (valuable, empty):
        info = os.stat(path)
        assert (info.st_uid, info.st_gid) == (0, 0), f"{path.name} handed to the folder owner"
    assert valuable.read_text() == "root's secret"
    FIGURES["secrets: tenant-owner access checks"] += 1
