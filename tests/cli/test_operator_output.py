"""What an operator reads (issue 12): tables that fit an 80-column terminal, a wrong root that
is an error, what could not be seen shown as unknown, busy tenants of a fleet run, a purge that
keeps paired folders, dry runs that end with their summary, IEC units and absolute paths.

Through the command line only: Typer's runner (`CliRunner`), and a real pseudo-terminal of 80
columns for what only a terminal shows (Rich tables, their width, the order of a dry run).
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from wa_sessions import cli

DAY = 86400
runner = CliRunner()
LONG_ID = "9623029623029623"  # a 16-digit company id


def put(folder: Path, name: str, age_days: float = 0.0, content: str = "{}") -> Path:
    path = folder / name
    path.write_text(content)
    moment = time.time() - age_days * DAY
    os.utime(path, (moment, moment))
    return path


PAIRED = json.dumps({"me": {"id": "15550000000:2@s.whatsapp.net"}, "nextPreKeyId": 61})


def make_tenant(
    root: Path, name: str, *, files: int = 60, creds: str = PAIRED, age_days: float = 0.0
) -> Path:
    """A tenant with creds.json, `files` old pre-keys, sessions of 20 days and one fresh one."""
    folder = root / name
    folder.mkdir(parents=True)
    put(folder, "creds.json", age_days, creds)
    for key_id in range(1, files + 1):
        put(folder, f"pre-key-{key_id}.json", max(age_days, 30))
    for index in range(3):
        put(folder, f"session-1555000{index:04d}.0.json", max(age_days, 20))
    put(folder, f"sender-key-120363000000000000@g.us--1555000000{files % 10}--0.json", max(age_days, 5))
    put(folder, "identity-key-15550000001.0.json", max(age_days, 1))
    return folder


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli.app, list(args))
    return result.exit_code, result.stdout, result.stderr


def tenants_of(stdout: str) -> dict[str, dict[str, object]]:
    return {tenant["company"]: tenant for tenant in json.loads(stdout)["tenants"]}


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    """Four tenants, one with a 16-digit company id, at different levels."""
    root = tmp_path / "sessions"
    make_tenant(root, "company_962302", files=60)
    make_tenant(root, "company_962303", files=150)
    make_tenant(root, "company_962304", files=190)
    make_tenant(root, f"company_{LONG_ID}", files=10)
    return root


# ---------------------------------------------------------------- a real terminal of 80 columns

_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def in_terminal(*args: str, columns: int = 80) -> tuple[int, str]:
    """Run `wa-sessions ARGS` with stdout, stderr and stdin on a pseudo-terminal of `columns`
    columns; return the exit code and what the terminal received (escape sequences removed)."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    environment = {
        name: value for name, value in os.environ.items() if name not in ("COLUMNS", "LINES", "NO_COLOR")
    }
    environment["TERM"] = "xterm-256color"
    process = subprocess.Popen(
        [sys.executable, "-m", "wa_sessions", *args],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=environment,
        close_fds=True,
    )
    os.close(follower)
    received = bytearray()
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the terminal's other side is closed
            break
        if not chunk:
            break
        received += chunk
    code = process.wait(timeout=60)
    os.close(leader)
    return code, _ESCAPE.sub("", received.decode("utf-8", "replace")).replace("\r\n", "\n")


def lines_of(text: str) -> Iterator[str]:
    return (line.rstrip() for line in text.splitlines())


def test_scan_table_fits_80_columns_and_cuts_no_company_id_nor_header(fleet: Path) -> None:
    code, screen = in_terminal("scan", "--root", str(fleet))
    assert code == 0, screen
    assert "…" not in screen
    header = next(line for line in lines_of(screen) if line.lstrip().startswith("company"))
    assert header.split() == ["company", "files", "bytes", "status", "prekey", "session", "skey", "other"]
    for company in ("962302", "962303", "962304", LONG_ID):
        assert re.search(rf"^\s*{company}\s", screen, re.M), f"{company} cut or missing:\n{screen}"
    # the table itself (the title above it is a line the terminal wraps, like any long path)
    table = screen.split("disk:")[0].split("\n", 1)[1]
    assert max(len(line) for line in lines_of(table)) <= 80, table


def test_scan_wide_shows_every_category_and_still_cuts_nothing(fleet: Path) -> None:
    code, screen = in_terminal("scan", "--wide", "--root", str(fleet))
    assert code == 0, screen
    assert "…" not in screen
    for header in ("creds", "appkey", "appver", "lid", "skmem", "ident", "devlist", "tctoken", "unknown"):
        assert re.search(rf"\b{header}\b", screen), f"{header} missing:\n{screen}"
    assert re.search(rf"^\s*{LONG_ID}\s", screen, re.M), screen


