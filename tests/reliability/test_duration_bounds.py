"""Durations out of bounds (issue "Safety on every path", bug 10).

`notify.timeout: 99999999999999w` used to pass validation and crash the run with OverflowError
after its deletions; `max_age: 0s` was accepted and deleted files in use. Every duration now has
bounds (README, Configuration): out of them is exit 2 with one line naming the key and the bounds,
before anything is deleted; the bounds themselves are accepted. Real processes on real files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from support.commands import purge_args

from .support import assert_clean_stderr, put, run_cli, snapshot

ME = {"id": "15550000000:1@s.whatsapp.net"}


def _tree(base: Path) -> Path:
    """One tenant with files a cleanup deletes under the defaults (sessions 30 days old) and
    files in use (seconds old) that a zero max_age would delete."""
    root = base / "sessions"
    tenant = root / "company_1"
    tenant.mkdir(parents=True)
    put(tenant, "creds.json", 0, json.dumps({"nextPreKeyId": 5, "me": ME}))
    for index in range(3):
        put(tenant, f"session-1555000000{index}.0.json", 30)
        put(tenant, f"session-1666000000{index}.0.json", 0)
        put(tenant, f"sender-key-120363000000000000@g.us--1777000000{index}--0.json", 0)
    return root


def _config(base: Path, **settings: Any) -> Path:
    path = base / "config.yaml"
    path.write_text(
        json.dumps({"root": str(base / "sessions"), "state_dir": str(base / "state"), **settings})
    )
    return path


REFUSED = {
    "notify.timeout huge": ({"notify": {"timeout": "99999999999999w"}}, "notify.timeout", "1s and 5m"),
    "notify.timeout 6m": ({"notify": {"timeout": "6m"}}, "notify.timeout", "1s and 5m"),
    "notify.timeout 0s": ({"notify": {"timeout": "0s"}}, "notify.timeout", "1s and 5m"),
    "max_age 0s": ({"rules": {"session": {"max_age": "0s"}}}, "rules.session.max_age", "1h and 3650d"),
    "max_age 59m": (
        {"rules": {"sender-key": {"max_age": "59m"}}},
        "rules.sender-key.max_age",
        "1h and 3650d",
    ),
    "max_age huge": (
        {"rules": {"session": {"max_age": "99999999999999w"}}},
        "rules.session.max_age",
        "3650d",
    ),
    "emergency max_age 0s": (
        {"emergency": {"rules": {"session": {"max_age": "0s"}}}},
        "emergency.rules.session.max_age",
        "1h and 3650d",
    ),
    "locks.wait 2h": ({"locks": {"wait": "2h"}}, "locks.wait", "0s and 1h"),
    "auto.cooldown 31d": ({"auto": {"cooldown": "31d"}}, "auto.cooldown", "0s and 30d"),
    "keep_newest huge": ({"rules": {"pre-key": {"keep_newest": 10**12}}}, "rules.pre-key.keep_newest", ""),
}


def _assert_refused(result: Any, key: str, bounds: str, before: Any, after: Any) -> None:
    context = f"exit {result.returncode}\nstdout={result.stdout!r}\nstderr={result.stderr!r}"
    assert_clean_stderr(result, context)
    assert result.returncode == 2, context
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("wa-sessions: "), context
    assert f"{key}: " in lines[0] and bounds in lines[0], context
    assert after == before, f"exit 2, but files changed: {context}"


@pytest.mark.parametrize("case", list(REFUSED))
@pytest.mark.parametrize("command", ["cleanup", "multitenant-cleanup", "config validate"])
def test_a_duration_out_of_bounds_is_exit_2_naming_the_key_before_any_deletion(
    tmp_path: Path, case: str, command: str
) -> None:
    root = _tree(tmp_path)
    settings, key, bounds = REFUSED[case]
    notify = {"webhook_url": "http://127.0.0.1:9/hook", **settings.get("notify", {})}
    config = _config(tmp_path, **{**settings, "notify": notify})
    before = snapshot(root)

    result = run_cli(*command.split(), "--config", config, env={})

    _assert_refused(result, key, bounds, before, snapshot(root))


def test_a_zero_max_age_from_the_environment_is_refused_too(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    before = snapshot(root)
    result = run_cli(
        "cleanup", "--config", _config(tmp_path), env={"WA_SESSIONS_RULES__SENDER_KEY__MAX_AGE": "0s"}
    )
    _assert_refused(result, "rules.sender-key.max_age", "1h and 3650d", before, snapshot(root))


@pytest.mark.parametrize("older_than", ["0s", "30s", "3651d", "99999999999999w"])
@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "real"])
def test_older_than_out_of_bounds_is_exit_2(tmp_path: Path, older_than: str, dry_run: bool) -> None:
    root = _tree(tmp_path)
    before = snapshot(root)
    result = run_cli(
        *purge_args(_config(tmp_path), older_than),
        "--include-paired",
        "--yes",
        *(["--dry-run"] if dry_run else []),
        env={},
    )
    _assert_refused(result, "--older-than", "1m and 3650d", before, snapshot(root))


def test_the_bounds_themselves_are_accepted_and_the_run_cleans(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    config = _config(
        tmp_path,
        rules={"session": {"max_age": "3650d"}, "sender-key": {"max_age": "1h"}},
        emergency={"rules": {"session": {"max_age": "1h"}}},
        notify={"timeout": "5m"},
        locks={"wait": "1h"},
        auto={"cooldown": "30d"},
    )
    assert run_cli("config", "validate", "--config", config, env={}).returncode == 0

    result = run_cli("cleanup", "--config", config, "--json", env={})

    assert result.returncode == 0, result.stderr
    deleted = {item["file"] for tenant in json.loads(result.stdout)["tenants"] for item in tenant["deleted"]}
    assert deleted == set(), "nothing is older than 3650d or (written seconds ago) than 1h"
    assert len([name for name in os.listdir(root / "company_1") if not name.startswith(".")]) == 10

    purge = run_cli(*purge_args(config, "1m"), "--include-paired", "--dry-run", env={})
    assert purge.returncode == 0, purge.stderr
