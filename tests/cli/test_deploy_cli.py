"""Deploying from a pip install: `config generate` (the configuration, the crontab, the systemd
units with the real executable), `config validate` on the paths a run needs, stderr lines timed
for cron mail, and multitenant-cleanup quiet when another run has the run lock."""

from __future__ import annotations

import json
import os
import pty
import re
import shlex
import sys
from pathlib import Path

import pytest
import yaml
from filelock import FileLock
from typer.testing import CliRunner

from wa_sessions import cli, deploy, output
from wa_sessions.config import load_settings

REPOSITORY = Path(__file__).resolve().parents[2]
runner = CliRunner()
TIMED = re.compile(r"wa-sessions: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (.*)")


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli.app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A wa-sessions executable in a venv-like folder (with a space), run as that path."""
    folder = tmp_path / "my venv" / "bin"
    folder.mkdir(parents=True)
    executable = folder / "wa-sessions"
    executable.write_text("#!/bin/sh\n")
    executable.chmod(0o755)
    monkeypatch.setattr(sys, "argv", [str(executable), "config", "generate"])
    return str(executable)


# ---------------------------------------------------------------- config generate


def test_config_generate_prints_config_example_yaml(tmp_path: Path) -> None:
    code, stdout, stderr = invoke("config", "generate")
    assert (code, stderr) == (0, "")
    assert stdout == (REPOSITORY / "config.example.yaml").read_text()


def test_generated_config_parses_and_holds_every_default(tmp_path: Path) -> None:
    generated = tmp_path / "config.yaml"
    generated.write_text(invoke("config", "generate")[1])
    assert isinstance(yaml.safe_load(generated.read_text()), dict)
    defaults = load_settings(None, {"root": "/opt/ai-admin/baileys_sessions"})
    assert load_settings(generated) == defaults
    # with its root pointed at a real folder, the generated file validates
    sessions = tmp_path / "sessions"
    sessions.mkdir()
    generated.write_text(generated.read_text().replace("/opt/ai-admin/baileys_sessions", str(sessions)))
    assert invoke("config", "validate", "--config", str(generated))[0] == 0


def test_config_generate_crontab_runs_the_real_executable(installed: str) -> None:
    code, stdout, stderr = invoke("config", "generate", "--crontab")
    assert (code, stderr) == (0, "")
    assert deploy.EXAMPLE_EXECUTABLE not in stdout
    jobs = [
        line for line in stdout.splitlines() if line and not line.startswith("#") and "=" not in line[:20]
    ]
    assert len(jobs) == 3
    for job in jobs:
        command = shlex.split(job.split(maxsplit=5)[5])
        assert command[0] == installed and command[-1] == "--quiet"
    assert stdout == (REPOSITORY / "crontab.example").read_text().replace(
        deploy.EXAMPLE_EXECUTABLE, shlex.quote(installed)
    )


def test_config_generate_systemd_writes_the_units_with_the_real_executable(
    installed: str, tmp_path: Path
) -> None:
    units = tmp_path / "units"
    units.mkdir()
    code, stdout, stderr = invoke("config", "generate", "--systemd", str(units))
    assert (code, stderr) == (0, "")
    shipped = sorted(path.name for path in (REPOSITORY / "contrib" / "systemd").iterdir())
    assert sorted(path.name for path in units.iterdir()) == shipped and len(shipped) == 6
    assert stdout == "".join(f"wrote {units / name}\n" for name in shipped)
    for service in units.glob("*.service"):
        (exec_start,) = [line for line in service.read_text().splitlines() if line.startswith("ExecStart=")]
        assert shlex.split(exec_start.removeprefix("ExecStart="))[0] == installed
        assert (units / service.name).stat().st_mode & 0o777 == 0o644


def test_config_generate_systemd_never_overwrites_a_unit(installed: str, tmp_path: Path) -> None:
    (tmp_path / "wa-sessions-report.timer").write_text("mine\n")
    code, stdout, stderr = invoke("config", "generate", "--systemd", str(tmp_path))
    assert (code, stdout) == (2, "") and "wa-sessions-report.timer exists" in stderr
    assert len(stderr.splitlines()) == 1
    assert sorted(path.name for path in tmp_path.iterdir()) == ["my venv", "wa-sessions-report.timer"]
    assert (tmp_path / "wa-sessions-report.timer").read_text() == "mine\n"


def test_config_generate_crontab_and_systemd_together_is_a_usage_error(tmp_path: Path) -> None:
    code, stdout, stderr = invoke("config", "generate", "--crontab", "--systemd", str(tmp_path))
    assert (code, stdout) == (2, "") and len(stderr.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_executable_path_falls_back_to_path_then_to_python_m(tmp_path: Path) -> None:
    assert deploy.executable_path("/usr/lib/python3/pytest", search_path=str(tmp_path)) == shlex.join(
        [os.path.abspath(sys.executable), "-m", "wa_sessions"]
    )
    on_path = tmp_path / "wa-sessions"
    on_path.write_text("#!/bin/sh\n")
    on_path.chmod(0o755)
    assert deploy.executable_path("pytest", search_path=str(tmp_path)) == str(on_path)
    assert deploy.executable_path("wa-sessions", search_path=str(tmp_path)) == str(on_path)


# ---------------------------------------------------------------- config validate


def _validate(root: Path, **keys: str) -> tuple[int, str, str]:
    config = root.parent / "config.yaml"
    config.write_text(json.dumps({"root": str(root), **keys}))
    return invoke("config", "validate", "--config", str(config))


def test_config_validate_refuses_a_missing_root(tmp_path: Path) -> None:
    code, stdout, stderr = _validate(tmp_path / "nowhere")
    assert (code, stdout) == (2, "")
    (line,) = stderr.splitlines()
    assert f"root: {tmp_path / 'nowhere'} does not exist" in line
    assert not (tmp_path / "nowhere").exists()


def test_config_validate_refuses_a_root_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    code, _, stderr = _validate(tmp_path / "file")
    assert code == 2 and f"root: {tmp_path / 'file'} is not a directory" in stderr


def test_config_validate_refuses_a_state_dir_that_cannot_be_created(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "plain-file").write_text("")
    code, stdout, stderr = _validate(root, state_dir=str(tmp_path / "plain-file" / "state"))
    assert (code, stdout) == (2, "")
    (line,) = stderr.splitlines()
    assert "state_dir: cannot be created:" in line and "plain-file is not a directory" in line


def test_config_validate_names_the_default_state_dir(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / ".wa-sessions").write_text("not a folder")
    code, _, stderr = _validate(root)
    assert code == 2 and f"state_dir (default {root / '.wa-sessions'}): " in stderr


def test_config_validate_accepts_a_creatable_state_dir_without_creating_it(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    code, stdout, stderr = _validate(root, state_dir=str(tmp_path / "state" / "deeper"))
    assert (code, stderr) == (0, "") and stdout.startswith("configuration is valid")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["config.yaml", "root"]
    assert list(root.iterdir()) == []


# ---------------------------------------------------------------- stderr for cron and journal


def test_error_lines_off_a_terminal_carry_the_utc_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.run(["scan", "--root", str(tmp_path / "missing")]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    match = TIMED.fullmatch(line)
    assert match and str(tmp_path / "missing") in match.group(1), line


def test_usage_errors_off_a_terminal_carry_the_utc_time(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(["scan", "--no-such-option"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert TIMED.fullmatch(line), line


def test_error_lines_on_a_terminal_are_not_timed(monkeypatch: pytest.MonkeyPatch) -> None:
    leader, follower = pty.openpty()
    with os.fdopen(follower, "w", closefd=True) as terminal:
        monkeypatch.setattr(sys, "stderr", terminal)
        output.error_line("disk full")
        terminal.flush()
    assert os.read(leader, 1024) == b"wa-sessions: disk full\r\n"
    os.close(leader)


def test_error_lines_into_the_journal_are_not_timed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """systemd sets JOURNAL_STREAM=<device>:<inode> of the stream it connected to stderr."""
    with open(tmp_path / "journal", "w+") as journal:
        info = os.fstat(journal.fileno())
        monkeypatch.setattr(sys, "stderr", journal)
        monkeypatch.setenv("JOURNAL_STREAM", f"{info.st_dev}:{info.st_ino}")
        output.error_line("disk full")
        monkeypatch.setenv("JOURNAL_STREAM", f"{info.st_dev}:{info.st_ino + 1}")  # another stream
        output.error_line("disk full")
        journal.seek(0)
        first, second = journal.read().splitlines()
    assert first == "wa-sessions: disk full"
    assert TIMED.fullmatch(second)


# ---------------------------------------------------------------- another run had it


def test_multitenant_cleanup_quiet_is_silent_when_another_run_holds_the_run_lock(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "company_1").mkdir(parents=True)
    state_dir = root / ".wa-sessions"
    state_dir.mkdir(mode=0o700)
    with FileLock(str(state_dir / "run.lock")):
        assert invoke("multitenant-cleanup", "--root", str(root), "--quiet") == (3, "", "")
        code, stdout, stderr = invoke("multitenant-cleanup", "--root", str(root))
    assert (code, stdout) == (3, "")
    (line,) = stderr.splitlines()
    assert "another multitenant-cleanup is running" in line
