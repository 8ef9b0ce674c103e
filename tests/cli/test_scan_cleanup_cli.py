"""scan and cleanup through Typer's runner: JSON fields and types of SPEC §6, exit codes of §7."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from wa_sessions import cli, layout
from wa_sessions.config import load_settings

DAY = 86400
runner = CliRunner()


def put(folder: Path, name: str, age_days: float = 0.0, content: str = "{}") -> Path:
    path = folder / name
    path.write_text(content)
    moment = time.time() - age_days * DAY
    os.utime(path, (moment, moment))
    return path


def make_tenant(root: Path, company: str, *, old_sessions: int = 2, fresh_sessions: int = 1) -> Path:
    folder = root / f"company_{company}"
    folder.mkdir(parents=True)
    put(folder, "creds.json", 0, json.dumps({"nextPreKeyId": 61, "firstUnuploadedPreKeyId": 61}))
    put(folder, "app-state-sync-key-AAAAAB3x.json", 400)
    put(folder, "lid-mapping-15550000000.json", 400)
    for key_id in range(1, 61):
        put(folder, f"pre-key-{key_id}.json", 30)
    for index in range(old_sessions):
        put(folder, f"session-1555000{index:04d}.0.json", 20)
    for index in range(fresh_sessions):
        put(folder, f"session-1666000{index:04d}.0.json", 1)
    return folder


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli.app, list(args))
    return result.exit_code, result.stdout, result.stderr


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(path.relative_to(root)): (path.stat().st_mtime_ns, path.stat().st_size)
        for path in sorted(root.rglob("*"))
    }


@pytest.fixture
def root(tmp_path: Path) -> Path:
    sessions = tmp_path / "sessions"
    make_tenant(sessions, "962303")
    make_tenant(sessions, "962302", old_sessions=0)
    return sessions


def test_scan_json_has_every_spec_field_with_its_type(root: Path) -> None:
    code, stdout, _ = invoke("scan", "--root", str(root), "--json")
    assert code == 0
    document = json.loads(stdout)
    assert document["schema"] == 1
    assert document["command"] == "scan"
    assert document["root"] == str(root)
    assert document["generated_at"].endswith("Z")
    assert [tenant["company"] for tenant in document["tenants"]] == ["962302", "962303"]
    tenant = document["tenants"][1]
    assert tenant["path"] == str(root / "company_962303")
    assert isinstance(tenant["files"], int) and tenant["files"] == 66
    assert isinstance(tenant["bytes"], int) and tenant["bytes"] > 0
    assert tenant["status"] == "healthy"
    assert set(tenant["categories"]) == set(layout.CATEGORIES)
    assert tenant["categories"]["pre-key"] == 60
    assert tenant["categories"]["session"] == 3
    assert tenant["categories"]["sender-key"] == 0
    assert tenant["problems"] == []
    assert document["disk"]["inodes_free"] > 0


def test_scan_fail_on_exits_one_when_a_tenant_reaches_the_level(root: Path) -> None:
    config = root.parent / "low.yaml"
    config.write_text(
        yaml.safe_dump(
            {"thresholds": {"warning": 10, "critical": 20, "trigger": 30, "emergency": 65, "danger": 100}}
        )
    )
    code, stdout, _stderr = invoke(
        "scan", "--root", str(root), "--config", str(config), "--fail-on", "emergency", "--json"
    )
    assert code == 1
    document = json.loads(stdout)
    assert document["tripped"] == ["962303"]
    code, _, _ = invoke("scan", "--root", str(root), "--config", str(config), "--fail-on", "danger")
    assert code == 0


def test_scan_quiet_prints_nothing_on_success(root: Path) -> None:
    code, stdout, stderr = invoke("scan", "--root", str(root), "--quiet")
    assert (code, stdout, stderr) == (0, "", "")


def test_scan_reports_a_missing_creds_file_as_a_problem(root: Path) -> None:
    (root / "company_962302" / "creds.json").unlink()
    code, stdout, _ = invoke("scan", "--root", str(root), "--company", "962302", "--json")
    assert code == 0
    (tenant,) = json.loads(stdout)["tenants"]
    assert tenant["problems"] == ["creds.json is missing"]


def test_cleanup_dry_run_json_lists_what_a_real_run_deletes_and_touches_nothing(root: Path) -> None:
    before = snapshot(root)
    code, stdout, _ = invoke("cleanup", "--root", str(root), "--dry-run", "--json")
    assert code == 0
    assert snapshot(root) == before
    document = json.loads(stdout)
    assert document["command"] == "cleanup"
    tenant = document["tenants"][1]
    assert tenant["company"] == "962303"
    assert tenant["dry_run"] is True
    assert tenant["action"] == "cleanup"
    assert tenant["skipped_reason"] is None
    assert tenant["files_before"] == 66
    assert tenant["status_before"] == "healthy"
    deleted = {item["file"]: item for item in tenant["deleted"]}
    assert set(deleted) == {f"pre-key-{i}.json" for i in range(1, 11)} | {
        "session-15550000000.0.json",
        "session-15550000001.0.json",
    }
    assert deleted["pre-key-1.json"]["reason"] == "pre-key id 1 beyond the newest 50 (ids 11–60 kept)"
    assert deleted["session-15550000000.0.json"]["reason"].startswith("older than 14d: last used 20d")
    assert all(set(item) >= {"file", "category", "reason", "bytes"} for item in tenant["deleted"])
    assert tenant["files_after"] == 66 - 12
    assert tenant["errors"] == []

    code, stdout, _ = invoke("cleanup", "--root", str(root), "--json")
    assert code == 0
    real = json.loads(stdout)["tenants"][1]
    assert real["dry_run"] is False
    assert sorted(item["file"] for item in real["deleted"]) == sorted(deleted)
    assert real["files_after"] == 54
    assert not (root / "company_962303" / "pre-key-10.json").exists()
    assert (root / "company_962303" / "pre-key-11.json").exists()
    assert (root / "company_962303" / "session-16660000000.0.json").exists()
    history = [
        json.loads(line) for line in (root / ".wa-sessions" / "history.jsonl").read_text().splitlines()
    ]
    ours = [record for record in history if record["company"] == "962303"]
    assert sorted(record["file"] for record in ours) == sorted(deleted)
    record = ours[0]
    assert set(record) >= {"time", "company", "file", "category", "reason", "bytes", "mtime"}


def test_cleanup_dry_run_prints_every_file_with_its_reason(root: Path) -> None:
    code, stdout, _ = invoke("cleanup", "--root", str(root), "--dry-run", "--company", "962303")
    assert code == 0
    lines = [line for line in stdout.splitlines() if "would delete pre-key-" in line]
    assert len(lines) == 10
    assert all(line.startswith("[dry-run] 962303: would delete") for line in lines)


def test_cleanup_quiet_prints_nothing_on_success(root: Path) -> None:
    code, stdout, stderr = invoke("cleanup", "--root", str(root), "--quiet")
    assert (code, stdout, stderr) == (0, "", "")
    assert not (root / "company_962303" / "pre-key-1.json").exists()


def test_cleanup_verbose_lists_every_deleted_file(root: Path) -> None:
    code, stdout, _ = invoke("cleanup", "--root", str(root), "--verbose", "--company", "company_962303")
    assert code == 0
    assert len([line for line in stdout.splitlines() if line.startswith("962303: deleted ")]) == 12


@pytest.mark.parametrize("company", ["../x", "..", "/etc", "", "a/b", "x\x00y", ".hidden", "-rf"])
def test_malformed_company_is_a_usage_error_before_any_read(tmp_path: Path, company: str) -> None:
    missing_root = tmp_path / "does-not-exist"
    code, stdout, stderr = invoke("cleanup", "--root", str(missing_root), "--company", company)
    assert code == 2
    assert stdout == ""
    assert "--company" in stderr or "invalid" in stderr


def test_well_formed_company_without_folder_is_exit_two(root: Path) -> None:
    code, _, stderr = invoke("cleanup", "--root", str(root), "--company", "999999")
    assert code == 2
    assert "999999" in stderr


def test_missing_root_is_exit_two(tmp_path: Path) -> None:
    code, _, stderr = invoke("scan", "--root", str(tmp_path / "nope"))
    assert code == 2
    assert "nope" in stderr


def test_protected_rule_in_config_is_rejected_and_nothing_deleted(root: Path) -> None:
    config = root.parent / "bad.yaml"
    config.write_text(yaml.safe_dump({"rules": {"creds": {"max_age": "1d"}, "session": {"max_age": "1d"}}}))
    before = snapshot(root)
    code, _stdout, stderr = invoke("cleanup", "--root", str(root), "--config", str(config))
    assert code == 2
    assert "creds" in stderr and "protected" in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert snapshot(root) == before


def test_every_bad_key_is_named_in_one_message(root: Path) -> None:
    config = root.parent / "bad.yaml"
    config.write_text("thresholds: {warning: 200}\nlocks: {wait: soon}\nbogus: 1\n")
    code, _, stderr = invoke("scan", "--root", str(root), "--config", str(config))
    assert code == 2
    assert "thresholds" in stderr and "locks.wait" in stderr and "bogus" in stderr


def test_environment_overrides_the_yaml_file_and_the_option_overrides_both(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"root": "/from/yaml", "rules": {"session": {"max_age": "30d"}}}))
    monkeypatch.setenv("WA_SESSIONS_RULES__SESSION__MAX_AGE", "10d")
    monkeypatch.setenv("WA_SESSIONS_ROOT", "/from/env")
    settings = load_settings(config, {"root": root})
    assert settings.root == root
    assert settings.rules["session"].max_age == 10 * DAY
    code, stdout, _ = invoke("cleanup", "--config", str(config), "--root", str(root), "--dry-run", "--json")
    assert code == 0
    names = {item["file"] for tenant in json.loads(stdout)["tenants"] for item in tenant["deleted"]}
    assert "session-15550000000.0.json" in names


def test_config_example_documents_the_defaults() -> None:
    example = Path(__file__).resolve().parents[2] / "config.example.yaml"
    from_example = load_settings(example)
    defaults = load_settings(None, {"root": "/opt/ai-admin/baileys_sessions"})
    assert from_example == defaults


def test_every_command_has_help_text() -> None:
    code, stdout, _ = invoke("--help")
    assert code == 0
    for command in cli.app.registered_commands:
        assert command.callback is not None and command.callback.__doc__, command.name
    for name in ("scan", "cleanup"):
        assert name in stdout
        code, stdout_command, _ = invoke(name, "--help")
        assert code == 0
        for option in ("--root", "--config", "--json", "--quiet", "--company"):
            assert option in stdout_command
        # --verbose is accepted by both (SPEC §4), offered where it changes something.
        assert ("--verbose" in stdout_command) == (name == "cleanup")


def test_unknown_option_is_a_one_line_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(["scan", "--no-such-option"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("wa-sessions: ")
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_bad_fail_on_level_is_a_one_line_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(["scan", "--fail-on", "healthy"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_version_prints_the_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(["--version"]) == 0
    assert capsys.readouterr().out.startswith("wa-sessions 0.")


def test_plain_text_output_has_a_row_per_tenant(root: Path) -> None:
    code, stdout, _ = invoke("scan", "--root", str(root))
    assert code == 0
    rows = [line for line in stdout.splitlines() if line.startswith("9623")]
    assert [row.split()[0] for row in rows] == ["962302", "962303"]
    assert "inodes" in stdout


def test_demo_tree_dry_run_shows_real_deletions(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    code, _, _ = invoke("demo", "--root", str(demo))
    assert code == 0
    code, stdout, _ = invoke("cleanup", "--dry-run", "--root", str(demo), "--json")
    assert code == 0
    tenants = json.loads(stdout)["tenants"]
    assert len(tenants) == 3
    categories = {item["category"] for tenant in tenants for item in tenant["deleted"]}
    assert {"session", "sender-key", "pre-key", "sender-key-memory"} <= categories
