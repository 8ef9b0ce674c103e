"""crontab.example and contrib/systemd: every command line they contain runs, with the paths
replaced by test folders, and does what its comment says; the schedules are the documented ones,
and the daily cleanup never starts in a minute when multitenant-cleanup may."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from filelock import FileLock
from prometheus_client.parser import text_string_to_metric_families

from wa_sessions import deploy

from .fleet_helpers import LEVEL_FILES, make_fleet, on_disk, write_fleet_config
from .helpers import clean_env

REPOSITORY = Path(__file__).resolve().parents[2]
CRONTAB = REPOSITORY / "crontab.example"
SYSTEMD = REPOSITORY / "contrib" / "systemd"

CRON_SCHEDULES = {
    "multitenant-cleanup": "7,37 * * * *",
    "cleanup": "15 3 * * *",
    "report": "* * * * *",
}
TIMER_CALENDARS = {
    "multitenant-cleanup": "*:07,37",
    "cleanup": "*-*-* 03:15:00",
    "report": "minutely",
}
DAY = 86400


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
        assert command.startswith(deploy.EXAMPLE_EXECUTABLE + " "), "the path config generate replaces"
        # stdout quiet on success, stderr left to cron: cron mails a failure
        assert "--quiet" in command and ">" not in command and "|" not in command


def test_every_crontab_command_runs(sandbox: Sandbox) -> None:
    env, jobs = _crontab()
    env = {name: sandbox.substitute(value) for name, value in env.items()}
    for _, command in jobs:
        shell_command = sandbox.substitute(command)
        done = sandbox.run([env.get("SHELL", "/bin/sh"), "-c", shell_command], env)
        assert done.returncode == 0, f"{shell_command}: {done.stderr!r}"
        assert done.stdout == b"" and done.stderr == b"", "--quiet: cron mails nothing on success"
        sandbox.check_effects(_subcommand(command))
    assert list(sandbox.logs.iterdir()) == [], "the crontab writes no log files"


def test_a_failing_crontab_job_prints_timestamped_lines_for_cron_to_mail(sandbox: Sandbox) -> None:
    env, jobs = _crontab()
    env = {name: sandbox.substitute(value) for name, value in env.items()}
    sandbox.config.write_text(json.dumps({"root": str(sandbox.root / "moved-away")}))
    for _, command in jobs:
        done = sandbox.run([env.get("SHELL", "/bin/sh"), "-c", sandbox.substitute(command)], env)
        lines = done.stderr.decode().splitlines()
        assert done.returncode != 0 and done.stdout == b"" and len(lines) == 1, (command, lines)
        assert re.fullmatch(r"wa-sessions: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ .*moved-away.*", lines[0]), lines


def _expand(field: str, low: int, high: int) -> set[int]:
    """A cron or OnCalendar time field (`*`, `*/N`, `A/N`, `A-B`, lists of them) as its values."""
    values: set[int] = set()
    for part in field.split(","):
        start_text, _, step_text = part.partition("/")
        if start_text == "*":
            start, end = low, high
        elif "-" in start_text:
            start, end = (int(text) for text in start_text.split("-"))
        else:
            start = int(start_text)
            end = high if step_text else start
        values.update(range(start, end + 1, int(step_text or 1)))
    return values


def _cron_windows(schedule: str) -> list[tuple[int, int]]:
    """When a daily-repeating cron schedule starts its job: [start, end) seconds of the day."""
    minute, hour, *days = schedule.split()
    assert days == ["*", "*", "*"], "only daily-repeating schedules are compared"
    return [
        (h * 3600 + m * 60, h * 3600 + m * 60 + 60)
        for h in _expand(hour, 0, 23)
        for m in _expand(minute, 0, 59)
    ]


def _timer_windows(timer: Path) -> list[tuple[int, int]]:
    """When a timer may start its service: from each elapse of OnCalendar to RandomizedDelaySec
    plus AccuracySec (default 1 min) later, in seconds of the day."""
    unit = _unit(timer)
    (calendar,) = unit["Timer.OnCalendar"]
    calendar = {"minutely": "*-*-* *:*:00", "hourly": "*-*-* *:00:00", "daily": "*-*-* 00:00:00"}.get(
        calendar, calendar
    )
    date, _, time_of_day = calendar.rpartition(" ")
    assert date in ("", "*-*-*"), "only daily-repeating calendars are compared"
    hour, minute, *second = time_of_day.split(":")
    late = sum(_time_span_seconds(value) for value in unit.get("Timer.RandomizedDelaySec", []))
    late += _time_span_seconds(unit.get("Timer.AccuracySec", ["60"])[0])
    return [
        (h * 3600 + m * 60 + s, h * 3600 + m * 60 + s + late + 1)
        for h in _expand(hour, 0, 23)
        for m in _expand(minute, 0, 59)
        for s in _expand(second[0] if second else "0", 0, 59)
    ]


def _time_span_seconds(text: str) -> int:
    """A systemd time span of the examples (`60`, `5s`, `2min`) in seconds."""
    match = re.fullmatch(r"(\d+)\s*(s|sec|min|m)?", text.strip())
    assert match, text
    return int(match.group(1)) * (60 if match.group(2) in ("min", "m") else 1)


def _overlap(first: list[tuple[int, int]], second: list[tuple[int, int]]) -> list[int]:
    """Seconds of the day (modulo a day) in both sets of windows."""

    def covered(windows: list[tuple[int, int]]) -> set[int]:
        return {moment % DAY for start, end in windows for moment in range(start, end)}

    return sorted(covered(first) & covered(second))


def test_crontab_cleanup_never_starts_in_a_minute_of_multitenant_cleanup() -> None:
    _, jobs = _crontab()
    schedules = {_subcommand(command): schedule for schedule, command in jobs}
    assert (
        _overlap(_cron_windows(schedules["multitenant-cleanup"]), _cron_windows(schedules["cleanup"])) == []
    )
    # the check can fail: the schedules shipped before did collide
    assert _overlap(_cron_windows("*/30 * * * *"), _cron_windows("0 3 * * *")) != []


def test_systemd_cleanup_never_starts_while_multitenant_cleanup_may() -> None:
    multitenant = _timer_windows(SYSTEMD / "wa-sessions-multitenant.timer")
    cleanup = _timer_windows(SYSTEMD / "wa-sessions-cleanup.timer")
    assert len(multitenant) == 48 and len(cleanup) == 1
    assert _overlap(multitenant, cleanup) == []


def test_only_multitenant_cleanup_counts_a_busy_lock_as_success() -> None:
    """Exit 3 of multitenant-cleanup is another run holding the run lock; cleanup without
    --company skips busy tenants with exit 0 (SPEC §5), so a 3 there is no run having it."""
    with_three = {
        _subcommand(_unit(service)["Service.ExecStart"][0])
        for service in _services()
        if "3" in " ".join(_unit(service).get("Service.SuccessExitStatus", [])).split()
    }
    assert with_three == {"multitenant-cleanup"}


def test_packaged_examples_are_the_repository_ones() -> None:
    assert deploy.crontab(deploy.EXAMPLE_EXECUTABLE) == CRONTAB.read_text()
    units = deploy.systemd_units(deploy.EXAMPLE_EXECUTABLE)
    assert units == {path.name: path.read_text() for path in sorted(SYSTEMD.iterdir())}
    assert deploy.config_example() == (REPOSITORY / "config.example.yaml").read_text()


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


def test_multitenant_unit_succeeds_quietly_when_another_run_holds_the_run_lock(sandbox: Sandbox) -> None:
    unit = _unit(SYSTEMD / "wa-sessions-multitenant.service")
    env = dict(value.split("=", 1) for value in unit.get("Service.Environment", []))
    env = {name: sandbox.substitute(value) for name, value in env.items()}
    argv = shlex.split(sandbox.substitute(unit["Service.ExecStart"][0]))
    state_dir = sandbox.root / ".wa-sessions"
    state_dir.mkdir(mode=0o700)

    with FileLock(str(state_dir / "run.lock")):
        done = sandbox.run(argv, env)

    success = {0, *(int(code) for value in unit["Service.SuccessExitStatus"] for code in value.split())}
    assert done.returncode == 3 and done.returncode in success
    assert done.stdout == b"" and done.stderr == b"", "--quiet: another run had it, nothing to report"


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
