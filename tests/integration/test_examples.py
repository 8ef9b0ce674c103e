"""crontab.example and contrib/systemd: every command line they contain runs, with the paths
replaced by test folders, and does what its comment says; the schedules are the documented ones."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from .fleet_helpers import LEVEL_FILES, make_fleet, on_disk, write_fleet_config
from .helpers import clean_env

REPOSITORY = Path(__file__).resolve().parents[2]
CRONTAB = REPOSITORY / "crontab.example"
SYSTEMD = REPOSITORY / "contrib" / "systemd"

CRON_SCHEDULES = {
    "multitenant-cleanup": "*/30 * * * *",
    "cleanup": "0 3 * * *",
    "report": "* * * * *",
}
TIMER_CALENDARS = {
    "multitenant-cleanup": "*:0/30",
    "cleanup": "*-*-* 03:00:00",
    "report": "minutely",
}


class Sandbox:
    """Test folders standing in for the production paths of the examples."""

    def __init__(self, tmp_path: Path, root: Path, now: float):
        self.root = root
        self.fleet = make_fleet(root, now)
        self.config = write_fleet_config(tmp_path / "config.yaml", root)
        self.logs = tmp_path / "log"
        self.logs.mkdir()
        self.textfile = tmp_path / "textfile_collector"
        self.textfile.mkdir()
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        shim = self.bin / "wa-sessions"
        shim.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m wa_sessions "$@"\n')
        shim.chmod(0o755)
        self.replacements = {
            "/etc/wa-sessions/config.yaml": str(self.config),
            "/var/log/wa-sessions": str(self.logs),
            "/var/lib/node_exporter/textfile_collector": str(self.textfile),
            "/opt/ai-admin/baileys_sessions": str(root),
            "/usr/local/bin/wa-sessions": str(shim),
            "/usr/local/bin:": f"{self.bin}:",
        }

    def substitute(self, text: str) -> str:
        for production, test in self.replacements.items():
            text = text.replace(production, test)
        for production in ("/etc/", "/var/", "/opt/", "/usr/local/"):
            assert production not in text, f"a production path is left in {text!r}"
        return text

    def run(self, argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(argv, env=clean_env(env), capture_output=True, timeout=120, check=False)

    def check_effects(self, command: str) -> None:
        """What each command must have done to the sandbox."""
        trigger, healthy = self.fleet["trigger"], self.fleet["healthy"]
        if command == "multitenant-cleanup":  # due tenants only
            assert not trigger.old & on_disk(trigger.path), "the trigger tenant was not cleaned"
            assert len(on_disk(healthy.path)) == LEVEL_FILES["healthy"], "a healthy tenant was cleaned"
        elif command == "cleanup":  # every tenant
            assert not (trigger.old | healthy.old) & (on_disk(trigger.path) | on_disk(healthy.path))
        elif command == "report":
            families = {
                family.name
                for family in text_string_to_metric_families((self.textfile / "wa_sessions.prom").read_text())
            }
            assert "wa_sessions_tenant_files" in families


@pytest.fixture
def sandbox(tmp_path: Path, root: Path, now: float) -> Sandbox:
    return Sandbox(tmp_path, root, now)


def _crontab() -> tuple[dict[str, str], list[tuple[str, str]]]:
    """(environment assignments, [(schedule, command)]) of crontab.example."""
    env: dict[str, str] = {}
    jobs: list[tuple[str, str]] = []
    for line in CRONTAB.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        assignment = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)", line)
        if assignment:
            env[assignment.group(1)] = assignment.group(2)
            continue
        fields = line.split(maxsplit=5)
        assert len(fields) == 6, f"not a crontab job line: {line!r}"
        jobs.append((" ".join(fields[:5]), fields[5]))
    return env, jobs


def _subcommand(command: str) -> str:
    words = shlex.split(command)
    program = next(index for index, word in enumerate(words) if word.endswith("wa-sessions"))
    return words[program + 1]


def test_crontab_has_the_documented_jobs() -> None:
    env, jobs = _crontab()
    assert env["WA_SESSIONS_CONFIG"] == "/etc/wa-sessions/config.yaml"
    assert {_subcommand(command): schedule for schedule, command in jobs} == CRON_SCHEDULES
    for _, command in jobs:
        assert "%" not in command, "cron turns % into a newline"
        assert "--quiet" in command and ">>/var/log/wa-sessions/" in command and "2>&1" in command


def test_every_crontab_command_runs(sandbox: Sandbox) -> None:
    env, jobs = _crontab()
    env = {name: sandbox.substitute(value) for name, value in env.items()}
    for _, command in jobs:
        shell_command = sandbox.substitute(command)
        done = sandbox.run([env.get("SHELL", "/bin/sh"), "-c", shell_command], env)
        assert done.returncode == 0, f"{shell_command}: {done.stderr!r}"
        assert done.stdout == b"" and done.stderr == b"", "output goes to the log"
        sandbox.check_effects(_subcommand(command))
    for log in sandbox.logs.iterdir():
        assert log.read_bytes() == b"", f"--quiet: {log.name} should stay empty on success"
    assert sorted(log.name for log in sandbox.logs.iterdir()) == [
        "cleanup.log",
        "multitenant.log",
        "report.log",
    ]


def _unit(path: Path) -> dict[str, list[str]]:
    """A systemd unit as `Section.Key -> [values]` (keys may repeat)."""
    values: dict[str, list[str]] = {}
    section = ""
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        values.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return values


def _services() -> list[Path]:
    return sorted(SYSTEMD.glob("*.service"))


def test_systemd_units_pair_services_with_timers_on_the_cron_schedules() -> None:
    services = _services()
    timers = sorted(SYSTEMD.glob("*.timer"))
    assert [s.stem for s in services] == [t.stem for t in timers] and len(services) == 3
    for service, timer in zip(services, timers, strict=True):
        unit = _unit(service)
        assert unit["Service.Type"] == ["oneshot"]
        (exec_start,) = unit["Service.ExecStart"]
        assert exec_start.startswith("/usr/local/bin/wa-sessions ") and "--quiet" in exec_start
        command = _subcommand(exec_start)
        assert _unit(timer)["Timer.OnCalendar"] == [TIMER_CALENDARS[command]]
        assert _unit(timer)["Install.WantedBy"] == ["timers.target"]
    analyze = shutil.which("systemd-analyze")
    if analyze:
        for calendar in TIMER_CALENDARS.values():
            subprocess.run([analyze, "calendar", calendar], check=True, capture_output=True)


@pytest.mark.parametrize("service", _services(), ids=lambda path: path.name)
def test_every_systemd_exec_start_runs(sandbox: Sandbox, service: Path) -> None:
    unit = _unit(service)
    env = dict(value.split("=", 1) for value in unit.get("Service.Environment", []))
    env = {name: sandbox.substitute(value) for name, value in env.items()}
    (exec_start,) = unit["Service.ExecStart"]
    argv = shlex.split(sandbox.substitute(exec_start))

    done = sandbox.run(argv, env)

    success = {
        0,
        *(int(code) for value in unit.get("Service.SuccessExitStatus", []) for code in value.split()),
    }
    assert done.returncode in success, f"{argv}: {done.stderr!r}"
    assert done.returncode == 0 and done.stdout == b"" and done.stderr == b""
    sandbox.check_effects(_subcommand(exec_start))


def test_systemd_units_verify(tmp_path: Path, sandbox: Sandbox) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")

    def verify(*paths: Path) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [analyze, "verify", "--man=no", *map(str, paths)],
            capture_output=True,
            timeout=60,
            check=False,
            env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"},
        )

    known_good = tmp_path / "known-good.service"
    known_good.write_text("[Service]\nType=oneshot\nExecStart=/bin/true\n")
    if verify(known_good).returncode != 0:
        pytest.skip("systemd-analyze verify does not work here (no systemd?)")
    units = tmp_path / "units"
    units.mkdir()
    for path in SYSTEMD.iterdir():
        (units / path.name).write_text(sandbox.substitute(path.read_text()))
    done = verify(*sorted(units.iterdir()))
    assert done.returncode == 0, done.stderr.decode()
