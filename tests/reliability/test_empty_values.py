"""Empty and blank `root` / `state_dir` from every source (issue "Safety on every path", bug 8).

`Path("")` is `.`: an empty root from the command line, the environment or the YAML file used to
mean the current directory, and a cleanup run from inside a sessions root (or any folder holding
`company_*` folders) deleted there. Each such value must be exit 2 with one line naming the key,
and nothing may change. So must a `state_dir` inside a tenant folder (our state among Baileys'
files). Everything runs through the real command line on real files; the working directory of
each run is the sessions root itself, so a run that took `""` for `.` would find old files to
delete.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .support import assert_clean_stderr, put, run_cli

OLD_SESSIONS = [f"session-1555000000{index}.0.json" for index in range(4)]


def _tree(base: Path) -> Path:
    """A sessions root with one tenant whose old sessions a cleanup deletes."""
    root = base / "sessions"
    tenant = root / "company_1"
    tenant.mkdir(parents=True)
    put(
        tenant, "creds.json", 0, json.dumps({"nextPreKeyId": 5, "me": {"id": "15550000000:1@s.whatsapp.net"}})
    )
    for name in OLD_SESSIONS:
        put(tenant, name, 30)
    put(tenant, "session-16660000000.0.json", 0)
    return root


def _everything(base: Path) -> dict[str, tuple[bool, int, int]]:
    """Every entry under base, dot-entries included (a lock file, a state dir appearing counts)."""
    found: dict[str, tuple[bool, int, int]] = {}
    for folder, dirs, files in os.walk(base):
        for name in dirs + files:
            path = os.path.join(folder, name)
            info = os.lstat(path)
            found[os.path.relpath(path, base)] = (os.path.isdir(path), info.st_size, info.st_mtime_ns)
    return found


def _config(path: Path, **settings: Any) -> Path:
    path.write_text(json.dumps(settings))
    return path


def _assert_refused(result: subprocess.CompletedProcess[str], key: str, before: Any, after: Any) -> None:
    context = f"exit {result.returncode}\nstdout={result.stdout!r}\nstderr={result.stderr!r}"
    assert_clean_stderr(result, context)
    assert result.returncode == 2, context
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("wa-sessions: "), context
    assert f"{key}: " in lines[0], f"the error does not name {key}: {context}"
    assert after == before, f"exit 2, but the files changed: {context}"


def _cases(base: Path, root: Path) -> dict[str, tuple[list[str], dict[str, str], str]]:
    """name -> (arguments after `cleanup`, environment, the key the error must name)."""
    yaml = base / "config"
    yaml.mkdir()

    def config(name: str, **settings: Any) -> str:
        return str(_config(yaml / f"{name}.yaml", **settings))

    given_root = ["--root", str(root)]
    return {
        "--root blank": (["--root", "   "], {}, "root"),
        "WA_SESSIONS_ROOT empty": ([], {"WA_SESSIONS_ROOT": ""}, "root"),
        "WA_SESSIONS_ROOT blank": ([], {"WA_SESSIONS_ROOT": " \t "}, "root"),
        "BAILEYS_SESSIONS_PATH empty": ([], {"BAILEYS_SESSIONS_PATH": ""}, "root"),
        "yaml root empty": (["--config", config("root-empty", root="")], {}, "root"),
        "yaml root blank": (["--config", config("root-blank", root="  ")], {}, "root"),
        "WA_SESSIONS_CONFIG root empty": ([], {"WA_SESSIONS_CONFIG": config("env-root", root="")}, "root"),
        "WA_SESSIONS_STATE_DIR empty": (given_root, {"WA_SESSIONS_STATE_DIR": ""}, "state_dir"),
        "WA_SESSIONS_STATE_DIR blank": (given_root, {"WA_SESSIONS_STATE_DIR": "  "}, "state_dir"),
        "yaml state_dir empty": (
            ["--config", config("state-empty", root=str(root), state_dir="")],
            {},
            "state_dir",
        ),
        "yaml state_dir blank": (
            ["--config", config("state-blank", root=str(root), state_dir=" \t")],
            {},
            "state_dir",
        ),
        "state_dir inside a tenant": (
            ["--config", config("state-in-tenant", root=str(root), state_dir=str(root / "company_1" / "st"))],
            {},
            "state_dir",
        ),
        "state_dir inside a tenant, through a symlink": (
            ["--config", config("state-via-link", root=str(root), state_dir=str(base / "link" / "st"))],
            {},
            "state_dir",
        ),
    }


CASES = [
    "--root blank",
    "WA_SESSIONS_ROOT empty",
    "WA_SESSIONS_ROOT blank",
    "BAILEYS_SESSIONS_PATH empty",
    "yaml root empty",
    "yaml root blank",
    "WA_SESSIONS_CONFIG root empty",
    "WA_SESSIONS_STATE_DIR empty",
    "WA_SESSIONS_STATE_DIR blank",
    "yaml state_dir empty",
    "yaml state_dir blank",
    "state_dir inside a tenant",
    "state_dir inside a tenant, through a symlink",
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dry_run", [False, True], ids=["real", "dry-run"])
def test_an_empty_or_misplaced_value_is_exit_2_naming_the_key_and_nothing_changes(
    tmp_path: Path, case: str, dry_run: bool
) -> None:
    root = _tree(tmp_path)
    (tmp_path / "link").symlink_to(root / "company_1")
    arguments, env, key = _cases(tmp_path, root)[case]
    before = _everything(tmp_path)

    result = run_cli("cleanup", *arguments, *(["--dry-run"] if dry_run else []), env=env, cwd=root)

    _assert_refused(result, key, before, _everything(tmp_path))


def test_an_empty_root_option_is_exit_2_naming_root(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    before = _everything(tmp_path)

    result = run_cli("cleanup", "--root", "", env={}, cwd=root)

    _assert_refused(result, "root", before, _everything(tmp_path))


def test_the_same_tree_is_cleaned_when_the_values_are_right(tmp_path: Path) -> None:
    """The control: the runs above had something to delete, from the very working directory."""
    root = _tree(tmp_path)
    state = tmp_path / "state"
    config = _config(tmp_path / "good.yaml", root=str(root), state_dir=str(state))

    result = run_cli("cleanup", "--config", config, "--json", env={}, cwd=root)

    assert result.returncode == 0, result.stderr
    deleted = {item["file"] for tenant in json.loads(result.stdout)["tenants"] for item in tenant["deleted"]}
    assert deleted == set(OLD_SESSIONS)
    assert not any((root / "company_1" / name).exists() for name in OLD_SESSIONS)
    assert (state / "history.jsonl").exists()


def test_a_state_dir_that_is_root_or_beside_the_tenants_is_still_accepted(tmp_path: Path) -> None:
    """Only inside a tenant folder is refused: root itself, a folder under root that is no tenant,
    and the default `<root>/.wa-sessions` stay valid."""
    root = _tree(tmp_path)
    (root / "state").mkdir()
    for state_dir in (root, root / "state", root / ".wa-sessions"):
        config = _config(tmp_path / "ok.yaml", root=str(root), state_dir=str(state_dir))
        result = run_cli("config", "validate", "--config", config, env={}, cwd=tmp_path)
        assert result.returncode == 0, f"{state_dir}: {result.stderr}"
