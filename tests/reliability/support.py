"""Shared machinery of the reliability campaign: a seeded fleet with an independent oracle of what
the rules may delete, real `python -m wa_sessions` processes, runs as a non-root user, tree
snapshots, history parsing, and the figures printed at the end of the session.

The seed comes from WA_RELIABILITY_SEED (default: drawn from the clock) and is printed in the
terminal summary and in every assertion message that depends on it, so any failure replays with
`WA_RELIABILITY_SEED=<seed> python -m pytest tests/reliability`.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import random
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support.env import clean_env as shared_clean_env
from support.privileges import drop_privileges, warm_up

DAY = 86400.0
SEED = int(os.environ.get("WA_RELIABILITY_SEED") or time.time_ns() % 1_000_000_007)
FIGURES: Counter[str] = Counter()

PROTECTED_PREFIXES = ("app-state-sync-key-", "app-state-sync-version-", "lid-mapping-")
REGULAR_RULES: dict[str, Any] = {"session": 14 * DAY, "sender-key": 3 * DAY, "pre-key": 50}
EMERGENCY_RULES: dict[str, Any] = {"session": 3 * DAY, "sender-key": 1 * DAY, "pre-key": 20}


# ---------------------------------------------------------------- running wa-sessions


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A child's environment: no wa-sessions variable of the caller, NO_COLOR=1, then `extra`."""
    return shared_clean_env(extra, no_color=True)


def command(*args: str | os.PathLike[str]) -> list[str]:
    return [sys.executable, "-m", "wa_sessions", *(os.fspath(arg) for arg in args)]


def run_cli(
    *args: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
    **kwargs: Any,
) -> subprocess.CompletedProcess[str]:
    """Run `python -m wa_sessions ARGS` as a real process."""
    FIGURES["wa-sessions processes run"] += 1
    return subprocess.run(
        command(*args),
        env=clean_env(env),
        capture_output=True,
        text=True,
        errors="backslashreplace",
        timeout=timeout,
        check=False,
        **kwargs,
    )


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def assert_clean_stderr(result: subprocess.CompletedProcess[str] | Ran, context: str = "") -> None:
    """No traceback and no internal error, whatever happened."""
    assert "Traceback" not in result.stderr, f"{context}\n{result.stderr}"
    assert "internal error" not in result.stderr, f"{context}\n{result.stderr}"


def run_as(
    uid: int,
    gid: int,
    args: Sequence[str | os.PathLike[str]],
    env: Mapping[str, str] | None = None,
    prepare: Callable[[], object] | None = None,
) -> Ran:
    """Run the wa-sessions command line as another user: fork, drop to uid/gid, call cli.run.

    A fork rather than `subprocess(user=...)` because the interpreter itself may not be readable
    by that user; everything the run needs is imported before the fork (support.privileges).
    """
    warm_up()
    from wa_sessions import cli

    FIGURES["wa-sessions runs in a forked process" + (" as a non-root user" if uid else "")] += 1
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            code = 99
            try:
                os.dup2(out.fileno(), 1)
                os.dup2(err.fileno(), 2)
                drop_privileges(uid, gid)
                os.environ.clear()
                os.environ.update(clean_env(env))
                if prepare is not None:  # e.g. a hook that strikes in the middle of the run
                    prepare()
                sys.stdout = io.TextIOWrapper(
                    open(1, "wb", closefd=False),  # noqa: SIM115
                    encoding="utf-8",
                    write_through=True,
                )
                sys.stderr = io.TextIOWrapper(
                    open(2, "wb", closefd=False),  # noqa: SIM115
                    encoding="utf-8",
                    errors="backslashreplace",
                    write_through=True,
                )
                code = cli.run([os.fspath(arg) for arg in args])
                sys.stdout.flush()
                sys.stderr.flush()
            except BaseException:
                import traceback

                os.write(2, ("Traceback (child)\n" + traceback.format_exc()).encode())
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        out.seek(0)
        err.seek(0)
        return Ran(
            os.waitstatus_to_exitcode(status),
            out.read().decode("utf-8", "backslashreplace"),
            err.read().decode("utf-8", "backslashreplace"),
        )


# ---------------------------------------------------------------- trees


def put(
    folder: Path, name: str | bytes, age_days: float, content: bytes | str = b"{}", now: float | None = None
) -> Path:
    """Write a file and give it an mtime `age_days` before `now`."""
    path = Path(os.fsdecode(os.path.join(os.fsencode(folder), os.fsencode(name))))
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    moment = (now if now is not None else time.time()) - age_days * DAY
    os.utime(path, (moment, moment))
    return path


