"""Bidirectional controls in names (issue 10): U+202E RIGHT-TO-LEFT OVERRIDE and its kin in a file
or folder name make a terminal show the rest of the line in another order (`session-1\u202enosj.txt`
reads `session-1txt.json`). Every human output path (plain lines, plain tables, Rich tables on a
terminal, Markdown, stderr) shows them escaped as `\\u202e`, never raw.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .support import assert_clean_stderr, clean_env, put, run_cli

#: Unicode's Bidi_Control characters.
BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
ME = {"id": "15550000000:12@s.whatsapp.net", "lid": "100000000000001:12@lid"}

TENANT = "company_evil\u202e\u2066x"  # a folder name: the company id is shown in tables
OLD_SESSION = "session-1555\u202e0001.0.json"  # deleted by the regular rules (20 days old)
EMPTY_KEY = "tctoken-\u2067\u200f1@s.whatsapp.net.json"  # an empty key file: a problem
ODD_DIR = "notes\u061c\u200e\u2069\u202a"  # a directory: "not a regular file"

# Every tenant is at `warning` or above, so `scan --fail-on warning` names them on stderr.
LOW_THRESHOLDS = {
    "WA_SESSIONS_THRESHOLDS__WARNING": "1",
    "WA_SESSIONS_THRESHOLDS__CRITICAL": "1000",
    "WA_SESSIONS_THRESHOLDS__TRIGGER": "1001",
    "WA_SESSIONS_THRESHOLDS__EMERGENCY": "1002",
    "WA_SESSIONS_THRESHOLDS__DANGER": "1003",
}


def escaped(text: str) -> str:
    """What one_line shows for `text`: each bidi control as `\\uXXXX`."""
    return "".join(f"\\u{ord(char):04x}" if char in BIDI else char for char in text)


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A root whose own path, a tenant folder, a file and a directory carry bidi controls; the
    env of a run (state dir under tmp_path)."""
    root = tmp_path / "root\u202eflip"
    folder = root / TENANT
    folder.mkdir(parents=True)
    put(folder, "creds.json", 0.01, json.dumps({"nextPreKeyId": 2, "firstUnuploadedPreKeyId": 2, "me": ME}))
    put(folder, OLD_SESSION, 20)
    put(folder, "session-15550000002.0.json", 1)
    put(folder, EMPTY_KEY, 1, b"")
    (folder / ODD_DIR).mkdir()
    plain = root / "company_2"
    plain.mkdir()
    put(plain, "creds.json", 0.01, json.dumps({"nextPreKeyId": 2, "me": ME}))
    env = {"WA_SESSIONS_STATE_DIR": os.fspath(tmp_path / "state"), **LOW_THRESHOLDS}
    return root, env


def assert_no_bidi(text: str, where: str) -> None:
    raw = sorted({f"U+{ord(char):04X}" for char in text if char in BIDI})
    assert not raw, f"{where}: raw bidi controls {raw} in\n{text}"


def plain(root: Path, env: dict[str, str], *args: str, code: int = 0) -> str:
    """Run a command (not on a terminal, so plain text); stdout and stderr must hold no raw bidi
    control. Returns stdout."""
    result = run_cli(*args, "--root", root, env=env)
    context = f"{args}: rc={result.returncode}\nstdout={result.stdout}\nstderr={result.stderr}"
    assert_clean_stderr(result, context)
    assert result.returncode == code, context
    assert_no_bidi(result.stdout, f"{args} stdout")
    assert_no_bidi(result.stderr, f"{args} stderr")
    return result.stdout


