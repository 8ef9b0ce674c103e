"""`--jobs N`: tenants worked on in parallel processes give exactly what one process gives,
ordered by company id (SPEC §6), for scan, cleanup --dry-run and a real cleanup."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from support.env import clean_env
from typer.testing import CliRunner

from wa_sessions import cli
from wa_sessions.demo import tenant_files
from wa_sessions.history import read_history

NOW = time.time()
HOUR = 3600
runner = CliRunner()


def make_fleet(root: Path, tenants: int = 40, files: int = 200) -> None:
    """A fleet of Baileys-faithful tenants (the benchmark's mix), company ids in shuffled
    creation order, plus a tenant whose creds.json is missing and one symlinked tenant."""
    rng = random.Random(7)
    companies = [f"{962000 + index * 7 % 97:06d}" for index in range(tenants)]
    rng.shuffle(companies)
    for company in companies:
        folder = root / f"company_{company}"
        folder.mkdir(parents=True)
        for demo_file in tenant_files(rng, NOW, files, pre_key_batches=2):
            path = folder / demo_file.name
            path.write_text(demo_file.content)
            # Ages in whole hours and a half: the reasons (`last used 15d 23h ago`) and the
            # verdicts cannot change while the test runs (processes cannot share a frozen clock).
            mtime = NOW - (round((NOW - demo_file.mtime) / HOUR) * HOUR + HOUR / 2)
            os.utime(path, (mtime, mtime))
    (root / f"company_{companies[0]}" / "creds.json").unlink()
    (root / "company_outside").symlink_to(root / f"company_{companies[1]}")


def invoke(*args: str) -> tuple[int, dict[str, Any]]:
    result = runner.invoke(cli.app, list(args))
    document = json.loads(result.stdout)
    document.pop("generated_at")
    document.pop("disk", None)  # free space moves with whatever else runs on the machine
    return result.exit_code, document


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    make_fleet(root)
    return root


@pytest.mark.parametrize("jobs", ["2", "3"])
def test_scan_with_jobs_gives_the_same_document_as_one_process(fleet: Path, jobs: str) -> None:
    code, serial = invoke("scan", "--root", str(fleet), "--json", "--jobs", "1")
    parallel_code, parallel = invoke("scan", "--root", str(fleet), "--json", "--jobs", jobs)
    assert (parallel_code, parallel) == (code, serial)
    companies = [tenant["company"] for tenant in serial["tenants"]]
    assert companies == sorted(companies) and len(companies) == 41


@pytest.mark.parametrize("jobs", ["2", "3"])
def test_dry_run_with_jobs_gives_the_same_document_as_one_process(fleet: Path, jobs: str) -> None:
    code, serial = invoke("cleanup", "--dry-run", "--root", str(fleet), "--json", "--jobs", "1")
    parallel_code, parallel = invoke("cleanup", "--dry-run", "--root", str(fleet), "--json", "--jobs", jobs)
    assert (parallel_code, parallel) == (code, serial)
    assert sum(len(tenant["deleted"]) for tenant in serial["tenants"]) > 1000


def _history(root: Path) -> list[dict[str, Any]]:
    records = list(read_history(root / ".wa-sessions"))
    for record in records:
        record.pop("time")
    return sorted(records, key=lambda record: (record["company"], record["file"]))


def _files(root: Path) -> list[str]:
    return sorted(
        str(path.relative_to(root)) for path in root.glob("company_*/*") if not path.name.startswith(".")
    )


def test_real_cleanup_with_jobs_deletes_and_records_what_one_process_does(tmp_path: Path) -> None:
    serial_root, parallel_root = tmp_path / "serial" / "root", tmp_path / "parallel" / "root"
    make_fleet(serial_root)
    make_fleet(parallel_root)
    code, serial = invoke("cleanup", "--root", str(serial_root), "--json", "--jobs", "1")
    parallel_code, parallel = invoke("cleanup", "--root", str(parallel_root), "--json", "--jobs", "2")
    for document, root in ((serial, serial_root), (parallel, parallel_root)):
        document["root"] = "ROOT"
        for tenant in document["tenants"]:
            tenant["path"] = tenant["path"].replace(str(root), "ROOT")
    assert (parallel_code, parallel) == (code, serial)
    assert _files(parallel_root) == _files(serial_root)
    assert _history(parallel_root) == _history(serial_root)
    assert len(_history(serial_root)) == sum(len(tenant["deleted"]) for tenant in serial["tenants"]) > 1000


def test_text_output_with_jobs_is_the_same_as_one_process(fleet: Path) -> None:
    serial = runner.invoke(cli.app, ["cleanup", "--dry-run", "--root", str(fleet), "--jobs", "1"])
    parallel = runner.invoke(cli.app, ["cleanup", "--dry-run", "--root", str(fleet), "--jobs", "2"])
    assert parallel.exit_code == serial.exit_code
    assert parallel.stdout == serial.stdout
    assert "[dry-run] " in serial.stdout and "would delete pre-key-" in serial.stdout


def test_negative_jobs_is_a_usage_error(fleet: Path) -> None:
    result = runner.invoke(cli.app, ["scan", "--root", str(fleet), "--jobs", "-1"])
    assert result.exit_code == 2


FLEET_LEVELS = {
    "WA_SESSIONS_THRESHOLDS__WARNING": "50",
    "WA_SESSIONS_THRESHOLDS__CRITICAL": "100",
    "WA_SESSIONS_THRESHOLDS__TRIGGER": "150",
    "WA_SESSIONS_THRESHOLDS__EMERGENCY": "190",
    "WA_SESSIONS_THRESHOLDS__DANGER": "200",  # the full tenants: emergency profile; the one without creds.json: regular rules
}


@pytest.mark.parametrize("jobs", ["2", "3"])
def test_multitenant_dry_run_with_jobs_gives_the_same_document_as_one_process(
    fleet: Path, jobs: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in FLEET_LEVELS.items():
        monkeypatch.setenv(name, value)
    code, serial = invoke("multitenant-cleanup", "--dry-run", "--root", str(fleet), "--json", "--jobs", "1")
    parallel_code, parallel = invoke(
        "multitenant-cleanup", "--dry-run", "--root", str(fleet), "--json", "--jobs", jobs
    )
    assert (parallel_code, parallel) == (code, serial)
    actions = [tenant["action"] for tenant in serial["tenants"]]
    assert actions.count("emergency") == 39 and actions.count("cleanup") == 1, actions
    assert sum(len(tenant["deleted"]) for tenant in serial["tenants"]) > 1000
    assert serial["notified"] is False and serial["warnings"] == []


def test_multitenant_real_run_with_jobs_deletes_records_and_remembers_what_one_process_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in FLEET_LEVELS.items():
        monkeypatch.setenv(name, value)
    serial_root, parallel_root = tmp_path / "serial" / "root", tmp_path / "parallel" / "root"
    make_fleet(serial_root)
    make_fleet(parallel_root)
    code, serial = invoke("multitenant-cleanup", "--root", str(serial_root), "--json", "--jobs", "1")
    parallel_code, parallel = invoke(
        "multitenant-cleanup", "--root", str(parallel_root), "--json", "--jobs", "2"
    )
    for document, root in ((serial, serial_root), (parallel, parallel_root)):
        document["root"] = "ROOT"
        for tenant in document["tenants"]:
            tenant["path"] = tenant["path"].replace(str(root), "ROOT")
    assert (parallel_code, parallel) == (code, serial)
    assert code == 0
    assert _files(parallel_root) == _files(serial_root)
    assert _history(parallel_root) == _history(serial_root)
    assert len(_history(serial_root)) == sum(len(tenant["deleted"]) for tenant in serial["tenants"]) > 1000
    for root in (serial_root, parallel_root):
        state = root / ".wa-sessions"
        cooled = json.loads((state / "cooldowns.json").read_text())["tenants"]
        assert len(cooled) == 40, "every tenant cleaned gets its cooldown"
        pending = state / "pending.json"
        assert json.loads(pending.read_text())["tenants"] == {}, "recorded before, cleared after"


def _dry_run_process(root: Path, jobs: str, out: Any, env: dict[str, str]) -> bytes | None:
    """`cleanup --dry-run --json` in a process of its own, its stdout `out` (a file, or a pipe)."""
    argv = ["cleanup", "--dry-run", "--json", "--root", str(root), "--jobs", jobs]
    return subprocess.run(
        [sys.executable, "-m", "wa_sessions", *argv], stdout=out, env=env, check=True
    ).stdout


def _parsed(text: bytes) -> dict[str, Any]:
    document = json.loads(text)
    document.pop("generated_at")
    return dict(document)


def test_worker_output_reaches_a_pipe_and_a_file_whole_and_in_order(fleet: Path, tmp_path: Path) -> None:
    """From real processes: the spool's sendfile to a file, its pread+write to a pipe."""
    env = clean_env({"TMPDIR": str(tmp_path / "tmp")})
    (tmp_path / "tmp").mkdir()
    with (tmp_path / "serial.json").open("wb") as out:
        _dry_run_process(fleet, "1", out, env)
    with (tmp_path / "file.json").open("wb") as out:
        _dry_run_process(fleet, "2", out, env)
    piped = _dry_run_process(fleet, "2", subprocess.PIPE, env)
    assert piped is not None
    serial = _parsed((tmp_path / "serial.json").read_bytes())
    assert _parsed((tmp_path / "file.json").read_bytes()) == serial
    assert _parsed(piped) == serial
    assert sum(len(tenant["deleted"]) for tenant in serial["tenants"]) > 1000
