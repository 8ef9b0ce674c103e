"""`wa-sessions history`: what real runs deleted, newest first, by which command and why; the
filters; records of older versions (no command), `failed` lines, the rotated generation; the
document of `--json`; the one-line errors (exit 2). Through the command line (`cli.run`) on a small
real tree, the clock frozen (freezegun) and every mtime set from it."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from freezegun import freeze_time
from support.cli import run_at

from wa_sessions import cli

NOW = "2030-01-15T12:00:00Z"
NOW_EPOCH = 1_894_708_800
CLEANED_AT = "2030-01-14T03:00:00Z"  # 33 hours before NOW
EMERGENCY_AT = "2030-01-15T10:00:00Z"  # 2 hours before NOW
HOUR = 3600
DAY = 86400

CONFIG_YAML = """\
rules:
  session: {max_age: 14d}
  pre-key: {keep_newest: 2}
emergency:
  rules:
    session: {max_age: 3d}
"""


def put(folder: Path, name: str, age: float, content: str = "{}") -> None:
    path = folder / name
    path.write_text(content)
    os.utime(path, (NOW_EPOCH - age, NOW_EPOCH - age))


@dataclass(frozen=True)
class Tree:
    root: Path
    config: Path

    @property
    def state_dir(self) -> Path:
        return self.root / ".wa-sessions"

    def run(self, *args: str, at: str = NOW) -> tuple[int, str, str]:
        """`wa-sessions ARGS --root ROOT --config CONFIG` at `at`: exit code, stdout and stderr
        with the root shown as <ROOT>."""
        return run_at([*args, "--root", str(self.root), "--config", str(self.config)], at, self.root)

    def history(self, *args: str) -> str:
        code, stdout, stderr = self.run("history", *args)
        assert (code, stderr) == (0, "")
        return stdout


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    """Two paired tenants: company_1 with four pre-keys (40d) and sessions 20d and 5d old;
    company_2 with a session 20d old."""
    root = tmp_path / "sessions"
    creds = json.dumps({"me": {"id": "15550000000:2@s.whatsapp.net"}, "nextPreKeyId": 5})
    for name in ("company_1", "company_2"):
        (root / name).mkdir(parents=True)
        put(root / name, "creds.json", HOUR, creds)
    for key_id in range(1, 5):
        put(root / "company_1", f"pre-key-{key_id}.json", 40 * DAY)
    put(root / "company_1", "session-15550000001.0.json", 20 * DAY, '{"s":1}')
    put(root / "company_1", "session-15550000002.0.json", 5 * DAY, '{"s":22}')
    put(root / "company_2", "session-15550000003.0.json", 20 * DAY, '{"s":333}')
    config = tmp_path / "wa-sessions.yaml"
    config.write_text(CONFIG_YAML)
    return Tree(root, config)


@pytest.fixture
def cleaned(tree: Tree) -> Tree:
    """The tree after a real `cleanup` at CLEANED_AT and a real `emergency-cleanup --company 1`
    at EMERGENCY_AT."""
    assert tree.run("cleanup", "--quiet", at=CLEANED_AT) == (0, "", "")
    assert tree.run("emergency-cleanup", "--company", "1", "--quiet", at=EMERGENCY_AT) == (0, "", "")
    return tree


CLEANUP_1 = "2030-01-14T03:00:00Z  1  cleanup: deleted"
EMERGENCY_LINE = (
    "2030-01-15T10:00:00Z  1  emergency-cleanup: deleted session-15550000002.0.json "
    "(session, 8 bytes): older than 3d: last used 4d 22h ago\n"
)
# One run's deletions in the reverse of the order they were made (pre-keys, then the session).
CLEANUP_LINES = (
    f"{CLEANUP_1} session-15550000001.0.json (session, 7 bytes): older than 14d: last used 18d 15h ago\n"
    f"{CLEANUP_1} pre-key-2.json (pre-key, 2 bytes): pre-key id 2 beyond the newest 2 (ids 3–4 kept)\n"
    f"{CLEANUP_1} pre-key-1.json (pre-key, 2 bytes): pre-key id 1 beyond the newest 2 (ids 3–4 kept)\n"
)
COMPANY_2_LINE = (
    "2030-01-14T03:00:00Z  2  cleanup: deleted session-15550000003.0.json "
    "(session, 9 bytes): older than 14d: last used 18d 15h ago\n"
)


def test_history_lists_what_real_runs_deleted_newest_first_with_command_and_reason(cleaned: Tree) -> None:
    expected = (
        "wa-sessions history of <ROOT>: 5 files deleted (28 bytes), newest first\n"
        + EMERGENCY_LINE
        + COMPANY_2_LINE
        + CLEANUP_LINES
    )
    assert cleaned.history() == expected


def test_runs_record_the_command_in_each_history_line(cleaned: Tree) -> None:
    lines = [json.loads(line) for line in (cleaned.state_dir / "history.jsonl").read_text().splitlines()]
    assert [line["command"] for line in lines] == ["cleanup"] * 4 + ["emergency-cleanup"]


def test_company_filter_takes_the_id_or_the_folder_name(cleaned: Tree) -> None:
    expected = "wa-sessions history of <ROOT>: 1 files deleted (9 bytes), newest first\n" + COMPANY_2_LINE
    assert cleaned.history("--company", "2") == expected
    assert cleaned.history("--company", "company_2") == expected
    both = cleaned.history("--company", "1", "--company", "company_2")
    assert both.splitlines()[0] == "wa-sessions history of <ROOT>: 5 files deleted (28 bytes), newest first"


def test_a_company_whose_folder_is_gone_still_has_its_history(cleaned: Tree) -> None:
    shutil.rmtree(cleaned.root / "company_2")
    expected = "wa-sessions history of <ROOT>: 1 files deleted (9 bytes), newest first\n" + COMPANY_2_LINE
    assert cleaned.history("--company", "2") == expected


def test_since_keeps_the_deletions_of_the_last_age(cleaned: Tree) -> None:
    expected = "wa-sessions history of <ROOT>: 1 files deleted (8 bytes), newest first\n" + EMERGENCY_LINE
    assert cleaned.history("--since", "1d") == expected
    assert cleaned.history("--since", "2h") == expected
    assert cleaned.history("--since", "1h") == "wa-sessions history of <ROOT>: no deletions recorded\n"


def test_file_glob_matches_the_file_name(cleaned: Tree) -> None:
    expected = "wa-sessions history of <ROOT>: 2 files deleted (4 bytes), newest first\n" + "".join(
        CLEANUP_LINES.splitlines(keepends=True)[1:]
    )
    assert cleaned.history("--file", "pre-key-*") == expected


def _write_lines(path: Path, records: list[dict[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(record) + "\n" for record in records))


OLD = {
    "event": "deleted",
    "time": "2030-01-10T00:00:00Z",
    "company": "1",
    "file": "session-15550000009.0.json",
    "category": "session",
    "reason": "older than 14d: last used 15d ago",
    "bytes": 5,
    "mtime": "2029-12-26T00:00:00Z",
}


def test_records_without_a_command_show_unknown_and_the_rotated_generation_is_read(tree: Tree) -> None:
    _write_lines(tree.state_dir / "history.jsonl.1", [OLD])
    _write_lines(
        tree.state_dir / "history.jsonl",
        [
            {
                **OLD,
                "time": "2030-01-11T00:00:00Z",
                "file": "pre-key-9.json",
                "category": "pre-key",
                "reason": "r",
            }
        ],
    )
    expected = (
        "wa-sessions history of <ROOT>: 2 files deleted (10 bytes), newest first\n"
        "2030-01-11T00:00:00Z  1  unknown: deleted pre-key-9.json (pre-key, 5 bytes): r\n"
        "2030-01-10T00:00:00Z  1  unknown: deleted session-15550000009.0.json (session, 5 bytes): "
        "older than 14d: last used 15d ago\n"
    )
    assert tree.history() == expected


def test_a_failed_line_shows_its_deletion_as_not_done(tree: Tree) -> None:
    """The failed line takes back the latest deletion of the same file before it, not an earlier
    one; a failed line with nothing to take back is passed over."""
    records: list[dict[str, object]] = [
        {**OLD, "command": "cleanup"},
        {**OLD, "time": "2030-01-12T00:00:00Z", "command": "multitenant-cleanup"},
        {**OLD, "event": "failed", "time": "2030-01-12T00:00:00Z", "error": "Permission denied"},
        {**OLD, "event": "failed", "file": "other.json", "error": "EIO"},
    ]
    _write_lines(tree.state_dir / "history.jsonl", records)
    expected = (
        "wa-sessions history of <ROOT>: 1 files deleted (5 bytes), 1 not done, newest first\n"
        "2030-01-12T00:00:00Z  1  multitenant-cleanup: not deleted (Permission denied) "
        "session-15550000009.0.json (session, 5 bytes): older than 14d: last used 15d ago\n"
        "2030-01-10T00:00:00Z  1  cleanup: deleted "
        "session-15550000009.0.json (session, 5 bytes): older than 14d: last used 15d ago\n"
    )
    assert tree.history() == expected


def test_json_document(cleaned: Tree) -> None:
    code, stdout, stderr = cleaned.run("history", "--json", "--company", "1", "--file", "session-*")
    assert (code, stderr) == (0, "")
    assert json.loads(stdout) == {
        "schema": 1,
        "command": "history",
        "root": "<ROOT>",
        "generated_at": NOW,
        "tenants": [{"company": "1", "deleted": 2, "bytes": 15}],
        "records": [
            {
                "time": "2030-01-15T10:00:00Z",
                "company": "1",
                "command": "emergency-cleanup",
                "file": "session-15550000002.0.json",
                "category": "session",
                "reason": "older than 3d: last used 4d 22h ago",
                "bytes": 8,
                "mtime": "2030-01-10T12:00:00Z",
                "deleted": True,
                "error": None,
            },
            {
                "time": "2030-01-14T03:00:00Z",
                "company": "1",
                "command": "cleanup",
                "file": "session-15550000001.0.json",
                "category": "session",
                "reason": "older than 14d: last used 18d 15h ago",
                "bytes": 7,
                "mtime": "2029-12-26T12:00:00Z",
                "deleted": True,
                "error": None,
            },
        ],
        "errors": [],
    }


def test_no_history_yet(tree: Tree) -> None:
    assert tree.history() == "wa-sessions history of <ROOT>: no deletions recorded\n"
    assert not tree.state_dir.exists()  # read only


def test_quiet_prints_nothing(cleaned: Tree) -> None:
    assert cleaned.run("history", "--quiet") == (0, "", "")


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        (
            ["--since", "yesterday"],
            "invalid --since: not a duration: 'yesterday' (write e.g. 30s, 10m, 6h, 14d, 2w)",
        ),
        (
            ["--company", "../1"],
            "invalid --company '../1': expected an id like 962302 or a folder name like company_962302",
        ),
    ],
)
def test_bad_filters_are_one_line_exit_2(tree: Tree, arguments: list[str], error: str) -> None:
    assert tree.run("history", *arguments) == (2, "", f"wa-sessions: {error}\n")


def test_a_root_that_does_not_exist_is_one_line_exit_2(tree: Tree) -> None:
    missing = tree.root / "nowhere"
    stdout, stderr = io.StringIO(), io.StringIO()
    with freeze_time(NOW), contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = cli.run(["history", "--root", str(missing), "--config", str(tree.config)])
    assert (code, stdout.getvalue()) == (2, "")
    assert stderr.getvalue() == f"wa-sessions: {NOW} cannot open root {missing}: No such file or directory\n"