def test_cleanup_and_report_tables_cut_no_company_id_at_80_columns(fleet: Path) -> None:
    for args in (("cleanup", "--dry-run"), ("report",), ("multitenant-cleanup", "--dry-run")):
        code, screen = in_terminal(*args, "--root", str(fleet))
        assert code == 0, screen
        assert "…" not in screen, screen
        for company in ("962302", "962303", "962304", LONG_ID):
            assert re.search(rf"^\s*{company}\s", screen, re.M), (
                f"{args}: {company} cut or missing:\n{screen}"
            )


def test_a_company_id_too_long_for_any_table_is_printed_whole(tmp_path: Path) -> None:
    root = tmp_path / "sessions"
    very_long = "x" * 70
    make_tenant(root, f"company_{very_long}", files=5)
    make_tenant(root, "company_1", files=5)
    code, screen = in_terminal("scan", "--root", str(root))
    assert code == 0, screen
    assert "…" not in screen and very_long in screen.replace("\n", "")


def test_plain_text_off_a_terminal_is_never_cut(fleet: Path) -> None:
    code, stdout, _ = invoke("scan", "--wide", "--root", str(fleet))
    assert code == 0
    assert "…" not in stdout
    header = stdout.splitlines()[1]
    assert header.split()[-1] == "unknown" and LONG_ID in stdout


def test_a_dry_run_on_a_terminal_ends_with_its_summary_table(fleet: Path) -> None:
    code, screen = in_terminal("cleanup", "--dry-run", "--root", str(fleet))
    assert code == 0, screen
    lines = [line for line in lines_of(screen) if line.strip()]
    last_file_line = max(
        index for index, line in enumerate(lines) if re.search(r"would delete \S+\.json ", line)
    )
    title = next(index for index, line in enumerate(lines) if "wa-sessions cleanup of" in line)
    assert title > last_file_line, "the summary comes after the file lines on a terminal"


# ---------------------------------------------------------------- a root without a tenant (SPEC §4)


