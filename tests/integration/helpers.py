"""Shared helpers for the integration tests: real folders, real mtimes, real processes.

Everything here works on the real filesystem; the CLI is always run as a separate process
(`sys.executable -m wa_sessions`, or `-c` with a small prelude when a test must hook a seam).
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support.env import clean_env

DAY = 86400
OWN_PHONE = "15550000000"
OWN_LID = "100000000000001"

_RUN_TAIL = "\nimport sys as _sys\nfrom wa_sessions.cli import run as _run\n_sys.exit(_run(_sys.argv[1:]))\n"


@dataclass
class Run:
    """A finished CLI process."""

    args: list[str]
    returncode: int
    stdout: bytes
    stderr: bytes
    elapsed: float

    @property
    def doc(self) -> dict[str, Any]:
        """stdout as the one JSON document `--json` promises (strict UTF-8)."""
        try:
            return json.loads(self.stdout.decode("utf-8"))
        except ValueError as error:
            raise AssertionError(f"stdout is not one JSON document ({error}): {self.describe()}") from None

    def describe(self) -> str:
        return (
            f"args={self.args} rc={self.returncode}\n"
            f"stdout={self.stdout[:3000]!r}\nstderr={self.stderr[:3000]!r}"
        )


def command(args: Sequence[str | os.PathLike[str]], prelude: str | None = None) -> list[str]:
    """The argv of a CLI run; with a prelude, the prelude runs first in the same process."""
    str_args = [os.fspath(arg) for arg in args]
    if prelude is None:
        return [sys.executable, "-m", "wa_sessions", *str_args]
    return [sys.executable, "-c", prelude + _RUN_TAIL, *str_args]


def run_cli(
    *args: str | os.PathLike[str],
    prelude: str | None = None,
    timeout: float = 60,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> Run:
    """Run the CLI in a separate process and wait for it."""
    argv = command(args, prelude)
    started = time.monotonic()
    proc = subprocess.run(
        argv, capture_output=True, env=clean_env(env), timeout=timeout, cwd=cwd, check=False
    )
    return Run(argv, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)


def popen_cli(
    *args: str | os.PathLike[str], prelude: str | None = None, pass_fds: Sequence[int] = ()
) -> subprocess.Popen[bytes]:
    """Start the CLI in a separate process; `pass_fds` stay open in it (e.g. a pipe it signals on)."""
    return subprocess.Popen(
        command(args, prelude),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_env(),
        pass_fds=pass_fds,
    )


def finish(proc: subprocess.Popen[bytes], started: float, timeout: float = 60) -> Run:
    stdout, stderr = proc.communicate(timeout=timeout)
    return Run([str(a) for a in proc.args], proc.returncode, stdout, stderr, time.monotonic() - started)  # type: ignore[union-attr]


def plan_hook(tenant: Path, record: Path, body: str) -> str:
    """A prelude that wraps the action layer's plan_tenant: the real plan is made, its file names
    are written to `record`, then `body` runs (with `tenant` and `os` in scope)."""
    indented = "\n".join("    " + line for line in body.strip().splitlines())
    return f"""
import json, os
import wa_sessions.actions.cleanup as _cleanup
_real_plan = _cleanup.plan_tenant
def _hooked_plan(*args, **kwargs):
    plan = _real_plan(*args, **kwargs)
    with open({str(record)!r}, "w") as out:
        json.dump([deletion.entry.name for deletion in plan.deletions], out)
    tenant = {str(tenant)!r}
{indented}
    return plan