def on_terminal(root: Path, env: dict[str, str], *args: str) -> str:
    """Run a command with stdout on a pseudo-terminal (Rich tables; NO_COLOR unset, wide enough
    that no cell wraps); stdout and stderr must hold no raw bidi control. Returns stdout."""
    child_env = clean_env(
        {**env, "COLUMNS": "400", "LINES": "50", "TERM": "xterm", "PYTHONIOENCODING": "utf-8"}
    )
    child_env.pop("NO_COLOR", None)
    master, slave = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "wa_sessions", *args, "--root", os.fspath(root)],
            stdin=subprocess.DEVNULL,
            stdout=slave,
            stderr=subprocess.PIPE,
            env=child_env,
        )
    finally:
        os.close(slave)
    assert process.stderr is not None
    err_fd = process.stderr.fileno()
    chunks = {master: bytearray(), err_fd: bytearray()}
    open_fds = set(chunks)
    deadline = time.monotonic() + 120
    try:
        while open_fds:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"{args}: no end of output within 120s"
            ready, _, _ = select.select(list(open_fds), [], [], remaining)
            for fd in ready:
                try:
                    data = os.read(fd, 65536)
                except OSError:  # EIO: the terminal's other end closed (the child is gone)
                    data = b""
                if data:
                    chunks[fd].extend(data)
                else:
                    open_fds.discard(fd)
        code = process.wait(timeout=60)
    finally:
        os.close(master)
        process.stderr.close()
        if process.poll() is None:
            process.kill()
            process.wait()
    stdout = chunks[master].decode("utf-8")
    stderr = chunks[err_fd].decode("utf-8")
    context = f"{args}: rc={code}\nstdout={stdout}\nstderr={stderr}"
    assert "Traceback" not in stderr and "internal error" not in stderr, context
    assert code == 0, context
    assert "─" in stdout or "━" in stdout or "┃" in stdout, (
        f"{args}: not a Rich table, so not the terminal path\n{stdout}"
    )
    assert_no_bidi(stdout, f"{args} stdout (terminal)")
    assert_no_bidi(stderr, f"{args} stderr (terminal)")
    return stdout


def test_scan_shows_names_escaped(tree: tuple[Path, dict[str, str]]) -> None:
    root, env = tree
    out = plain(root, env, "scan")
    assert escaped(os.fspath(root)) in out  # the table's title
    assert escaped("evil\u202e\u2066x") in out  # the company, in the table and the problem lines
    assert escaped(f"empty key file: {EMPTY_KEY}") in out
    assert escaped(f"not a regular file (directory): {ODD_DIR}") in out


def test_scan_fail_on_names_the_tenant_escaped_on_stderr(tree: tuple[Path, dict[str, str]]) -> None:
    root, env = tree
    result = run_cli("scan", "--fail-on", "warning", "--root", root, env=env)
    assert result.returncode == 1, result.stderr
    assert_no_bidi(result.stdout + result.stderr, "scan --fail-on")
    assert escaped("evil\u202e\u2066x is warning") in result.stderr


def test_cleanup_lines_show_names_escaped(tree: tuple[Path, dict[str, str]]) -> None:
    root, env = tree
    dry = plain(root, env, "cleanup", "--dry-run", "--verbose")
    assert f"would delete {escaped(OLD_SESSION)} " in dry
    assert escaped(f"problem: empty key file: {EMPTY_KEY}") in dry
    assert escaped(os.fspath(root)) in dry
    real = plain(root, env, "cleanup", "--verbose")
    assert f"deleted {escaped(OLD_SESSION)} " in real
    assert not (root / TENANT / OLD_SESSION).exists()


def test_report_table_and_markdown_show_names_escaped(tree: tuple[Path, dict[str, str]]) -> None:
    root, env = tree
    table = plain(root, env, "report")
    assert f"report of {escaped(os.fspath(root))} at" in table  # the headline
    assert escaped("evil\u202e\u2066x") in table
    markdown = plain(root, env, "report", "--format", "markdown")
    assert escaped("evil\u202e\u2066x") in markdown
    assert escaped(os.fspath(root)) in markdown


def test_rich_tables_on_a_terminal_show_names_escaped(tree: tuple[Path, dict[str, str]]) -> None:
    root, env = tree
    scan = on_terminal(root, env, "scan")
    assert escaped("evil\u202e\u2066x") in scan
    assert escaped(os.fspath(root)) in scan
    assert escaped(f"empty key file: {EMPTY_KEY}") in scan
    dry = on_terminal(root, env, "cleanup", "--dry-run")
    assert f"would delete {escaped(OLD_SESSION)} " in dry
    assert escaped("evil\u202e\u2066x") in dry
    report = on_terminal(root, env, "report")
    assert escaped("evil\u202e\u2066x") in report


def test_json_keeps_names_as_on_disk(tree: tuple[Path, dict[str, str]]) -> None:
    """JSON is for programs: names are the names on disk (SPEC §6), decoded to the same string."""
    root, env = tree
    result = run_cli("cleanup", "--dry-run", "--json", "--root", root, env=env)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    tenant = next(t for t in document["tenants"] if t["path"].endswith(TENANT))
    assert OLD_SESSION in {item["file"] for item in tenant["deleted"]}