@pytest.mark.parametrize(
    "args",
    [
        ("scan",),
        ("cleanup",),
        ("cleanup", "--dry-run"),
        ("emergency-cleanup",),
        ("emergency-cleanup", "--purge-stale-dirs", "--older-than", "1h", "--yes"),
        ("multitenant-cleanup",),
        ("report",),
        ("report", "--format", "prometheus"),
    ],
)
def test_a_root_without_a_tenant_is_exit_2_naming_the_root_and_the_pattern(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    root = tmp_path / "sessions"
    (root / "not-a-tenant").mkdir(parents=True)
    (root / "company_file").write_text("a file, not a folder")
    code, stdout, stderr = invoke(*args, "--root", str(root))
    assert code == 2, (stdout, stderr)
    assert stdout == ""
    assert len(stderr.splitlines()) == 1 and "Traceback" not in stderr
    assert str(root) in stderr and "company_*" in stderr
    assert sorted(os.listdir(root)) == ["company_file", "not-a-tenant"], "nothing created or recorded"


def test_a_root_without_a_tenant_records_no_success(tmp_path: Path) -> None:
    root = tmp_path / "sessions"
    root.mkdir()
    state = tmp_path / "state"
    config = tmp_path / "config.yaml"
    config.write_text(f"state_dir: {state}\n")
    assert invoke("cleanup", "--root", str(root), "--config", str(config))[0] == 2
    assert invoke("multitenant-cleanup", "--root", str(root), "--config", str(config))[0] == 2
    assert not (state / "runs.json").exists()


# ---------------------------------------------------------------- unknown status (SPEC §3)


def test_a_tenant_that_could_not_be_read_is_unknown_never_healthy_with_0_files(
    fleet: Path, tmp_path: Path
) -> None:
    elsewhere = make_tenant(tmp_path / "outside", "company_999", files=5)
    os.symlink(elsewhere, fleet / "company_999")  # a symlinked tenant is never read

    code, stdout, _ = invoke("scan", "--root", str(fleet), "--json", "--fail-on", "warning")
    unread = tenants_of(stdout)["999"]
    assert (unread["status"], unread["files"], unread["bytes"]) == ("unknown", None, None)
    assert set(unread["categories"].values()) == {None}  # type: ignore[union-attr]
    assert code == 1  # tripped by the tenants at warning and above, never by the unknown one

    code, stdout, _ = invoke("cleanup", "--dry-run", "--root", str(fleet), "--json")
    unread = tenants_of(stdout)["999"]
    assert (unread["status_before"], unread["files_before"], unread["files_after"]) == ("unknown", None, None)

    code, stdout, _ = invoke("scan", "--root", str(fleet))
    assert re.search(r"^999\s+\?\s+\?\s+unknown\s", stdout, re.M), stdout

    code, stdout, _ = invoke("report", "--root", str(fleet), "--json")
    assert json.loads(stdout)["statuses"]["unknown"] == 1


def test_prometheus_gives_an_unknown_tenant_no_level_and_counts_it_as_unknown(
    fleet: Path, tmp_path: Path
) -> None:
    elsewhere = make_tenant(tmp_path / "outside", "company_999", files=5)
    os.symlink(elsewhere, fleet / "company_999")
    code, stdout, _ = invoke("report", "--root", str(fleet), "--format", "prometheus")
    assert code == 0
    assert 'wa_sessions_tenants{status="unknown"} 1.0' in stdout
    assert 'company="999"' in stdout  # still there: its problems
    for metric in ("tenant_status_level", "tenant_files", "tenant_bytes"):
        assert f'wa_sessions_{metric}{{company="999"}}' not in stdout


class HeldLock:
    """The tenant lock held by this process (flock on its own open file description)."""

    def __init__(self, folder: Path):
        self.fd = os.open(folder / ".cleanup.lock", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def release(self) -> None:
        os.close(self.fd)


@pytest.fixture
def busy_962304(fleet: Path) -> Iterator[Path]:
    held = HeldLock(fleet / "company_962304")
    yield fleet
    held.release()


def test_a_tenant_skipped_for_a_busy_lock_keeps_its_real_counts(busy_962304: Path) -> None:
    _, stdout, _ = invoke("cleanup", "--root", str(busy_962304), "--json")
    busy = tenants_of(stdout)["962304"]
    assert (busy["action"], busy["skipped_reason"]) == ("skipped", "locked by another process")
    assert busy["files_before"] == 196 and busy["files_after"] == 196
    assert busy["status_before"] == "danger"


# ---------------------------------------------------------------- busy tenants of a fleet run (SPEC §5)


@pytest.mark.parametrize("command", ["cleanup", "emergency-cleanup"])
def test_an_unnamed_busy_tenant_is_skipped_and_the_run_succeeds(busy_962304: Path, command: str) -> None:
    code, stdout, stderr = invoke(command, "--root", str(busy_962304), "--json")
    assert code == 0, stderr
    assert tenants_of(stdout)["962304"]["skipped_reason"] == "locked by another process"
    assert "962304: skipped, locked by another process" in stderr

    code, stdout, stderr = invoke(command, "--root", str(busy_962304), "--quiet")
    assert (code, stdout, stderr) == (0, "", "")

    code, _, stderr = invoke(command, "--company", "962304", "--root", str(busy_962304))
    assert code == 3, "named, a busy tenant is still exit 3"


# ---------------------------------------------------------------- the purge keeps paired folders (SPEC §4)


@pytest.fixture
def flat(tmp_path: Path) -> tuple[Path, Path]:
    """A single-tenant root (tenant_pattern "*"): everything 2 days old; a paired folder, an
    abandoned QR attempt (creds.json without `me`), one with no creds.json, one unparseable."""
    root = tmp_path / "sessions"
    make_tenant(root, "paired", files=3, age_days=2)
    make_tenant(root, "qr-attempt", files=3, creds=json.dumps({"nextPreKeyId": 4}), age_days=2)
    (make_tenant(root, "no-creds", files=3, age_days=2) / "creds.json").unlink()
    make_tenant(root, "half-written", files=3, creds='{"me": {"id"', age_days=2)
    config = tmp_path / "config.yaml"
    config.write_text('tenant_pattern: "*"\n')
    return root, config


PURGE = ("emergency-cleanup", "--purge-stale-dirs", "--older-than", "1d")


@pytest.mark.parametrize("dry_run", [True, False])
def test_the_purge_removes_only_folders_that_never_completed_pairing(
    flat: tuple[Path, Path], dry_run: bool
) -> None:
    root, config = flat
    mode = ("--dry-run",) if dry_run else ("--yes", "--no-backup")
    code, stdout, stderr = invoke(*PURGE, *mode, "--root", str(root), "--config", str(config), "--json")
    assert code == 0, stderr
    tenants = tenants_of(stdout)
    for unpaired in ("qr-attempt", "no-creds", "half-written"):
        assert tenants[unpaired]["action"] == "emergency", tenants[unpaired]
    paired = tenants["paired"]
    assert paired["action"] == "skipped" and paired["deleted"] == []
    assert "--include-paired" in str(paired["skipped_reason"])
    assert json.loads(stdout)["include_paired"] is False
    expected = ["half-written", "no-creds", "paired", "qr-attempt"] if dry_run else ["paired"]
    assert sorted(name for name in os.listdir(root) if not name.startswith(".")) == expected


def test_include_paired_purges_paired_folders_too(flat: tuple[Path, Path]) -> None:
    root, config = flat
    code, stdout, stderr = invoke(
        *PURGE, "--include-paired", "--dry-run", "--root", str(root), "--config", str(config), "--json"
    )
    assert code == 0, stderr
    assert {tenant["action"] for tenant in tenants_of(stdout).values()} == {"emergency"}
    code, _, stderr = invoke(
        *PURGE, "--include-paired", "--yes", "--no-backup", "--root", str(root), "--config", str(config)
    )
    assert code == 0, stderr
    assert [name for name in os.listdir(root) if not name.startswith(".")] == []


def test_include_paired_only_goes_with_purge_stale_dirs(fleet: Path) -> None:
    code, _, stderr = invoke("emergency-cleanup", "--include-paired", "--root", str(fleet))
    assert code == 2 and "--purge-stale-dirs" in stderr


# ---------------------------------------------------------------- --summary


@pytest.mark.parametrize("command", ["cleanup", "emergency-cleanup", "multitenant-cleanup"])
def test_summary_prints_the_totals_and_the_counts_per_rule_without_file_lines(
    fleet: Path, command: str
) -> None:
    code, stdout, stderr = invoke(command, "--dry-run", "--summary", "--root", str(fleet))
    assert code == 0, stderr
    assert not re.search(r"would delete \S+\.json", stdout), stdout  # no file lines
    title, *rest = stdout.splitlines()
    assert title.startswith(f"[dry-run] wa-sessions {command} of ") and "would delete" in title
    assert any(re.search(r"pre-key: would delete \d+ files?$", line) for line in rest), stdout
    assert rest[-1].startswith("[dry-run] tenants: ")
    code, full, _ = invoke(command, "--dry-run", "--root", str(fleet))
    assert re.search(r"would delete pre-key-1\.json", full), "file by file stays the default"


# ---------------------------------------------------------------- units, paths, unknown files


def test_human_sizes_are_iec_units_and_one_byte_is_singular(tmp_path: Path) -> None:
    root = tmp_path / "sessions"
    folder = make_tenant(root, "company_1", files=60)
    put(folder, "session-19990000000.0.json", 30, "x")  # 1 byte, older than 14 days
    put(folder, "big.bin", 0, "x" * 3000)

    _, stdout, _ = invoke("cleanup", "--dry-run", "--root", str(root))
    assert "session-19990000000.0.json (session, 1 byte)" in stdout
    assert not re.search(r"\b1 bytes\b", stdout)
    _code, stdout, _ = invoke("scan", "--root", str(root))
    assert re.search(r"\d\.\d KiB", stdout) and re.search(
        r"disk: [\d.]+ [KMGT]iB free of [\d.]+ [KMGT]iB", stdout
    )
    assert not re.search(r"\b(KB|MB|GB|TB)\b", stdout)
    _, stdout, _ = invoke("report", "--root", str(root))
    tenants_section = stdout.split("\nTenants\n")[1]
    assert re.search(r"^1\s.*\d\.\d KiB", tenants_section, re.M), tenants_section
    assert re.search(r"^bytes\s+[\d.]+ [KMGT]iB\s+[\d.]+ [KMGT]iB", stdout, re.M), stdout


def test_json_root_and_paths_are_absolute_and_a_tenant_symlink_is_not_resolved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "sessions"
    make_tenant(root, "company_1", files=5)
    elsewhere = make_tenant(tmp_path / "outside", "company_2", files=5)
    os.symlink(elsewhere, root / "company_2")
    monkeypatch.chdir(tmp_path)
    for args in (("scan", "--json"), ("cleanup", "--dry-run", "--json"), ("report", "--json")):
        _, stdout, _ = invoke(*args, "--root", "sessions")
        document = json.loads(stdout)
        assert document["root"] == str(root.resolve()), args
        paths = {tenant["company"]: tenant["path"] for tenant in document["tenants"]}
        assert paths == {"1": str(root.resolve() / "company_1"), "2": str(root.resolve() / "company_2")}


def test_unknown_entries_are_named_in_problems_at_most_20(tmp_path: Path) -> None:
    root = tmp_path / "sessions"
    folder = make_tenant(root, "company_1", files=5)
    put(folder, "notes.txt", 0, "hello")
    _code, stdout, _ = invoke("scan", "--root", str(root), "--json")
    assert tenants_of(stdout)["1"]["problems"] == ["unknown file (kept): notes.txt"]
    for index in range(24):
        put(folder, f"stray-{index:02d}.log")
    _, stdout, _ = invoke("scan", "--root", str(root), "--json")
    problems = tenants_of(stdout)["1"]["problems"]
    assert len([p for p in problems if p.startswith("unknown file (kept): ")]) == 20  # type: ignore[union-attr]
    assert "... and 5 more like the above" in problems  # type: ignore[operator]