_cleanup.plan_tenant = _hooked_plan
"""


# ---------------------------------------------------------------- trees


def fspath_bytes(path: str | bytes | os.PathLike[str]) -> bytes:
    return path if isinstance(path, bytes) else os.fsencode(path)


def write_file(folder: Path, name: str | bytes, content: bytes | str, age_days: float, now: float) -> bytes:
    """Write a regular file (name may be bytes, not UTF-8) with mtime `now - age_days`."""
    path = os.path.join(fspath_bytes(folder), fspath_bytes(name))
    data = content.encode() if isinstance(content, str) else content
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    set_age(path, age_days, now)
    return path


def set_age(
    path: str | bytes | os.PathLike[str], age_days: float, now: float, *, follow: bool = True
) -> None:
    mtime_ns = int((now - age_days * DAY) * 1e9)
    os.utime(path, ns=(mtime_ns, mtime_ns), follow_symlinks=follow)


def creds_document(next_pre_key_id: int, first_unuploaded: int | None = None) -> str:
    return json.dumps(
        {
            "noiseKey": {"private": {"type": "Buffer", "data": "AA=="}},
            "registrationId": 4242,
            "nextPreKeyId": next_pre_key_id,
            "firstUnuploadedPreKeyId": first_unuploaded if first_unuploaded is not None else next_pre_key_id,
            "me": {"id": f"{OWN_PHONE}:12@s.whatsapp.net", "lid": f"{OWN_LID}:12@lid"},
        }
    )


@dataclass
class Layout:
    """A tenant written by `standard_tenant`: what the default rules must delete and keep."""

    path: Path
    delete: set[str] = field(default_factory=set)
    keep: set[str] = field(default_factory=set)
    protected: set[str] = field(default_factory=set)


def standard_tenant(folder: Path, now: float, *, pre_keys: int = 60) -> Layout:
    """A tenant whose default-rules outcome is known by construction (SPEC §2 defaults:
    session 14d, sender-key 3d, pre-key newest 50 by id, own sender key takes its memory file)."""
    folder.mkdir(parents=True, exist_ok=True)
    layout = Layout(folder)

    def put(name: str, age_days: float, verdict: str, content: str | None = None) -> None:
        write_file(folder, name, content if content is not None else json.dumps({"k": name}), age_days, now)
        {"delete": layout.delete, "keep": layout.keep, "protected": layout.protected}[verdict].add(name)

    put("creds.json", 0.01, "protected", creds_document(pre_keys + 1))
    put("creds.json.bak", 100, "protected", creds_document(pre_keys + 1))
    put("app-state-sync-key-AAAAAB3x.json", 100, "protected")
    put("app-state-sync-key-AAAAAB3x.json.bak", 100, "protected")
    put("app-state-sync-key-AAAAAC__q.json", 100, "protected")
    put("app-state-sync-version-regular_high.json", 100, "protected")
    put(f"lid-mapping-{OWN_PHONE}.json", 100, "protected", json.dumps(OWN_LID))
    put(f"lid-mapping-{OWN_LID}_reverse.json", 100, "protected", json.dumps(OWN_PHONE))
    # One batch of pre-keys with equal mtimes: ids 1..10 go (by id, not text or mtime).
    for key_id in range(1, pre_keys + 1):
        put(f"pre-key-{key_id}.json", 30, "delete" if key_id <= pre_keys - 50 else "keep")
    put("session-15550000001.0.json", 20, "delete")
    put("session-15550000001.0.json.bak", 20, "delete")
    put("session-15550000002.0.json", 5, "keep")
    put("session-15550000002.0.json.bak", 20, "keep")  # judged with its fresh key file
    put("session-100000000000002_1.0.json", 15, "delete")
    put("session-15550000005.3.json", 13, "keep")
    put("sender-key-120363000000000001@g.us--15550000003--0.json", 4, "delete")
    put("sender-key-120363000000000004@g.us--15550000004--1.json", 1, "keep")
    put(f"sender-key-120363000000000002@g.us--{OWN_PHONE}--0.json", 4, "delete")
    put("sender-key-memory-120363000000000002@g.us.json", 1, "delete")  # partner of our own key
    put("sender-key-memory-120363000000000003@g.us.json", 50, "keep")
    put("identity-key-15550000001.2.json", 100, "keep")
    put("device-list-15550000001.json", 100, "keep")
    put("tctoken-15550000001@s.whatsapp.net.json", 100, "keep")
    put("notes.txt", 100, "keep")
    return layout


def names(folder: Path) -> set[str]:
    return {name for name in os.listdir(folder) if not name.startswith(".")}


def snapshot(top: Path | str) -> dict[bytes, tuple[Any, ...]]:
    """Every entry under `top` (symlinks not followed): type, inode, size, mtime, owner, and the
    content hash of regular files or the target of symlinks. The root itself included."""
    top_b = fspath_bytes(top)
    shot: dict[bytes, tuple[Any, ...]] = {}

    def record(path: bytes) -> None:
        info = os.lstat(path)
        extra: Any = None
        if stat.S_ISREG(info.st_mode):
            with open(path, "rb") as reader:
                extra = hashlib.sha256(reader.read()).hexdigest()
        elif stat.S_ISLNK(info.st_mode):
            extra = os.readlink(path)
        shot[os.path.relpath(path, top_b)] = (
            stat.S_IFMT(info.st_mode),
            stat.S_IMODE(info.st_mode),
            info.st_ino,
            info.st_size if not stat.S_ISDIR(info.st_mode) else None,
            info.st_mtime_ns,
            info.st_uid,
            extra,
        )

    record(top_b)
    for dirpath, dirnames, filenames in os.walk(top_b, followlinks=False):
        for name in dirnames + filenames:
            record(os.path.join(dirpath, name))
    return shot


def file_state(path: str | bytes | os.PathLike[str]) -> tuple[bytes, int, int]:
    """(content, mtime_ns, inode) of a regular file."""
    with open(path, "rb") as reader:
        data = reader.read()
    info = os.stat(path)
    return data, info.st_mtime_ns, info.st_ino


# ---------------------------------------------------------------- JSON documents


def tenant_doc(doc: Mapping[str, Any], company: str) -> dict[str, Any]:
    matches = [tenant for tenant in doc["tenants"] if tenant["company"] == company]
    assert len(matches) == 1, (
        f"tenant {company!r} not exactly once in {[t['company'] for t in doc['tenants']]}"
    )
    return matches[0]


def deleted_files(tenant: Mapping[str, Any]) -> list[str]:
    return [item["file"] for item in tenant["deleted"]]


def history_lines(state_dir: Path) -> list[dict[str, Any]]:
    path = state_dir / "history.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_bytes().decode("utf-8").splitlines()]


def history_net(state_dir: Path) -> tuple[set[str], dict[str, str]]:
    """What the history says in the end: the files deleted (a `deleted` line not taken back), and
    the files whose `deleted` line a `failed` line took back, with its error. The folder store
    checks a file once it is set aside, after its batch was recorded: a file gone or changed
    before that has its record taken back."""
    deleted: set[str] = set()
    taken_back: dict[str, str] = {}
    for line in history_lines(state_dir):
        if line.get("event", "deleted") == "deleted":
            deleted.add(line["file"])
            taken_back.pop(line["file"], None)
        elif line.get("event") == "failed" and line["file"] in deleted:
            deleted.discard(line["file"])
            taken_back[line["file"]] = line["error"]
    return deleted, taken_back


def history_deleted(state_dir: Path) -> list[str]:
    return [line["file"] for line in history_lines(state_dir) if line.get("event", "deleted") == "deleted"]


def write_config(path: Path, settings: Mapping[str, Any]) -> Path:
    """A YAML config (JSON is YAML) the CLI reads with --config."""
    path.write_text(json.dumps(settings), encoding="utf-8")
    return path


def all_names(items: Iterable[Mapping[str, Any]], key: str = "file") -> list[str]:
    return [item[key] for item in items]


# ---------------------------------------------------------------- a second process holding a tenant lock

_HOLDER = """
import sys
from filelock import FileLock
lock = FileLock(sys.argv[1])
lock.acquire()
sys.stdout.write("ready\\n")
sys.stdout.flush()
sys.stdin.readline()
lock.release()
sys.stdout.write("released\\n")
sys.stdout.flush()
"""


class LockHolder:
    """A separate Python process that holds `<tenant>/.cleanup.lock` (filelock, as the tool does)
    until released (a line on its stdin) or killed."""

    def __init__(self, lock_path: Path):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _HOLDER, os.fspath(lock_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=clean_env(),
        )
        self._expect("ready")

    def _expect(self, word: str, timeout: float = 30) -> None:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        assert ready, f"lock holder did not say {word!r} within {timeout}s"
        line = self.proc.stdout.readline().decode().strip()
        assert line == word, f"lock holder said {line!r}, expected {word!r}"

    def release(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()
        self._expect("released")
        self.proc.stdin.close()
        self.proc.wait(timeout=30)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.kill()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()