def snapshot(root: Path) -> dict[str, tuple[str, int, int, str]]:
    """Every entry under root (lstat, symlinks not followed) except our own dot-entries in tenant
    folders: kind, size, mtime, and a digest of the content of regular files."""
    result: dict[str, tuple[str, int, int, str]] = {}
    for folder, dirs, files in os.walk(root):
        relative_folder = os.path.relpath(folder, root)
        dirs[:] = [name for name in dirs if not name.startswith(".")]
        for name in dirs + files:
            if name.startswith("."):
                continue
            path = os.path.join(folder, name)
            info = os.lstat(path)
            digest = ""
            if stat.S_ISREG(info.st_mode):
                with open(path, "rb") as reader:
                    digest = hashlib.sha1(reader.read()).hexdigest()
            elif stat.S_ISLNK(info.st_mode):
                digest = os.readlink(path)
            kind = stat.filemode(info.st_mode)[0]
            if stat.S_ISDIR(info.st_mode):  # a folder's size and mtime say nothing about its files
                result[os.path.normpath(os.path.join(relative_folder, name))] = (kind, 0, 0, "")
                continue
            result[os.path.normpath(os.path.join(relative_folder, name))] = (
                kind,
                info.st_size,
                info.st_mtime_ns,
                digest,
            )
    return result


def copy_tree(source: Path, target: Path) -> Path:
    """A copy keeping mtimes to the nanosecond, owners and modes (`cp -a`: much faster than
    shutil.copytree on thousands of small files)."""
    subprocess.run(["cp", "-a", "--", os.fspath(source), os.fspath(target)], check=True)
    return target


def read_history(state_dir: Path) -> tuple[list[dict[str, Any]], list[bytes]]:
    """(parsed records, lines that did not parse) of history.jsonl."""
    path = state_dir / "history.jsonl"
    if not path.exists():
        return [], []
    records, bad = [], []
    for raw in path.read_bytes().splitlines():
        try:
            record = json.loads(raw)
        except ValueError:
            bad.append(raw)
            continue
        assert isinstance(record, dict), raw
        records.append(record)
    return records, bad


def deleted_records(records: Sequence[Mapping[str, Any]]) -> set[tuple[str, str]]:
    return {(str(r["company"]), str(r["file"])) for r in records if r.get("event", "deleted") == "deleted"}


# ---------------------------------------------------------------- the fleet and its oracle


@dataclass
class KeyFile:
    """One file the fleet builder wrote, with what the oracle needs to judge it."""

    name: str
    key: str
    category: str
    age_days: float
    pre_key_id: int | None = None


@dataclass
class TenantPlan:
    folder: str
    company: str
    me: str
    next_pre_key_id: int
    files: list[KeyFile] = field(default_factory=list)

    def doomed(self, rules: Mapping[str, Any]) -> set[str]:
        """What SPEC §2 lets `rules` delete in this tenant, computed without wa_sessions' code:
        keys judged by their youngest member, pre-keys by id with the creds guard, our own sender
        keys taking their group's sender-key-memory along."""
        keys: dict[str, list[KeyFile]] = {}
        for item in self.files:
            keys.setdefault(item.key, []).append(item)
        doomed_keys: set[str] = set()
        for category in ("session", "sender-key"):
            for key, members in keys.items():
                if (
                    members[0].category == category
                    and min(m.age_days for m in members) * DAY > rules[category]
                ):
                    doomed_keys.add(key)
        pre_keys = sorted(
            (members[0].pre_key_id or 0, key)
            for key, members in keys.items()
            if members[0].category == "pre-key"
        )
        guard = self.next_pre_key_id - 1
        beyond = pre_keys[: max(0, len(pre_keys) - rules["pre-key"])]
        doomed_keys.update(key for key_id, key in beyond if key_id < guard)
        for key in list(doomed_keys):
            if key.startswith("sender-key-") and f"--{self.me}--" in key:
                group = key[len("sender-key-") :].split("--")[0]
                memory = f"sender-key-memory-{group}.json"
                if memory in keys:
                    doomed_keys.add(memory)
        return {item.name for item in self.files if item.key in doomed_keys}

    def protected(self) -> set[str]:
        return {item.name for item in self.files if item.category == "protected"}


@dataclass
class Fleet:
    root: Path
    tenants: list[TenantPlan]

    def doomed(self, rules: Mapping[str, Any]) -> set[str]:
        """Relative paths (`company_X/name`) the rules may delete."""
        return {f"{t.folder}/{name}" for t in self.tenants for name in t.doomed(rules)}

    def protected(self) -> set[str]:
        return {f"{t.folder}/{name}" for t in self.tenants for name in t.protected()}


# Ages are drawn from bands far from every rule boundary (1d, 3d, 14d), so that the verdicts do
# not change while the tests run.
FRESH = (0.01, 0.4)
YOUNG = (1.5, 2.5)
MIDDLE = (4.0, 12.0)
OLD = (16.0, 60.0)


def _age(rng: random.Random, band: tuple[float, float]) -> float:
    return rng.uniform(*band)


