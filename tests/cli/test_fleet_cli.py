"""The fleet commands through Typer's runner: options and help, `config show` sources,
`config validate` exit codes, usage errors of emergency-cleanup and report, JSON shapes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.env import clean_env
from typer.testing import CliRunner

from wa_sessions import cli, layout

runner = CliRunner()
COMMON = ("--root", "--config", "--json", "--quiet", "--verbose")
CLEANUP_FIELDS = {
    "company",
    "path",
    "files_before",
    "status_before",
    "categories",
    "problems",
    "action",
    "skipped_reason",
    "dry_run",
    "deleted",
    "files_after",
    "errors",
}


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli.app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "root"
    tenant = folder / "company_1"
    tenant.mkdir(parents=True)
    (tenant / "creds.json").write_text(json.dumps({"nextPreKeyId": 5}))
    old = time.time() - 30 * 86400
    for index in range(3):
        path = tenant / f"session-1555000000{index}.0.json"
        path.write_text("{}")
        os.utime(path, (old, old))
    return folder


@pytest.mark.parametrize(
    ("command", "options"),
    [
        (
            ["emergency-cleanup"],
            ["--company", "--dry-run", "--purge-stale-dirs", "--older-than", "--yes", "--no-backup"],
        ),
        (["multitenant-cleanup"], ["--dry-run", "--force"]),
        (["report"], ["--format", "--output"]),
        (["config", "show"], []),
        (["config", "validate"], []),
    ],
)
def test_every_fleet_command_has_help_and_the_common_options(command: list[str], options: list[str]) -> None:
    code, stdout, _ = invoke(*command, "--help")
    assert code == 0
    # --verbose is accepted everywhere (SPEC §4) but offered only where it changes something.
    offered = [option for option in COMMON if option != "--verbose" or command[0] != "config"]
    for option in (*offered, *options):
        assert option in stdout, (command, option)


def test_top_level_help_lists_the_commands_and_completion() -> None:
    code, stdout, _ = invoke("--help")
    assert code == 0
    for name in (
        "emergency-cleanup",
        "multitenant-cleanup",
        "report",
        "config",
        "--install-completion",
        "--version",
    ):
        assert name in stdout


def test_config_show_names_the_source_of_every_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("root: /from/yaml\nthresholds: {warning: 100}\nrules:\n  session: {max_age: 7d}\n")
    monkeypatch.setenv("WA_SESSIONS_RULES__SENDER_KEY__MAX_AGE", "2d")
    monkeypatch.setenv("WA_SESSIONS_AUTO", '{"cooldown": "1h"}')
    monkeypatch.setenv("NOTIFICATION_WEBHOOK", "https://user:pw@hooks.example.com/services/SECRET?token=x")

    code, stdout, _ = invoke("config", "show", "--config", str(config), "--root", "/from/cli", "--json")

    assert code == 0
    document = json.loads(stdout)
    assert document["schema"] == 1 and document["command"] == "config show"
    assert document["config_file"] == str(config)
    settings = {item["key"]: (item["value"], item["source"]) for item in document["settings"]}
    assert settings["root"] == ("/from/cli", "cli")
    assert settings["thresholds.warning"] == (100, "yaml")
    assert settings["thresholds.critical"] == (170, "default")
    assert settings["rules.session.max_age"] == ("7d", "yaml")
    assert settings["rules.sender-key.max_age"] == ("2d", "env WA_SESSIONS_RULES__SENDER_KEY__MAX_AGE")
    assert settings["rules.pre-key.keep_newest"] == (50, "default")
    assert settings["auto.cooldown"] == ("1h", "env WA_SESSIONS_AUTO")
    assert settings["notify.webhook_url"] == ("https://hooks.example.com/…", "env NOTIFICATION_WEBHOOK")
    assert settings["notify.timeout"] == ("5s", "default")
    assert "SECRET" not in stdout and "user:pw" not in stdout and "token" not in stdout


def test_config_show_as_text_has_one_line_per_key(tmp_path: Path) -> None:
    code, stdout, _ = invoke("config", "show", "--root", str(tmp_path))
    assert code == 0
    lines = stdout.splitlines()
    assert lines[0] == "config file: (none)"
    root_line = next(line for line in lines if line.startswith("root "))
    assert root_line.split() == ["root", str(tmp_path), "cli"]
    assert any(line.split()[0] == "auto.cooldown" and line.split()[-1] == "default" for line in lines[1:])


def test_config_validate_exits_0_for_a_valid_config_and_2_naming_every_bad_key(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(f"root: {tmp_path}\nauto: {{cooldown: 2h}}\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "rules: {creds: {max_age: 1d}}\nthresholds: {warning: 500}\nlocks: {wait: soon}\nextra: 1\n"
    )

    code, stdout, _ = invoke("config", "validate", "--config", str(good))
    assert (code, stdout) == (0, f"configuration is valid ({good})\n")
    assert invoke("config", "validate", "--config", str(good), "--quiet")[:2] == (0, "")
    assert json.loads(invoke("config", "validate", "--config", str(good), "--json")[1])["valid"] is True

    code, stdout, stderr = invoke("config", "validate", "--config", str(bad))
    assert (code, stdout) == (2, "")
    assert len(stderr.splitlines()) == 1
    for key in ("rules", "thresholds", "locks.wait", "extra"):
        assert key in stderr
    assert invoke("config", "validate", "--config", str(tmp_path / "missing.yaml"))[0] == 2


def test_config_validate_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WA_SESSIONS_AUTO__COOLDOWN", "forever")
    code, _, stderr = invoke("config", "validate")
    assert code == 2 and "auto.cooldown" in stderr


def test_report_json_conflicts_with_another_format(root: Path) -> None:
    code, stdout, stderr = invoke("report", "--root", str(root), "--json", "--format", "markdown")
    assert (code, stdout) == (2, "")
    assert "--json" in stderr


def test_report_rejects_an_unknown_format(root: Path) -> None:
    assert cli.run(["report", "--root", str(root), "--format", "xml"]) == 2


def test_report_output_with_verbose_says_where_it_went(root: Path, tmp_path: Path) -> None:
    target = tmp_path / "report.md"
    code, stdout, _ = invoke(
        "report", "--root", str(root), "--format", "markdown", "--output", str(target), "-v"
    )
    assert code == 0 and stdout == f"wrote {target}\n"
    assert target.read_text().startswith("# wa-sessions report")


def test_report_output_into_a_missing_folder_is_exit_1(root: Path, tmp_path: Path) -> None:
    code, _, stderr = invoke(
        "report", "--root", str(root), "--output", str(tmp_path / "no" / "such" / "file")
    )
    assert code == 1 and stderr.startswith("wa-sessions: ") and " cannot write " in stderr


def test_multitenant_json_tenant_objects_have_every_spec_field(root: Path) -> None:
    code, stdout, _ = invoke("multitenant-cleanup", "--root", str(root), "--json", "--dry-run", "--force")
    assert code == 0
    document = json.loads(stdout)
    assert {"schema", "command", "root", "generated_at", "tenants", "warnings", "notified"} <= set(document)
    (tenant,) = document["tenants"]
    assert set(tenant) >= CLEANUP_FIELDS
    assert set(tenant["categories"]) == set(layout.CATEGORIES)
    assert tenant["action"] == "none" and tenant["skipped_reason"] is None


def test_emergency_cleanup_of_a_named_tenant_reports_emergency_deletions(root: Path) -> None:
    code, stdout, _ = invoke(
        "emergency-cleanup", "--root", str(root), "--company", "1", "--json", "--dry-run"
    )
    assert code == 0
    (tenant,) = json.loads(stdout)["tenants"]
    assert tenant["action"] == "emergency" and len(tenant["deleted"]) == 3
    assert set(tenant) >= CLEANUP_FIELDS


@pytest.mark.parametrize("company", ["../etc", "a/b", ""])
def test_emergency_cleanup_rejects_a_malformed_company(root: Path, company: str) -> None:
    code, _, stderr = invoke("emergency-cleanup", "--root", str(root), "--company", company)
    assert code == 2 and "invalid --company" in stderr


def test_purge_without_yes_is_exit_2_and_names_the_way_out(root: Path) -> None:
    code, stdout, stderr = invoke(
        "emergency-cleanup", "--root", str(root), "--purge-stale-dirs", "--older-than", "1d"
    )
    assert (code, stdout) == (2, "")
    assert "--yes" in stderr and "--dry-run" in stderr
    assert (root / "company_1" / "creds.json").exists()


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(["--version"]) == 0
    assert capsys.readouterr().out.strip().startswith("wa-sessions ")


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("wa-sessions mul", "multitenant-cleanup"),
        ("wa-sessions report --format p", "prometheus"),
        ("wa-sessions config v", "validate"),
    ],
)
def test_shell_completion_completes_commands_and_values(words: str, expected: str) -> None:
    env = clean_env(
        {
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split()) - 1),
            "_WA_SESSIONS_COMPLETE": "complete_bash",
        }
    )
    done = subprocess.run(
        [sys.executable, "-m", "wa_sessions"], env=env, capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().split() == [expected]
