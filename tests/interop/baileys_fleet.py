"""What the Baileys interop tests share: running the node harness and wa-sessions (optionally under
libfaketime), the built fleet's manifest, and which chats each tenant's cleanup should cost.

The folder tests (test_baileys_interop.py) and the store tests (test_baileys_interop_stores.py)
expect the same outcome from the same AgingSpec: in folders the keys are made old with
``os.utime``, in a store by leaving them untouched since a cleanup recorded them 15 days ago.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support.env import clean_env

INTEROP_DIR = Path(__file__).resolve().parent
REPO_ROOT = INTEROP_DIR.parent.parent
BAILEYS_PACKAGE = INTEROP_DIR / "node_modules" / "baileys" / "package.json"
BAILEYS_VERSION = "7.0.0-rc14"
COMPANIES = ("962302", "962303")
PROTECTED_TYPES = ("creds", "app-state-sync-key", "app-state-sync-version", "lid-mapping")
KEEP_TYPES = ("identity-key", "device-list", "tctoken")
PRE_KEYS_KEPT = 50
DAY = 86400


@dataclass(frozen=True)
class Fleet:
    """A built fleet: tenant folders under ``root``, contacts + manifest under ``contacts``."""

    root: Path
    contacts: Path
    manifest: dict[str, Any]

    def tenant(self, company: str) -> dict[str, Any]:
        return next(t for t in self.manifest["tenants"] if t["company"] == company)

    def tenant_dir(self, company: str) -> Path:
        return self.root / str(self.tenant(company)["dir"])


@dataclass(frozen=True)
class AgingSpec:
    """What to make old in one tenant: contacts' sessions, (group index, member) sender keys, our own key."""

    old_sessions: frozenset[str]
    old_member_keys: frozenset[tuple[int, str]]
    own_old_group: int


PLANS = {
    # tenant 0: PN-addressed own sender key (me.id) goes; two contacts lose their session
    COMPANIES[0]: AgingSpec(
        old_sessions=frozenset({"pn0", "lid2"}),
        old_member_keys=frozenset({(0, "md1"), (1, "lid4")}),
        own_old_group=0,
    ),
    # tenant 1: LID-addressed own sender key (me.lid) goes; our primary phone's session goes
    COMPANIES[1]: AgingSpec(
        old_sessions=frozenset({"out3", "phone"}),
        old_member_keys=frozenset({(0, "pn0"), (1, "lid2")}),
        own_old_group=1,
    ),
}


def node() -> str:
    executable = shutil.which("node")
    if executable is None:
        pytest.fail("node (>= 20) is not on PATH; the Baileys interop tests need it")
    if not BAILEYS_PACKAGE.is_file():
        pytest.fail(
            f"{BAILEYS_PACKAGE.parent} is missing: run `npm ci --prefix tests/interop` "
            "(installs Baileys 7.0.0-rc14 from tests/interop/package-lock.json)"
        )
    installed = json.loads(BAILEYS_PACKAGE.read_text())["version"]
    if installed != BAILEYS_VERSION:
        pytest.fail(
            f"tests/interop/node_modules has baileys {installed}, expected {BAILEYS_VERSION}: run `npm ci --prefix tests/interop`"
        )
    return executable


def faketime_prefix(when: str | None) -> list[str]:
    """`faketime WHEN` (libfaketime: the whole process's clock shifted), or nothing."""
    if when is None:
        return []
    executable = shutil.which("faketime")
    if executable is None:
        pytest.fail("faketime (Debian package faketime, libfaketime) is not on PATH")
    return [executable, when]


def run_node(
    script: str, *args: str, check: bool = True, faketime: str | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*faketime_prefix(faketime), node(), str(INTEROP_DIR / script), *args],
        cwd=INTEROP_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"{script} exited {result.returncode}\nstdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-4000:]}"
        )
    return result


def verify_report(args: list[str]) -> tuple[int, dict[str, Any]]:
    """Run verify_fleet.mjs ARGS: its exit code (0 or 1) and its JSON report."""
    result = run_node("verify_fleet.mjs", *args, check=False)
    if result.returncode not in (0, 1):
        pytest.fail(f"verify_fleet.mjs crashed ({result.returncode}):\n{result.stderr[-4000:]}")
    return result.returncode, json.loads(result.stdout)


def _wa_sessions_env() -> dict[str, str]:
    env = clean_env(no_color=True)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


def wa_sessions_json(*args: str, expect_exit: int = 0, faketime: str | None = None) -> dict[str, Any]:
    """Run ``python -m wa_sessions ARGS`` (with --json) and return the parsed document."""
    result = subprocess.run(
        [*faketime_prefix(faketime), sys.executable, "-m", "wa_sessions", *args],
        cwd=REPO_ROOT,
        env=_wa_sessions_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == expect_exit, (
        f"wa-sessions {' '.join(args)} exited {result.returncode}, expected {expect_exit}\n"
        f"stdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-4000:]}"
    )
    try:
        document: dict[str, Any] = json.loads(result.stdout)
    except json.JSONDecodeError as error:
        pytest.fail(
            f"wa-sessions {' '.join(args)} did not print one JSON document ({error}):\n{result.stdout[-4000:]}"
        )
    assert document.get("schema") == 1
    return document


def checks_of(report: Mapping[str, Any], company: str, check: str) -> dict[str, dict[str, Any]]:
    return {c["subject"]: c for c in report["checks"] if c["company"] == company and c["check"] == check}


def pre_key_id(name: str) -> int:
    return int(name[len("pre-key-") : -len(".json")])