def build_tenant(folder: Path, rng: random.Random, now: float, size: int = 1) -> TenantPlan:
    """One tenant folder with Baileys' names: protected files, a pre-key batch sharing one mtime,
    sessions and sender keys of every age band (some with `.bak`/`.tmp` companions, some whose
    companion is younger than the key file), our own sender keys with their memory partners,
    files no rule touches, an empty key file."""
    folder.mkdir(parents=True)
    company = folder.name.split("_", 1)[-1]
    me = f"1555{rng.randrange(10**7):07d}"
    pre_key_count = rng.randrange(60, 60 + 60 * size)
    next_pre_key_id = rng.randrange(1, 400) + pre_key_count
    plan = TenantPlan(folder.name, company, me, next_pre_key_id)

    def add(
        name: str, category: str, age: float, key: str | None = None, pre_key_id: int | None = None
    ) -> None:
        content = json.dumps({"name": name, "noise": rng.randbytes(rng.randrange(20, 200)).hex()})
        put(folder, name, age, content, now)
        plan.files.append(KeyFile(name, key or name, category, age, pre_key_id))

    creds = {
        "nextPreKeyId": next_pre_key_id,
        "firstUnuploadedPreKeyId": next_pre_key_id,
        "me": {"id": f"{me}:7@s.whatsapp.net", "name": "Shop"},
        "noise": rng.randbytes(64).hex(),
    }
    put(folder, "creds.json", 0.2, json.dumps(creds), now)
    plan.files.append(KeyFile("creds.json", "creds.json", "protected", 0.2))
    add("creds.json.bak", "protected", 400)
    for index in range(3):
        add(f"app-state-sync-key-AAAAA{index}Bx.json", "protected", rng.uniform(200, 800))
    add("app-state-sync-version-regular_high.json", "protected", 500)
    for index in range(4):
        add(f"lid-mapping-1777000000{index}.json", "protected", rng.uniform(200, 800))
    add("lid-mapping-200000000000000_reverse.json", "protected", 300)
    add("lid-mapping-200000000000000_reverse.json.bak", "protected", 300)

    batch_age = _age(rng, OLD)
    first_pre_key = next_pre_key_id - pre_key_count
    for key_id in range(first_pre_key, next_pre_key_id):
        name = f"pre-key-{key_id}.json"
        add(name, "pre-key", batch_age, pre_key_id=key_id)
        if rng.random() < 0.05:
            add(name + ".bak", "pre-key", batch_age, key=name, pre_key_id=key_id)

    bands = (FRESH, YOUNG, MIDDLE, OLD, OLD)
    for index in range(rng.randrange(20, 20 + 30 * size)):
        name = f"session-1666{index:07d}.{rng.randrange(3)}.json"
        age = _age(rng, rng.choice(bands))
        add(name, "session", age)
        roll = rng.random()
        if roll < 0.15:
            add(name + ".bak", "session", age + rng.uniform(0, 5), key=name)
        elif roll < 0.22:
            add(name + ".tmp", "session", age, key=name)
        elif roll < 0.27:  # a fresh companion keeps an old key alive
            add(name + ".bak", "session", _age(rng, FRESH), key=name)
    add(f"session-10000000000000{rng.randrange(10)}_1.0.json", "session", _age(rng, OLD))

    for group_index in range(rng.randrange(3, 3 + 5 * size)):
        group = f"120363{rng.randrange(10**12):012d}@g.us"
        add(f"sender-key-{group}--{me}--7.json", "sender-key", _age(rng, rng.choice(bands)))
        add(f"sender-key-memory-{group}.json", "sender-key-memory", _age(rng, (FRESH, OLD)[group_index % 2]))
        for member in range(rng.randrange(1, 6)):
            add(
                f"sender-key-{group}--1555{rng.randrange(10**7):07d}--{member}.json",
                "sender-key",
                _age(rng, rng.choice(bands)),
            )
    for index in range(rng.randrange(3, 8)):
        add(f"identity-key-1555{index:07d}.0.json", "identity-key", _age(rng, OLD))
        add(f"device-list-1555{index:07d}.json", "device-list", _age(rng, OLD))
        add(f"tctoken-1555{index:07d}@s.whatsapp.net.json", "tctoken", _age(rng, OLD))
    add("notes.txt", "unknown", 90)
    add("pre-key-abc.json", "unknown", 90)
    empty = f"session-1999{rng.randrange(10**7):07d}.0.json"
    put(folder, empty, 30, b"", now)
    plan.files.append(KeyFile(empty, empty, "session", 30))
    return plan


def build_fleet(
    root: Path, rng: random.Random, tenants: int, size: int = 1, now: float | None = None
) -> Fleet:
    now = now if now is not None else time.time()
    root.mkdir(parents=True, exist_ok=True)
    companies = rng.sample(range(100000, 999999), tenants)
    plans = [build_tenant(root / f"company_{company}", rng, now, size) for company in sorted(companies)]
    return Fleet(root, plans)


def expected_after(before: Mapping[str, Any], doomed: set[str]) -> dict[str, Any]:
    return {path: value for path, value in before.items() if path not in doomed}


def kill(process: subprocess.Popen[Any]) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGKILL)
    process.wait()
