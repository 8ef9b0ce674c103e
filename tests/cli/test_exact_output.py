"""Golden tests: the exact, whole output of every command and format on one small sessions tree.

These tests pin what `wa-sessions` prints today, byte for byte, so that a refactoring of the
internals (results, rendering, stores) cannot change an operator's or a script's view unnoticed.
They go through the public command line only (`wa_sessions.cli.run`, the function behind the
`wa-sessions` script), never through internal functions.

What would vary from machine to machine is pinned or replaced, in the expected and the actual text
alike:
- the clock is frozen (freezegun) and every file's mtime is set relative to the frozen time, so
  ages, `generated_at`, history times and archive names are exact;
- `os.statvfs` is replaced by a fixed result, so free/total bytes and inodes are exact;
- the pytest tmp folder is replaced by `<TMP>` and the sessions root (`<TMP>/sessions`) by `<ROOT>`;
- no tenant holds a sub-directory (a directory's st_size, counted in `bytes`, depends on the
  filesystem) and no tenant has two problems of one kind that come from the directory listing
  (kinds are listed in a fixed order, but within a kind the order is the order of readdir, which
  depends on the filesystem too).

When an expected text here has to change, the change is a change of what users see: say so in the
commit message.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from freezegun import freeze_time
from prometheus_client.parser import text_string_to_metric_families

from wa_sessions import cli

NOW = "2030-01-15T12:00:00Z"
NOW_EPOCH = 1_894_708_800  # NOW as Unix time
HOUR = 3600
DAY = 86400
OWN = "15550000000"

CONFIG_YAML = """\
rules:
  session: {max_age: 14d}
  sender-key: {max_age: 3d}
  pre-key: {keep_newest: 5}
emergency:
  rules:
    session: {max_age: 3d}
    sender-key: {max_age: 1d}
    pre-key: {keep_newest: 3}
thresholds: {warning: 5, critical: 10, trigger: 20, emergency: 25, danger: 30}
"""

#: What the fake statvfs says: 4 KB blocks; 1,000,000 blocks, 240,000 available to us;
#: 500,000 inodes, 390,000 available to us.
STATVFS = os.statvfs_result((4096, 4096, 1_000_000, 250_000, 240_000, 500_000, 400_000, 390_000, 0, 255))


@pytest.fixture(autouse=True)
def _fixed_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Disk space and inodes as a fixed filesystem has them (patched on `os`, wherever it is called)."""
    monkeypatch.setattr(os, "statvfs", lambda path: STATVFS)


@dataclass(frozen=True)
class Tree:
    tmp: Path
    root: Path
    config: Path

    def normalize(self, text: str) -> str:
        """`text` with the machine's folders replaced by placeholders (the root first: it is
        inside the tmp folder)."""
        return text.replace(str(self.root), "<ROOT>").replace(str(self.tmp), "<TMP>")

    def run(self, *args: str, at: str = NOW) -> tuple[int, str, str]:
        """Run the command line at the frozen time `at` with this tree's root and config;
        return the exit code and the normalized stdout and stderr."""
        argv = [*args, "--root", str(self.root), "--config", str(self.config)]
        return self.run_argv(argv, at=at)

    def run_argv(self, argv: list[str], at: str = NOW) -> tuple[int, str, str]:
        stdout, stderr = io.StringIO(), io.StringIO()  # not a terminal: plain text, no Rich
        with freeze_time(at), contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = cli.run(argv)
        return code, self.normalize(stdout.getvalue()), self.normalize(stderr.getvalue())

    def check(self, actual: str, expected: str) -> None:
        assert self.normalize(actual) == self.normalize(expected)


def put(folder: Path, name: str, age: float, content: str = "{}") -> None:
    """A file `age` seconds old at NOW."""
    path = folder / name
    path.write_text(content)
    os.utime(path, (NOW_EPOCH - age, NOW_EPOCH - age))


def build_tree(tmp: Path) -> Tree:
    """Three tenants (thresholds of CONFIG_YAML: warning 5, critical 10, trigger 20, emergency 25,
    danger 30):

    - company_100, healthy (3 files): an abandoned QR attempt; creds.json unparseable, an empty
      pre-key, everything 2 days old;
    - company_200, emergency (26 files): every category; a session with its `.bak` companion;
      our own sender key (5d) and its group's sender-key-memory; another member's sender key
      (2d); an unknown file and a symlink;
    - company_300, danger (32 files): paired (creds.json has `me`), quiet for 2 days, 27
      pre-keys 40 days old, 4 sessions 2, 12, 22 and 32 days old.
    """
    root = tmp / "sessions"
    root.mkdir()

    t100 = root / "company_100"
    t100.mkdir()
    put(t100, "creds.json", 2 * DAY, "{")
    put(t100, "pre-key-1.json", 2 * DAY)
    put(t100, "pre-key-2.json", 2 * DAY, "")

    t200 = root / "company_200"
    t200.mkdir()
    creds = {"me": {"id": f"{OWN}:2@s.whatsapp.net"}, "nextPreKeyId": 9, "firstUnuploadedPreKeyId": 9}
    put(t200, "creds.json", HOUR, json.dumps(creds))
    put(t200, "creds.json.bak", HOUR, json.dumps(creds))
    put(t200, "app-state-sync-key-AAAAAB3x.json", 400 * DAY)
    put(t200, "app-state-sync-version-regular_high.json", 10 * DAY)
    put(t200, "lid-mapping-15550000000.json", 400 * DAY)
    for key_id in range(1, 9):
        put(t200, f"pre-key-{key_id}.json", 30 * DAY)
    put(t200, "session-15550000001.0.json", 20 * DAY, '{"s":1}')
    put(t200, "session-15550000001.0.json.bak", 20 * DAY, '{"s":0}')
    put(t200, "session-15550000002.0.json", 5 * DAY)
    put(t200, "session-15550000003.0.json", HOUR)
    put(t200, f"sender-key-120363000000000000@g.us--{OWN}--2.json", 5 * DAY)
    put(t200, "sender-key-memory-120363000000000000@g.us.json", HOUR)
    put(t200, "sender-key-120363000000000001@g.us--15550000001--0.json", 2 * DAY)
    put(t200, "identity-key-15550000001.0.json", 30 * DAY)
    put(t200, "identity-key-15550000002.0.json", 30 * DAY)
    put(t200, "device-list-15550000001.json", 30 * DAY)
    put(t200, "tctoken-15550000001@s.whatsapp.net.json", 30 * DAY)
    put(t200, "notes.txt", 30 * DAY, "hello")
    (t200 / "link.json").symlink_to("creds.json")
    os.utime(t200 / "link.json", (NOW_EPOCH - 30 * DAY,) * 2, follow_symlinks=False)

    t300 = root / "company_300"
    t300.mkdir()
    creds = {"me": {"id": "15550000009:0@s.whatsapp.net"}, "nextPreKeyId": 28}
    put(t300, "creds.json", 2 * DAY, json.dumps(creds))
    for key_id in range(1, 28):
        put(t300, f"pre-key-{key_id}.json", 40 * DAY)
    for index in range(4):
        put(t300, f"session-1666000000{index}.0.json", (2 + 10 * index) * DAY)

    for folder, age in ((t100, 2 * DAY), (t200, HOUR), (t300, 2 * DAY), (root, HOUR)):
        os.utime(folder, (NOW_EPOCH - age,) * 2)
    config = tmp / "wa-sessions.yaml"
    config.write_text(CONFIG_YAML)
    return Tree(tmp, root, config)


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    return build_tree(tmp_path)


def names(folder: Path) -> list[str]:
    return sorted(name for name in os.listdir(folder) if not name.startswith("."))


# ---------------------------------------------------------------- scan

SCAN_TEXT = """\
wa-sessions scan of <ROOT>: 3 tenants
company  files      bytes     status  prekey  session  skey  other
100          3    3 bytes    healthy       2        0     0      1
200         26  259 bytes  emergency       8        4     2     12
300         32  128 bytes     danger      27        4     0      1
other: the files of the other categories (--wide: a column each)
100: problem: empty key file: pre-key-2.json
100: problem: creds.json is unparseable
200: problem: not a regular file (symlink): link.json
200: problem: unknown file (kept): notes.txt
disk: 937.5 MiB free of 3.8 GiB; inodes: 390,000 free of 500,000 (78%)
"""


def test_scan_text(tree: Tree) -> None:
    code, stdout, stderr = tree.run("scan")
    assert (code, stderr) == (0, "")
    tree.check(stdout, SCAN_TEXT)


SCAN_JSON = """\
{"schema": 1, "command": "scan", "root": "<ROOT>", "generated_at": "2030-01-15T12:00:00Z", "tenants": [
{"company": "100", "path": "<ROOT>/company_100", "files": 3, "bytes": 3, "status": "healthy", "categories": {"creds": 1, "app-state-sync-key": 0, "app-state-sync-version": 0, "lid-mapping": 0, "pre-key": 2, "session": 0, "sender-key": 0, "sender-key-memory": 0, "identity-key": 0, "device-list": 0, "tctoken": 0, "unknown": 0}, "problems": ["empty key file: pre-key-2.json", "creds.json is unparseable"]},
{"company": "200", "path": "<ROOT>/company_200", "files": 26, "bytes": 259, "status": "emergency", "categories": {"creds": 2, "app-state-sync-key": 1, "app-state-sync-version": 1, "lid-mapping": 1, "pre-key": 8, "session": 4, "sender-key": 2, "sender-key-memory": 1, "identity-key": 2, "device-list": 1, "tctoken": 1, "unknown": 2}, "problems": ["not a regular file (symlink): link.json", "unknown file (kept): notes.txt"]},
{"company": "300", "path": "<ROOT>/company_300", "files": 32, "bytes": 128, "status": "danger", "categories": {"creds": 1, "app-state-sync-key": 0, "app-state-sync-version": 0, "lid-mapping": 0, "pre-key": 27, "session": 4, "sender-key": 0, "sender-key-memory": 0, "identity-key": 0, "device-list": 0, "tctoken": 0, "unknown": 0}, "problems": []}
], "disk": {"bytes_total": 4096000000, "bytes_free": 983040000, "inodes_total": 500000, "inodes_free": 390000}, "memory": null, "fail_on": null, "tripped": [], "errors": []}
"""


def test_scan_json(tree: Tree) -> None:
    code, stdout, stderr = tree.run("scan", "--json")
    assert (code, stderr) == (0, "")
    tree.check(stdout, SCAN_JSON)
    json.loads(stdout)


# ---------------------------------------------------------------- cleanup

CLEANUP_DRY_RUN_TEXT = """\
[dry-run] wa-sessions cleanup of <ROOT>: would delete 31 files (72 bytes) in 3 tenants
company     status  files  -prekey  -session  -skey  -skmem     freed  after   action
100        healthy      3        0         0      0       0   0 bytes      3  cleanup
200      emergency     26        3         2      1       1  24 bytes     19  cleanup
300         danger     32       22         2      0       0  48 bytes      8  cleanup
[dry-run] 100: note: pre-keys not pruned: creds.json is unparseable
[dry-run] 200: would delete pre-key-1.json (pre-key, 2 bytes): pre-key id 1 beyond the newest 5 (ids 4–8 kept)
[dry-run] 200: would delete pre-key-2.json (pre-key, 2 bytes): pre-key id 2 beyond the newest 5 (ids 4–8 kept)
[dry-run] 200: would delete pre-key-3.json (pre-key, 2 bytes): pre-key id 3 beyond the newest 5 (ids 4–8 kept)
[dry-run] 200: would delete sender-key-memory-120363000000000000@g.us.json (sender-key-memory, 2 bytes): partner of our own sender key sender-key-120363000000000000@g.us--15550000000--2.json, deleted in this run
[dry-run] 200: would delete sender-key-120363000000000000@g.us--15550000000--2.json (sender-key, 2 bytes): older than 3d: last used 5d ago
[dry-run] 200: would delete session-15550000001.0.json.bak (session, 7 bytes): older than 14d: last used 20d ago (with session-15550000001.0.json)
[dry-run] 200: would delete session-15550000001.0.json (session, 7 bytes): older than 14d: last used 20d ago
[dry-run] 300: would delete pre-key-1.json (pre-key, 2 bytes): pre-key id 1 beyond the newest 5 (ids 23–27 kept)
[dry-run] 300: would delete pre-key-10.json (pre-key, 2 bytes): pre-key id 10 beyond the newest 5 (ids 23–27 kept)
[dry-run] 300: would delete pre-key-11.json (pre-key, 2 bytes): pre-key id 11 beyond the newest 5 (ids 23–27 kept)
[dry-run] 300: would delete pre-key-12.json (pre-key, 2 bytes): pre-key id 12 beyond the newest 5 (ids 23–27 kept)
[dry-run] 300: would delete pre-key-13.json (pre-key, 2 bytes): pre-key id 13 beyond the newest 5 (ids 23–27 kept)
[dry-run] 300: would delete pre-key-14.json (pre-key, 2 bytes): pre-key id 14 beyond the newest 5 (ids 23–27 kept)
[dry-run] 300: would delete pre-key-15.json (pre-key, 2 bytes): pre-key id 15 beyond the newest 5 (ids 23–27 kept)
[dry-run] 300: would delete pre-key-16.json (pre-key, 2 bytes): pre-key id 16 beyond the newest 5 (ids 23–27 kept)
[dry-run] 300: would delete pre-key-17.json (pre-key, 2 bytes): pre-key id 17 beyond the newest 5 (ids 23–27 kept)
[dry-run] 300: would delete pre-key-18.json (pre-key, 2 bytes): pre-key id 18 beyond the newest 5 (ids 23–27 kept)
[dry-run] 300: would delete pre-key-19.json (pre-key, 2 bytes): pre-key id 19 beyond the newest 5 (ids 23–27 kept)
[dry-run] 300: would delete pre-key-2.json (pre-key, 2 bytes): pre-key id 2 beyond the newest 5 (ids 23–27 kept)
[dry-run] 300: would delete pre-key-20.json (pre-key, 2 bytes): pre-key id 20 beyond the newest 5 (ids 23–27 kept)
[dry-run] 300: would delete pre-key-21.json (pre-key, 2 bytes): pre-key id 21 beyond the newest 5 (ids 23–27 kept)
[dry-run] 300: would delete pre-key-22.json (pre-key, 2 bytes): pre-key id 22 beyond the newest 5 (ids 23–27 kept)
[dry-run] 300: would delete pre-key-3.json (pre-key, 2 bytes): pre-key id 3 beyond the newest 5 (ids 23–27 kept)
[dry-run] 300: would delete pre-key-4.json (pre-key, 2 bytes): pre-key id 4 beyond the newest 5 (ids 23–27 kept)
[dry-run] 300: would delete pre-key-5.json (pre-key, 2 bytes): pre-key id 5 beyond the newest 5 (ids 23–27 kept)
[dry-run] 300: would delete pre-key-6.json (pre-key, 2 bytes): pre-key id 6 beyond the newest 5 (ids 23–27 kept)
[dry-run] 300: would delete pre-key-7.json (pre-key, 2 bytes): pre-key id 7 beyond the newest 5 (ids 23–27 kept)
[dry-run] 300: would delete pre-key-8.json (pre-key, 2 bytes): pre-key id 8 beyond the newest 5 (ids 23–27 kept)
[dry-run] 300: would delete pre-key-9.json (pre-key, 2 bytes): pre-key id 9 beyond the newest 5 (ids 23–27 kept)
[dry-run] 300: would delete session-16660000002.0.json (session, 2 bytes): older than 14d: last used 22d ago
[dry-run] 300: would delete session-16660000003.0.json (session, 2 bytes): older than 14d: last used 32d ago
"""


def test_cleanup_dry_run_text(tree: Tree) -> None:
    before = {company: names(tree.root / company) for company in names(tree.root)}
    code, stdout, stderr = tree.run("cleanup", "--dry-run")
    assert (code, stderr) == (0, "")
    tree.check(stdout, CLEANUP_DRY_RUN_TEXT)
    assert {company: names(tree.root / company) for company in names(tree.root)} == before


CLEANUP_DRY_RUN_JSON = """\
{"schema": 1, "command": "cleanup", "root": "<ROOT>", "generated_at": "2030-01-15T12:00:00Z", "tenants": [
{"company": "100", "path": "<ROOT>/company_100", "bytes": 3, "categories": {"creds": 1, "app-state-sync-key": 0, "app-state-sync-version": 0, "lid-mapping": 0, "pre-key": 2, "session": 0, "sender-key": 0, "sender-key-memory": 0, "identity-key": 0, "device-list": 0, "tctoken": 0, "unknown": 0}, "problems": ["empty key file: pre-key-2.json", "creds.json is unparseable"], "files_before": 3, "status_before": "healthy", "action": "cleanup", "skipped_reason": null, "dry_run": true, "deleted": [], "files_after": 3, "bytes_freed": 0, "errors": [], "notes": ["pre-keys not pruned: creds.json is unparseable"]},
{"company": "200", "path": "<ROOT>/company_200", "bytes": 259, "categories": {"creds": 2, "app-state-sync-key": 1, "app-state-sync-version": 1, "lid-mapping": 1, "pre-key": 8, "session": 4, "sender-key": 2, "sender-key-memory": 1, "identity-key": 2, "device-list": 1, "tctoken": 1, "unknown": 2}, "problems": ["not a regular file (symlink): link.json", "unknown file (kept): notes.txt"], "files_before": 26, "status_before": "emergency", "action": "cleanup", "skipped_reason": null, "dry_run": true, "deleted": [{"file": "pre-key-1.json", "category": "pre-key", "reason": "pre-key id 1 beyond the newest 5 (ids 4–8 kept)", "bytes": 2}, {"file": "pre-key-2.json", "category": "pre-key", "reason": "pre-key id 2 beyond the newest 5 (ids 4–8 kept)", "bytes": 2}, {"file": "pre-key-3.json", "category": "pre-key", "reason": "pre-key id 3 beyond the newest 5 (ids 4–8 kept)", "bytes": 2}, {"file": "sender-key-memory-120363000000000000@g.us.json", "category": "sender-key-memory", "reason": "partner of our own sender key sender-key-120363000000000000@g.us--15550000000--2.json, deleted in this run", "bytes": 2}, {"file": "sender-key-120363000000000000@g.us--15550000000--2.json", "category": "sender-key", "reason": "older than 3d: last used 5d ago", "bytes": 2}, {"file": "session-15550000001.0.json.bak", "category": "session", "reason": "older than 14d: last used 20d ago (with session-15550000001.0.json)", "bytes": 7}, {"file": "session-15550000001.0.json", "category": "session", "reason": "older than 14d: last used 20d ago", "bytes": 7}], "files_after": 19, "bytes_freed": 24, "errors": [], "notes": []},
{"company": "300", "path": "<ROOT>/company_300", "bytes": 128, "categories": {"creds": 1, "app-state-sync-key": 0, "app-state-sync-version": 0, "lid-mapping": 0, "pre-key": 27, "session": 4, "sender-key": 0, "sender-key-memory": 0, "identity-key": 0, "device-list": 0, "tctoken": 0, "unknown": 0}, "problems": [], "files_before": 32, "status_before": "danger", "action": "cleanup", "skipped_reason": null, "dry_run": true, "deleted": [{"file": "pre-key-1.json", "category": "pre-key", "reason": "pre-key id 1 beyond the newest 5 (ids 23–27 kept)", "bytes": 2}, {"file": "pre-key-10.json", "category": "pre-key", "reason": "pre-key id 10 beyond the newest 5 (ids 23–27 kept)", "bytes": 2}, {"file": "pre-key-11.json", "category": "pre-key", "reason": "pre-key id 11 beyond the newest 5 (ids 23–27 kept)", "bytes": 2}, {"file": "pre-key-12.json", "category": "pre-key", "reason": "pre-key id 12 beyond the newest 5 (ids 23–27 kept)", "bytes": 2}, {"file": "pre-key-13.json", "category": "pre-key", "reason": "pre-key id 13 beyond the newest 5 (ids 23–27 kept)", "bytes": 2}, {"file": "pre-key-14.json", "category": "pre-key", "reason": "pre-key id 14 beyond the newest 5 (ids 23–27 kept)", "bytes": 2}, {"file": "pre-key-15.json", "category": "pre-key", "reason": "pre-key id 15 beyond the newest 5 (ids 23–27 kept)", "bytes": 2}, {"file": "pre-key-16.json", "category": "pre-key", "reason": "pre-key id 16 beyond the newest 5 (ids 23–27 kept)", "bytes": 2}, {"file": "pre-key-17.json", "category": "pre-key", "reason": "pre-key id 17 beyond the newest 5 (ids 23–27 kept)", "bytes": 2}, {"file": "pre-key-18.json", "category": "pre-key", "reason": "pre-key id 18 beyond the newest 5 (ids 23–27 kept)", "bytes": 2}, {"file": "pre-key-19.json", "category": "pre-key", "reason": "pre-key id 19 beyond the newest 5 (ids 23–27 kept)", "bytes": 2}, {"file": "pre-key-2.json", "category": "pre-key", "reason": "pre-key id 2 beyond the newest 5 (ids 23–27 kept)", "bytes": 2}, {"file": "pre-key-20.json", "category": "pre-key", "reason": "pre-key id 20 beyond the newest 5 (ids 23–27 kept)", "bytes": 2}, {"file": "pre-key-21.json", "category": "pre-key", "reason": "pre-key id 21 beyond the newest 5 (ids 23–27 kept)", "bytes": 2}, {"file": "pre-key-22.json", "category": "pre-key", "reason": "pre-key id 22 beyond the newest 5 (ids 23–27 kept)", "bytes": 2}, {"file": "pre-key-3.json", "category": "pre-key", "reason": "pre-key id 3 beyond the newest 5 (ids 23–27 kept)", "bytes": 2}, {"file": "pre-key-4.json", "category": "pre-key", "reason": "pre-key id 4 beyond the newest 5 (ids 23–27 kept)", "bytes": 2}, {"file": "pre-key-5.json", "category": "pre-key", "reason": "pre-key id 5 beyond the newest 5 (ids 23–27 kept)", "bytes": 2}, {"file": "pre-key-6.json", "category": "pre-key", "reason": "pre-key id 6 beyond the newest 5 (ids 23–27 kept)", "bytes": 2}, {"file": "pre-key-7.json", "category": "pre-key", "reason": "pre-key id 7 beyond the newest 5 (ids 23–27 kept)", "bytes": 2}, {"file": "pre-key-8.json", "category": "pre-key", "reason": "pre-key id 8 beyond the newest 5 (ids 23–27 kept)", "bytes": 2}, {"file": "pre-key-9.json", "category": "pre-key", "reason": "pre-key id 9 beyond the newest 5 (ids 23–27 kept)", "bytes": 2}, {"file": "session-16660000002.0.json", "category": "session", "reason": "older than 14d: last used 22d ago", "bytes": 2}, {"file": "session-16660000003.0.json", "category": "session", "reason": "older than 14d: last used 32d ago", "bytes": 2}], "files_after": 8, "bytes_freed": 48, "errors": [], "notes": []}
], "dry_run": true, "errors": []}
"""


def test_cleanup_dry_run_json(tree: Tree) -> None:
    code, stdout, stderr = tree.run("cleanup", "--dry-run", "--json")
    assert (code, stderr) == (0, "")
    tree.check(stdout, CLEANUP_DRY_RUN_JSON)
    json.loads(stdout)


CLEANUP_JSON = """\
{"schema": 1, "command": "cleanup", "root": "<ROOT>", "generated_at": "2030-01-15T12:00:00Z", "tenants": [
{"company": "100", "path": "<ROOT>/company_100", "bytes": 3, "categories": {"creds": 1, "app-state-sync-key": 0, "app-state-sync-version": 0, "lid-mapping": 0, "pre-key": 2, "session": 0, "sender-key": 0, "sender-key-memory": 0, "identity-key": 0, "device-list": 0, "tctoken": 0, "unknown": 0}, "problems": ["empty key file: pre-key-2.json", "creds.json is unparseable"], "files_before": 3, "status_before": "healthy", "action": "cleanup", "skipped_reason": null, "dry_run": false, "deleted": [], "files_after": 3, "bytes_freed": 0, "errors": [], "notes": ["pre-keys not pruned: creds.json is unparseable"]},
{"company": "200", "path": "<ROOT>/company_200", "bytes": 259, "categories": {"creds": 2, "app-state-sync-key": 1, "app-state-sync-version": 1, "lid-mapping": 1, "pre-key": 8, "session": 4, "sender-key": 2, "sender-key-memory": 1, "identity-key": 2, "device-list": 1, "tctoken": 1, "unknown": 2}, "problems": ["not a regular file (symlink): link.json", "unknown file (kept): notes.txt"], "files_before": 26, "status_before": "emergency", "action": "cleanup", "skipped_reason": null, "dry_run": false, "deleted": [{"file": "pre-key-1.json", "category": "pre-key", "reason": "pre-key id 1 beyond the newest 5 (ids 4–8 kept)", "bytes": 2}, {"file": "pre-key-2.json", "category": "pre-key", "reason": "pre-key id 2 beyond the newest 5 (ids 4–8 kept)", "bytes": 2}, {"file": "pre-key-3.json", "category": "pre-key", "reason": "pre-key id 3 beyond the newest 5 (ids 4–8 kept)", "bytes": 2}, {"file": "sender-key-memory-120363000000000000@g.us.json", "category": "sender-key-memory", "reason": "partner of our own sender key sender-key-120363000000000000@g.us--15550000000--2.json, deleted in this run", "bytes": 2}, {"file": "sender-key-120363000000000000@g.us--15550000000--2.json", "category": "sender-key", "reason": "older than 3d: last used 5d ago", "bytes": 2}, {"file": "session-15550000001.0.json.bak", "category": "session", "reason": "older than 14d: last used 20d ago (with session-15550000001.0.json)", "bytes": 7}, {"file": "session-15550000001.0.json", "category": "session", "reason": "older than 14d: last used 20d ago", "bytes": 7}], "files_after": 19, "bytes_freed": 24, "errors": [], "notes": []},
{"company": "300", "path": "<ROOT>/company_300", "bytes": 128, "categories": {"creds": 1, "app-state-sync-key": 0, "app-state-sync-version": 0, "lid-mapping": 0, "pre-key": 27, "session": 4, "sender-key": 0, "sender-key-memory": 0, "identity-key": 0, "device-list": 0, "tctoken": 0, "unknown": 0}, "problems": [], "files_before": 32, "status_before": "danger", "action": "cleanup", "skipped_reason": null, "dry_run": false, "deleted": [{"file": "pre-key-1.json", "category": "pre-key", "reason": "pre-key id 1 beyond the newest 5 (ids 23–27 kept)", "bytes": 2}, {"file": "pre-key-10.json", "category": "pre-key", "reason": "pre-key id 10 beyond the newest 5 (ids 23–27 kept)", "bytes": 2}, {"file": "pre-key-11.json", "category": "pre-key", "reason": "pre-key id 11 beyond the newest 5 (ids 23–27 kept)", "bytes": 2}, {"file": "pre-key-12.json", "category": "pre-key", "reason": "pre-key id 12 beyond the newest 5 (ids 23–27 kept)", "bytes": 2}, {"file": "pre-key-13.json", "category": "pre-key", "reason": "pre-key id 13 beyond the newest 5 (ids 23–27 kept)", "bytes": 2}, {"file": "pre-key-14.json", "category": "pre-key", "reason": "pre-key id 14 beyond the newest 5 (ids 23–27 kept)", "bytes": 2}, {"file": "pre-key-15.json", "category": "pre-key", "reason": "pre-key id 15 beyond the newest 5 (ids 23–27 kept)", "bytes": 2}, {"file": "pre-key-16.json", "category": "pre-key", "reason": "pre-key id 16 beyond the newest 5 (ids 23–27 kept)", "bytes": 2}, {"file": "pre-key-17.json", "category": "pre-key", "reason": "pre-key id 17 beyond the newest 5 (ids 23–27 kept)", "bytes": 2}, {"file": "pre-key-18.json", "category": "pre-key", "reason": "pre-key id 18 beyond the newest 5 (ids 23–27 kept)", "bytes": 2}, {"file": "pre-key-19.json", "category": "pre-key", "reason": "pre-key id 19 beyond the newest 5 (ids 23–27 kept)", "bytes": 2}, {"file": "pre-key-2.json", "category": "pre-key", "reason": "pre-key id 2 beyond the newest 5 (ids 23–27 kept)", "bytes": 2}, {"file": "pre-key-20.json", "category": "pre-key", "reason": "pre-key id 20 beyond the newest 5 (ids 23–27 kept)", "bytes": 2}, {"file": "pre-key-21.json", "category": "pre-key", "reason": "pre-key id 21 beyond the newest 5 (ids 23–27 kept)", "bytes": 2}, {"file": "pre-key-22.json", "category": "pre-key", "reason": "pre-key id 22 beyond the newest 5 (ids 23–27 kept)", "bytes": 2}, {"file": "pre-key-3.json", "category": "pre-key", "reason": "pre-key id 3 beyond the newest 5 (ids 23–27 kept)", "bytes": 2}, {"file": "pre-key-4.json", "category": "pre-key", "reason": "pre-key id 4 beyond the newest 5 (ids 23–27 kept)", "bytes": 2}, {"file": "pre-key-5.json", "category": "pre-key", "reason": "pre-key id 5 beyond the newest 5 (ids 23–27 kept)", "bytes": 2}, {"file": "pre-key-6.json", "category": "pre-key", "reason": "pre-key id 6 beyond the newest 5 (ids 23–27 kept)", "bytes": 2}, {"file": "pre-key-7.json", "category": "pre-key", "reason": "pre-key id 7 beyond the newest 5 (ids 23–27 kept)", "bytes": 2}, {"file": "pre-key-8.json", "category": "pre-key", "reason": "pre-key id 8 beyond the newest 5 (ids 23–27 kept)", "bytes": 2}, {"file": "pre-key-9.json", "category": "pre-key", "reason": "pre-key id 9 beyond the newest 5 (ids 23–27 kept)", "bytes": 2}, {"file": "session-16660000002.0.json", "category": "session", "reason": "older than 14d: last used 22d ago", "bytes": 2}, {"file": "session-16660000003.0.json", "category": "session", "reason": "older than 14d: last used 32d ago", "bytes": 2}], "files_after": 8, "bytes_freed": 48, "errors": [], "notes": []}
], "dry_run": false, "errors": []}
"""

#: What the real cleanup leaves in company_200 (dot-entries left out).
KEPT_200 = [
    "app-state-sync-key-AAAAAB3x.json",
    "app-state-sync-version-regular_high.json",
    "creds.json",
    "creds.json.bak",
    "device-list-15550000001.json",
    "identity-key-15550000001.0.json",
    "identity-key-15550000002.0.json",
    "lid-mapping-15550000000.json",
    "link.json",
    "notes.txt",
    "pre-key-4.json",
    "pre-key-5.json",
    "pre-key-6.json",
    "pre-key-7.json",
    "pre-key-8.json",
    "sender-key-120363000000000001@g.us--15550000001--0.json",
    "session-15550000002.0.json",
    "session-15550000003.0.json",
    "tctoken-15550000001@s.whatsapp.net.json",
]


def test_cleanup_json(tree: Tree) -> None:
    code, stdout, stderr = tree.run("cleanup", "--json")
    assert (code, stderr) == (0, "")
    tree.check(stdout, CLEANUP_JSON)
    json.loads(stdout)
    assert names(tree.root / "company_200") == KEPT_200


CLEANUP_VERBOSE_TEXT = """\
wa-sessions cleanup of <ROOT>: deleted 31 files (72 bytes) in 3 tenants
company     status  files  -prekey  -session  -skey  -skmem     freed  after   action
100        healthy      3        0         0      0       0   0 bytes      3  cleanup
200      emergency     26        3         2      1       1  24 bytes     19  cleanup
300         danger     32       22         2      0       0  48 bytes      8  cleanup
100: note: pre-keys not pruned: creds.json is unparseable
100: problem: empty key file: pre-key-2.json
100: problem: creds.json is unparseable
200: deleted pre-key-1.json (pre-key, 2 bytes): pre-key id 1 beyond the newest 5 (ids 4–8 kept)
200: deleted pre-key-2.json (pre-key, 2 bytes): pre-key id 2 beyond the newest 5 (ids 4–8 kept)
200: deleted pre-key-3.json (pre-key, 2 bytes): pre-key id 3 beyond the newest 5 (ids 4–8 kept)
200: deleted sender-key-memory-120363000000000000@g.us.json (sender-key-memory, 2 bytes): partner of our own sender key sender-key-120363000000000000@g.us--15550000000--2.json, deleted in this run
200: deleted sender-key-120363000000000000@g.us--15550000000--2.json (sender-key, 2 bytes): older than 3d: last used 5d ago
200: deleted session-15550000001.0.json.bak (session, 7 bytes): older than 14d: last used 20d ago (with session-15550000001.0.json)
200: deleted session-15550000001.0.json (session, 7 bytes): older than 14d: last used 20d ago
200: problem: not a regular file (symlink): link.json
200: problem: unknown file (kept): notes.txt
300: deleted pre-key-1.json (pre-key, 2 bytes): pre-key id 1 beyond the newest 5 (ids 23–27 kept)
300: deleted pre-key-10.json (pre-key, 2 bytes): pre-key id 10 beyond the newest 5 (ids 23–27 kept)
300: deleted pre-key-11.json (pre-key, 2 bytes): pre-key id 11 beyond the newest 5 (ids 23–27 kept)
300: deleted pre-key-12.json (pre-key, 2 bytes): pre-key id 12 beyond the newest 5 (ids 23–27 kept)
300: deleted pre-key-13.json (pre-key, 2 bytes): pre-key id 13 beyond the newest 5 (ids 23–27 kept)
300: deleted pre-key-14.json (pre-key, 2 bytes): pre-key id 14 beyond the newest 5 (ids 23–27 kept)
300: deleted pre-key-15.json (pre-key, 2 bytes): pre-key id 15 beyond the newest 5 (ids 23–27 kept)
300: deleted pre-key-16.json (pre-key, 2 bytes): pre-key id 16 beyond the newest 5 (ids 23–27 kept)
300: deleted pre-key-17.json (pre-key, 2 bytes): pre-key id 17 beyond the newest 5 (ids 23–27 kept)
300: deleted pre-key-18.json (pre-key, 2 bytes): pre-key id 18 beyond the newest 5 (ids 23–27 kept)
300: deleted pre-key-19.json (pre-key, 2 bytes): pre-key id 19 beyond the newest 5 (ids 23–27 kept)
300: deleted pre-key-2.json (pre-key, 2 bytes): pre-key id 2 beyond the newest 5 (ids 23–27 kept)
300: deleted pre-key-20.json (pre-key, 2 bytes): pre-key id 20 beyond the newest 5 (ids 23–27 kept)
300: deleted pre-key-21.json (pre-key, 2 bytes): pre-key id 21 beyond the newest 5 (ids 23–27 kept)
300: deleted pre-key-22.json (pre-key, 2 bytes): pre-key id 22 beyond the newest 5 (ids 23–27 kept)
300: deleted pre-key-3.json (pre-key, 2 bytes): pre-key id 3 beyond the newest 5 (ids 23–27 kept)
300: deleted pre-key-4.json (pre-key, 2 bytes): pre-key id 4 beyond the newest 5 (ids 23–27 kept)
300: deleted pre-key-5.json (pre-key, 2 bytes): pre-key id 5 beyond the newest 5 (ids 23–27 kept)
300: deleted pre-key-6.json (pre-key, 2 bytes): pre-key id 6 beyond the newest 5 (ids 23–27 kept)
300: deleted pre-key-7.json (pre-key, 2 bytes): pre-key id 7 beyond the newest 5 (ids 23–27 kept)
300: deleted pre-key-8.json (pre-key, 2 bytes): pre-key id 8 beyond the newest 5 (ids 23–27 kept)
300: deleted pre-key-9.json (pre-key, 2 bytes): pre-key id 9 beyond the newest 5 (ids 23–27 kept)
300: deleted session-16660000002.0.json (session, 2 bytes): older than 14d: last used 22d ago
300: deleted session-16660000003.0.json (session, 2 bytes): older than 14d: last used 32d ago
"""


def test_cleanup_verbose_text(tree: Tree) -> None:
    code, stdout, stderr = tree.run("cleanup", "--verbose")
    assert (code, stderr) == (0, "")
    tree.check(stdout, CLEANUP_VERBOSE_TEXT)
    assert names(tree.root / "company_200") == KEPT_200


# ---------------------------------------------------------------- emergency-cleanup

EMERGENCY_DRY_RUN_JSON = """\
{"schema": 1, "command": "emergency-cleanup", "root": "<ROOT>", "generated_at": "2030-01-15T12:00:00Z", "tenants": [
{"company": "100", "path": "<ROOT>/company_100", "bytes": 3, "categories": {"creds": 1, "app-state-sync-key": 0, "app-state-sync-version": 0, "lid-mapping": 0, "pre-key": 2, "session": 0, "sender-key": 0, "sender-key-memory": 0, "identity-key": 0, "device-list": 0, "tctoken": 0, "unknown": 0}, "problems": ["empty key file: pre-key-2.json", "creds.json is unparseable"], "files_before": 3, "status_before": "healthy", "action": "none", "skipped_reason": null, "dry_run": true, "deleted": [], "files_after": 3, "bytes_freed": 0, "errors": [], "notes": []},
{"company": "200", "path": "<ROOT>/company_200", "bytes": 259, "categories": {"creds": 2, "app-state-sync-key": 1, "app-state-sync-version": 1, "lid-mapping": 1, "pre-key": 8, "session": 4, "sender-key": 2, "sender-key-memory": 1, "identity-key": 2, "device-list": 1, "tctoken": 1, "unknown": 2}, "problems": ["not a regular file (symlink): link.json", "unknown file (kept): notes.txt"], "files_before": 26, "status_before": "emergency", "action": "emergency", "skipped_reason": null, "dry_run": true, "deleted": [{"file": "pre-key-1.json", "category": "pre-key", "reason": "pre-key id 1 beyond the newest 3 (ids 6–8 kept)", "bytes": 2}, {"file": "pre-key-2.json", "category": "pre-key", "reason": "pre-key id 2 beyond the newest 3 (ids 6–8 kept)", "bytes": 2}, {"file": "pre-key-3.json", "category": "pre-key", "reason": "pre-key id 3 beyond the newest 3 (ids 6–8 kept)", "bytes": 2}, {"file": "pre-key-4.json", "category": "pre-key", "reason": "pre-key id 4 beyond the newest 3 (ids 6–8 kept)", "bytes": 2}, {"file": "pre-key-5.json", "category": "pre-key", "reason": "pre-key id 5 beyond the newest 3 (ids 6–8 kept)", "bytes": 2}, {"file": "sender-key-120363000000000001@g.us--15550000001--0.json", "category": "sender-key", "reason": "older than 1d: last used 2d ago", "bytes": 2}, {"file": "sender-key-memory-120363000000000000@g.us.json", "category": "sender-key-memory", "reason": "partner of our own sender key sender-key-120363000000000000@g.us--15550000000--2.json, deleted in this run", "bytes": 2}, {"file": "sender-key-120363000000000000@g.us--15550000000--2.json", "category": "sender-key", "reason": "older than 1d: last used 5d ago", "bytes": 2}, {"file": "session-15550000001.0.json.bak", "category": "session", "reason": "older than 3d: last used 20d ago (with session-15550000001.0.json)", "bytes": 7}, {"file": "session-15550000001.0.json", "category": "session", "reason": "older than 3d: last used 20d ago", "bytes": 7}, {"file": "session-15550000002.0.json", "category": "session", "reason": "older than 3d: last used 5d ago", "bytes": 2}], "files_after": 15, "bytes_freed": 32, "errors": [], "notes": []},
{"company": "300", "path": "<ROOT>/company_300", "bytes": 128, "categories": {"creds": 1, "app-state-sync-key": 0, "app-state-sync-version": 0, "lid-mapping": 0, "pre-key": 27, "session": 4, "sender-key": 0, "sender-key-memory": 0, "identity-key": 0, "device-list": 0, "tctoken": 0, "unknown": 0}, "problems": [], "files_before": 32, "status_before": "danger", "action": "emergency", "skipped_reason": null, "dry_run": true, "deleted": [{"file": "pre-key-1.json", "category": "pre-key", "reason": "pre-key id 1 beyond the newest 3 (ids 25–27 kept)", "bytes": 2}, {"file": "pre-key-10.json", "category": "pre-key", "reason": "pre-key id 10 beyond the newest 3 (ids 25–27 kept)", "bytes": 2}, {"file": "pre-key-11.json", "category": "pre-key", "reason": "pre-key id 11 beyond the newest 3 (ids 25–27 kept)", "bytes": 2}, {"file": "pre-key-12.json", "category": "pre-key", "reason": "pre-key id 12 beyond the newest 3 (ids 25–27 kept)", "bytes": 2}, {"file": "pre-key-13.json", "category": "pre-key", "reason": "pre-key id 13 beyond the newest 3 (ids 25–27 kept)", "bytes": 2}, {"file": "pre-key-14.json", "category": "pre-key", "reason": "pre-key id 14 beyond the newest 3 (ids 25–27 kept)", "bytes": 2}, {"file": "pre-key-15.json", "category": "pre-key", "reason": "pre-key id 15 beyond the newest 3 (ids 25–27 kept)", "bytes": 2}, {"file": "pre-key-16.json", "category": "pre-key", "reason": "pre-key id 16 beyond the newest 3 (ids 25–27 kept)", "bytes": 2}, {"file": "pre-key-17.json", "category": "pre-key", "reason": "pre-key id 17 beyond the newest 3 (ids 25–27 kept)", "bytes": 2}, {"file": "pre-key-18.json", "category": "pre-key", "reason": "pre-key id 18 beyond the newest 3 (ids 25–27 kept)", "bytes": 2}, {"file": "pre-key-19.json", "category": "pre-key", "reason": "pre-key id 19 beyond the newest 3 (ids 25–27 kept)", "bytes": 2}, {"file": "pre-key-2.json", "category": "pre-key", "reason": "pre-key id 2 beyond the newest 3 (ids 25–27 kept)", "bytes": 2}, {"file": "pre-key-20.json", "category": "pre-key", "reason": "pre-key id 20 beyond the newest 3 (ids 25–27 kept)", "bytes": 2}, {"file": "pre-key-21.json", "category": "pre-key", "reason": "pre-key id 21 beyond the newest 3 (ids 25–27 kept)", "bytes": 2}, {"file": "pre-key-22.json", "category": "pre-key", "reason": "pre-key id 22 beyond the newest 3 (ids 25–27 kept)", "bytes": 2}, {"file": "pre-key-23.json", "category": "pre-key", "reason": "pre-key id 23 beyond the newest 3 (ids 25–27 kept)", "bytes": 2}, {"file": "pre-key-24.json", "category": "pre-key", "reason": "pre-key id 24 beyond the newest 3 (ids 25–27 kept)", "bytes": 2}, {"file": "pre-key-3.json", "category": "pre-key", "reason": "pre-key id 3 beyond the newest 3 (ids 25–27 kept)", "bytes": 2}, {"file": "pre-key-4.json", "category": "pre-key", "reason": "pre-key id 4 beyond the newest 3 (ids 25–27 kept)", "bytes": 2}, {"file": "pre-key-5.json", "category": "pre-key", "reason": "pre-key id 5 beyond the newest 3 (ids 25–27 kept)", "bytes": 2}, {"file": "pre-key-6.json", "category": "pre-key", "reason": "pre-key id 6 beyond the newest 3 (ids 25–27 kept)", "bytes": 2}, {"file": "pre-key-7.json", "category": "pre-key", "reason": "pre-key id 7 beyond the newest 3 (ids 25–27 kept)", "bytes": 2}, {"file": "pre-key-8.json", "category": "pre-key", "reason": "pre-key id 8 beyond the newest 3 (ids 25–27 kept)", "bytes": 2}, {"file": "pre-key-9.json", "category": "pre-key", "reason": "pre-key id 9 beyond the newest 3 (ids 25–27 kept)", "bytes": 2}, {"file": "session-16660000001.0.json", "category": "session", "reason": "older than 3d: last used 12d ago", "bytes": 2}, {"file": "session-16660000002.0.json", "category": "session", "reason": "older than 3d: last used 22d ago", "bytes": 2}, {"file": "session-16660000003.0.json", "category": "session", "reason": "older than 3d: last used 32d ago", "bytes": 2}], "files_after": 5, "bytes_freed": 54, "errors": [], "notes": []}
], "dry_run": true, "errors": [], "warnings": [], "notified": false}
"""


def test_emergency_cleanup_dry_run_json(tree: Tree) -> None:
    code, stdout, stderr = tree.run("emergency-cleanup", "--dry-run", "--json")
    assert (code, stderr) == (0, "")
    tree.check(stdout, EMERGENCY_DRY_RUN_JSON)
    json.loads(stdout)


EMERGENCY_DRY_RUN_TEXT = """\
[dry-run] wa-sessions emergency-cleanup of <ROOT>: would delete 38 files (86 bytes) in 3 tenants
company     status  files  -prekey  -session  -skey  -skmem     freed  after     action
100        healthy      3        0         0      0       0   0 bytes      3       none
200      emergency     26        5         3      2       1  32 bytes     15  emergency
300         danger     32       24         3      0       0  54 bytes      5  emergency
[dry-run] 200: would delete pre-key-1.json (pre-key, 2 bytes): pre-key id 1 beyond the newest 3 (ids 6–8 kept)
[dry-run] 200: would delete pre-key-2.json (pre-key, 2 bytes): pre-key id 2 beyond the newest 3 (ids 6–8 kept)
[dry-run] 200: would delete pre-key-3.json (pre-key, 2 bytes): pre-key id 3 beyond the newest 3 (ids 6–8 kept)
[dry-run] 200: would delete pre-key-4.json (pre-key, 2 bytes): pre-key id 4 beyond the newest 3 (ids 6–8 kept)
[dry-run] 200: would delete pre-key-5.json (pre-key, 2 bytes): pre-key id 5 beyond the newest 3 (ids 6–8 kept)
[dry-run] 200: would delete sender-key-120363000000000001@g.us--15550000001--0.json (sender-key, 2 bytes): older than 1d: last used 2d ago
[dry-run] 200: would delete sender-key-memory-120363000000000000@g.us.json (sender-key-memory, 2 bytes): partner of our own sender key sender-key-120363000000000000@g.us--15550000000--2.json, deleted in this run
[dry-run] 200: would delete sender-key-120363000000000000@g.us--15550000000--2.json (sender-key, 2 bytes): older than 1d: last used 5d ago
[dry-run] 200: would delete session-15550000001.0.json.bak (session, 7 bytes): older than 3d: last used 20d ago (with session-15550000001.0.json)
[dry-run] 200: would delete session-15550000001.0.json (session, 7 bytes): older than 3d: last used 20d ago
[dry-run] 200: would delete session-15550000002.0.json (session, 2 bytes): older than 3d: last used 5d ago
[dry-run] 300: would delete pre-key-1.json (pre-key, 2 bytes): pre-key id 1 beyond the newest 3 (ids 25–27 kept)
[dry-run] 300: would delete pre-key-10.json (pre-key, 2 bytes): pre-key id 10 beyond the newest 3 (ids 25–27 kept)
[dry-run] 300: would delete pre-key-11.json (pre-key, 2 bytes): pre-key id 11 beyond the newest 3 (ids 25–27 kept)
[dry-run] 300: would delete pre-key-12.json (pre-key, 2 bytes): pre-key id 12 beyond the newest 3 (ids 25–27 kept)
[dry-run] 300: would delete pre-key-13.json (pre-key, 2 bytes): pre-key id 13 beyond the newest 3 (ids 25–27 kept)
[dry-run] 300: would delete pre-key-14.json (pre-key, 2 bytes): pre-key id 14 beyond the newest 3 (ids 25–27 kept)
[dry-run] 300: would delete pre-key-15.json (pre-key, 2 bytes): pre-key id 15 beyond the newest 3 (ids 25–27 kept)
[dry-run] 300: would delete pre-key-16.json (pre-key, 2 bytes): pre-key id 16 beyond the newest 3 (ids 25–27 kept)
[dry-run] 300: would delete pre-key-17.json (pre-key, 2 bytes): pre-key id 17 beyond the newest 3 (ids 25–27 kept)
[dry-run] 300: would delete pre-key-18.json (pre-key, 2 bytes): pre-key id 18 beyond the newest 3 (ids 25–27 kept)
[dry-run] 300: would delete pre-key-19.json (pre-key, 2 bytes): pre-key id 19 beyond the newest 3 (ids 25–27 kept)
[dry-run] 300: would delete pre-key-2.json (pre-key, 2 bytes): pre-key id 2 beyond the newest 3 (ids 25–27 kept)
[dry-run] 300: would delete pre-key-20.json (pre-key, 2 bytes): pre-key id 20 beyond the newest 3 (ids 25–27 kept)
[dry-run] 300: would delete pre-key-21.json (pre-key, 2 bytes): pre-key id 21 beyond the newest 3 (ids 25–27 kept)
[dry-run] 300: would delete pre-key-22.json (pre-key, 2 bytes): pre-key id 22 beyond the newest 3 (ids 25–27 kept)
[dry-run] 300: would delete pre-key-23.json (pre-key, 2 bytes): pre-key id 23 beyond the newest 3 (ids 25–27 kept)
[dry-run] 300: would delete pre-key-24.json (pre-key, 2 bytes): pre-key id 24 beyond the newest 3 (ids 25–27 kept)
[dry-run] 300: would delete pre-key-3.json (pre-key, 2 bytes): pre-key id 3 beyond the newest 3 (ids 25–27 kept)
[dry-run] 300: would delete pre-key-4.json (pre-key, 2 bytes): pre-key id 4 beyond the newest 3 (ids 25–27 kept)
[dry-run] 300: would delete pre-key-5.json (pre-key, 2 bytes): pre-key id 5 beyond the newest 3 (ids 25–27 kept)
[dry-run] 300: would delete pre-key-6.json (pre-key, 2 bytes): pre-key id 6 beyond the newest 3 (ids 25–27 kept)
[dry-run] 300: would delete pre-key-7.json (pre-key, 2 bytes): pre-key id 7 beyond the newest 3 (ids 25–27 kept)
[dry-run] 300: would delete pre-key-8.json (pre-key, 2 bytes): pre-key id 8 beyond the newest 3 (ids 25–27 kept)
[dry-run] 300: would delete pre-key-9.json (pre-key, 2 bytes): pre-key id 9 beyond the newest 3 (ids 25–27 kept)
[dry-run] 300: would delete session-16660000001.0.json (session, 2 bytes): older than 3d: last used 12d ago
[dry-run] 300: would delete session-16660000002.0.json (session, 2 bytes): older than 3d: last used 22d ago
[dry-run] 300: would delete session-16660000003.0.json (session, 2 bytes): older than 3d: last used 32d ago
"""


def test_emergency_cleanup_dry_run_text(tree: Tree) -> None:
    code, stdout, stderr = tree.run("emergency-cleanup", "--dry-run")
    assert (code, stderr) == (0, "")
    tree.check(stdout, EMERGENCY_DRY_RUN_TEXT)


PURGE = ("emergency-cleanup", "--purge-stale-dirs", "--older-than", "1h", "--dry-run")

# Today the purge also takes company_300, which is paired (creds.json has `me`): SPEC §4 says
# only folders that never completed pairing go, unless --include-paired (an option that does not
# exist yet). Pinned as it is; a fix changes this text on purpose.
PURGE_DRY_RUN_JSON = """\
{"schema": 1, "command": "emergency-cleanup", "root": "<ROOT>", "generated_at": "2030-01-15T12:00:00Z", "tenants": [
{"company": "100", "path": "<ROOT>/company_100", "bytes": 3, "categories": {"creds": 1, "app-state-sync-key": 0, "app-state-sync-version": 0, "lid-mapping": 0, "pre-key": 2, "session": 0, "sender-key": 0, "sender-key-memory": 0, "identity-key": 0, "device-list": 0, "tctoken": 0, "unknown": 0}, "problems": ["empty key file: pre-key-2.json", "creds.json is unparseable"], "files_before": 3, "status_before": "healthy", "action": "emergency", "skipped_reason": null, "dry_run": true, "deleted": [{"file": "pre-key-1.json", "category": "pre-key", "reason": "stale folder: newest file 2d ago, older than 1h; folder removed", "bytes": 2}, {"file": "pre-key-2.json", "category": "pre-key", "reason": "stale folder: newest file 2d ago, older than 1h; folder removed", "bytes": 0}, {"file": "creds.json", "category": "creds", "reason": "stale folder: newest file 2d ago, older than 1h; folder removed", "bytes": 1}], "files_after": 0, "bytes_freed": 3, "errors": [], "notes": ["would archive to <ROOT>/.wa-sessions/backups/company_100-20300115T120000Z.tar.gz"], "backup": null, "newest_file_at": "2030-01-13T12:00:00Z"},
{"company": "200", "path": "<ROOT>/company_200", "bytes": 259, "categories": {"creds": 2, "app-state-sync-key": 1, "app-state-sync-version": 1, "lid-mapping": 1, "pre-key": 8, "session": 4, "sender-key": 2, "sender-key-memory": 1, "identity-key": 2, "device-list": 1, "tctoken": 1, "unknown": 2}, "problems": ["not a regular file (symlink): link.json", "unknown file (kept): notes.txt"], "files_before": 26, "status_before": "emergency", "action": "none", "skipped_reason": null, "dry_run": true, "deleted": [], "files_after": 26, "bytes_freed": 0, "errors": [], "notes": [], "backup": null, "newest_file_at": "2030-01-15T11:00:00Z"},
{"company": "300", "path": "<ROOT>/company_300", "bytes": 128, "categories": {"creds": 1, "app-state-sync-key": 0, "app-state-sync-version": 0, "lid-mapping": 0, "pre-key": 27, "session": 4, "sender-key": 0, "sender-key-memory": 0, "identity-key": 0, "device-list": 0, "tctoken": 0, "unknown": 0}, "problems": [], "files_before": 32, "status_before": "danger", "action": "skipped", "skipped_reason": "paired (creds.json has `me`): only folders that never completed pairing are purged; add --include-paired to purge it too", "dry_run": true, "deleted": [], "files_after": 32, "bytes_freed": 0, "errors": [], "notes": [], "backup": null, "newest_file_at": "2030-01-13T12:00:00Z"}
], "dry_run": true, "errors": [], "warnings": [], "notified": false, "purge_stale_dirs": true, "older_than": "1h", "backup": true, "include_paired": false}
"""


def test_emergency_cleanup_purge_stale_dirs_dry_run_json(tree: Tree) -> None:
    code, stdout, stderr = tree.run(*PURGE, "--json")
    assert (code, stderr) == (0, "")
    tree.check(stdout, PURGE_DRY_RUN_JSON)
    json.loads(stdout)
    assert not (tree.root / ".wa-sessions" / "backups").exists()
    assert names(tree.root) == ["company_100", "company_200", "company_300"]


PURGE_DRY_RUN_TEXT = """\
[dry-run] wa-sessions emergency-cleanup of <ROOT>: would delete 3 files (3 bytes) in 3 tenants
company     status  files  -creds  -prekey    freed  after                                                                                                                             action
100        healthy      3       1        2  3 bytes      0                                                                                                                          emergency
200      emergency     26       0        0  0 bytes     26                                                                                                                               none
300         danger     32       0        0  0 bytes     32  skipped: paired (creds.json has `me`): only folders that never completed pairing are purged; add --include-paired to purge it too
[dry-run] 100: would delete pre-key-1.json (pre-key, 2 bytes): stale folder: newest file 2d ago, older than 1h; folder removed
[dry-run] 100: would delete pre-key-2.json (pre-key, 0 bytes): stale folder: newest file 2d ago, older than 1h; folder removed
[dry-run] 100: would delete creds.json (creds, 1 byte): stale folder: newest file 2d ago, older than 1h; folder removed
[dry-run] 100: note: would archive to <ROOT>/.wa-sessions/backups/company_100-20300115T120000Z.tar.gz
"""


def test_emergency_cleanup_purge_stale_dirs_dry_run_text(tree: Tree) -> None:
    code, stdout, stderr = tree.run(*PURGE)
    assert (code, stderr) == (0, "")
    tree.check(stdout, PURGE_DRY_RUN_TEXT)
    assert names(tree.root) == ["company_100", "company_200", "company_300"]


# ---------------------------------------------------------------- multitenant-cleanup

MULTITENANT_DRY_RUN_JSON = """\
{"schema": 1, "command": "multitenant-cleanup", "root": "<ROOT>", "generated_at": "2030-01-15T12:00:00Z", "tenants": [
{"company": "100", "path": "<ROOT>/company_100", "bytes": 3, "categories": {"creds": 1, "app-state-sync-key": 0, "app-state-sync-version": 0, "lid-mapping": 0, "pre-key": 2, "session": 0, "sender-key": 0, "sender-key-memory": 0, "identity-key": 0, "device-list": 0, "tctoken": 0, "unknown": 0}, "problems": ["empty key file: pre-key-2.json", "creds.json is unparseable"], "files_before": 3, "status_before": "healthy", "action": "none", "skipped_reason": null, "dry_run": true, "deleted": [], "files_after": 3, "bytes_freed": 0, "errors": [], "notes": []},
{"company": "200", "path": "<ROOT>/company_200", "bytes": 259, "categories": {"creds": 2, "app-state-sync-key": 1, "app-state-sync-version": 1, "lid-mapping": 1, "pre-key": 8, "session": 4, "sender-key": 2, "sender-key-memory": 1, "identity-key": 2, "device-list": 1, "tctoken": 1, "unknown": 2}, "problems": ["not a regular file (symlink): link.json", "unknown file (kept): notes.txt"], "files_before": 26, "status_before": "emergency", "action": "cleanup", "skipped_reason": null, "dry_run": true, "deleted": [{"file": "pre-key-1.json", "category": "pre-key", "reason": "pre-key id 1 beyond the newest 5 (ids 4–8 kept)", "bytes": 2}, {"file": "pre-key-2.json", "category": "pre-key", "reason": "pre-key id 2 beyond the newest 5 (ids 4–8 kept)", "bytes": 2}, {"file": "pre-key-3.json", "category": "pre-key", "reason": "pre-key id 3 beyond the newest 5 (ids 4–8 kept)", "bytes": 2}, {"file": "sender-key-memory-120363000000000000@g.us.json", "category": "sender-key-memory", "reason": "partner of our own sender key sender-key-120363000000000000@g.us--15550000000--2.json, deleted in this run", "bytes": 2}, {"file": "sender-key-120363000000000000@g.us--15550000000--2.json", "category": "sender-key", "reason": "older than 3d: last used 5d ago", "bytes": 2}, {"file": "session-15550000001.0.json.bak", "category": "session", "reason": "older than 14d: last used 20d ago (with session-15550000001.0.json)", "bytes": 7}, {"file": "session-15550000001.0.json", "category": "session", "reason": "older than 14d: last used 20d ago", "bytes": 7}], "files_after": 19, "bytes_freed": 24, "errors": [], "notes": []},
{"company": "300", "path": "<ROOT>/company_300", "bytes": 128, "categories": {"creds": 1, "app-state-sync-key": 0, "app-state-sync-version": 0, "lid-mapping": 0, "pre-key": 27, "session": 4, "sender-key": 0, "sender-key-memory": 0, "identity-key": 0, "device-list": 0, "tctoken": 0, "unknown": 0}, "problems": [], "files_before": 32, "status_before": "danger", "action": "emergency", "skipped_reason": null, "dry_run": true, "deleted": [{"file": "pre-key-1.json", "category": "pre-key", "reason": "pre-key id 1 beyond the newest 3 (ids 25–27 kept)", "bytes": 2}, {"file": "pre-key-10.json", "category": "pre-key", "reason": "pre-key id 10 beyond the newest 3 (ids 25–27 kept)", "bytes": 2}, {"file": "pre-key-11.json", "category": "pre-key", "reason": "pre-key id 11 beyond the newest 3 (ids 25–27 kept)", "bytes": 2}, {"file": "pre-key-12.json", "category": "pre-key", "reason": "pre-key id 12 beyond the newest 3 (ids 25–27 kept)", "bytes": 2}, {"file": "pre-key-13.json", "category": "pre-key", "reason": "pre-key id 13 beyond the newest 3 (ids 25–27 kept)", "bytes": 2}, {"file": "pre-key-14.json", "category": "pre-key", "reason": "pre-key id 14 beyond the newest 3 (ids 25–27 kept)", "bytes": 2}, {"file": "pre-key-15.json", "category": "pre-key", "reason": "pre-key id 15 beyond the newest 3 (ids 25–27 kept)", "bytes": 2}, {"file": "pre-key-16.json", "category": "pre-key", "reason": "pre-key id 16 beyond the newest 3 (ids 25–27 kept)", "bytes": 2}, {"file": "pre-key-17.json", "category": "pre-key", "reason": "pre-key id 17 beyond the newest 3 (ids 25–27 kept)", "bytes": 2}, {"file": "pre-key-18.json", "category": "pre-key", "reason": "pre-key id 18 beyond the newest 3 (ids 25–27 kept)", "bytes": 2}, {"file": "pre-key-19.json", "category": "pre-key", "reason": "pre-key id 19 beyond the newest 3 (ids 25–27 kept)", "bytes": 2}, {"file": "pre-key-2.json", "category": "pre-key", "reason": "pre-key id 2 beyond the newest 3 (ids 25–27 kept)", "bytes": 2}, {"file": "pre-key-20.json", "category": "pre-key", "reason": "pre-key id 20 beyond the newest 3 (ids 25–27 kept)", "bytes": 2}, {"file": "pre-key-21.json", "category": "pre-key", "reason": "pre-key id 21 beyond the newest 3 (ids 25–27 kept)", "bytes": 2}, {"file": "pre-key-22.json", "category": "pre-key", "reason": "pre-key id 22 beyond the newest 3 (ids 25–27 kept)", "bytes": 2}, {"file": "pre-key-23.json", "category": "pre-key", "reason": "pre-key id 23 beyond the newest 3 (ids 25–27 kept)", "bytes": 2}, {"file": "pre-key-24.json", "category": "pre-key", "reason": "pre-key id 24 beyond the newest 3 (ids 25–27 kept)", "bytes": 2}, {"file": "pre-key-3.json", "category": "pre-key", "reason": "pre-key id 3 beyond the newest 3 (ids 25–27 kept)", "bytes": 2}, {"file": "pre-key-4.json", "category": "pre-key", "reason": "pre-key id 4 beyond the newest 3 (ids 25–27 kept)", "bytes": 2}, {"file": "pre-key-5.json", "category": "pre-key", "reason": "pre-key id 5 beyond the newest 3 (ids 25–27 kept)", "bytes": 2}, {"file": "pre-key-6.json", "category": "pre-key", "reason": "pre-key id 6 beyond the newest 3 (ids 25–27 kept)", "bytes": 2}, {"file": "pre-key-7.json", "category": "pre-key", "reason": "pre-key id 7 beyond the newest 3 (ids 25–27 kept)", "bytes": 2}, {"file": "pre-key-8.json", "category": "pre-key", "reason": "pre-key id 8 beyond the newest 3 (ids 25–27 kept)", "bytes": 2}, {"file": "pre-key-9.json", "category": "pre-key", "reason": "pre-key id 9 beyond the newest 3 (ids 25–27 kept)", "bytes": 2}, {"file": "session-16660000001.0.json", "category": "session", "reason": "older than 3d: last used 12d ago", "bytes": 2}, {"file": "session-16660000002.0.json", "category": "session", "reason": "older than 3d: last used 22d ago", "bytes": 2}, {"file": "session-16660000003.0.json", "category": "session", "reason": "older than 3d: last used 32d ago", "bytes": 2}], "files_after": 5, "bytes_freed": 54, "errors": [], "notes": []}
], "dry_run": true, "errors": [], "warnings": [], "notified": false}
"""


def test_multitenant_cleanup_dry_run_json(tree: Tree) -> None:
    code, stdout, stderr = tree.run("multitenant-cleanup", "--dry-run", "--json")
    assert (code, stderr) == (0, "")
    tree.check(stdout, MULTITENANT_DRY_RUN_JSON)
    json.loads(stdout)


MULTITENANT_DRY_RUN_TEXT = """\
[dry-run] wa-sessions multitenant-cleanup of <ROOT>: would delete 34 files (78 bytes) in 3 tenants
company     status  files  -prekey  -session  -skey  -skmem     freed  after     action
100        healthy      3        0         0      0       0   0 bytes      3       none
200      emergency     26        3         2      1       1  24 bytes     19    cleanup
300         danger     32       24         3      0       0  54 bytes      5  emergency
[dry-run] 200: would delete pre-key-1.json (pre-key, 2 bytes): pre-key id 1 beyond the newest 5 (ids 4–8 kept)
[dry-run] 200: would delete pre-key-2.json (pre-key, 2 bytes): pre-key id 2 beyond the newest 5 (ids 4–8 kept)
[dry-run] 200: would delete pre-key-3.json (pre-key, 2 bytes): pre-key id 3 beyond the newest 5 (ids 4–8 kept)
[dry-run] 200: would delete sender-key-memory-120363000000000000@g.us.json (sender-key-memory, 2 bytes): partner of our own sender key sender-key-120363000000000000@g.us--15550000000--2.json, deleted in this run
[dry-run] 200: would delete sender-key-120363000000000000@g.us--15550000000--2.json (sender-key, 2 bytes): older than 3d: last used 5d ago
[dry-run] 200: would delete session-15550000001.0.json.bak (session, 7 bytes): older than 14d: last used 20d ago (with session-15550000001.0.json)
[dry-run] 200: would delete session-15550000001.0.json (session, 7 bytes): older than 14d: last used 20d ago
[dry-run] 300: would delete pre-key-1.json (pre-key, 2 bytes): pre-key id 1 beyond the newest 3 (ids 25–27 kept)
[dry-run] 300: would delete pre-key-10.json (pre-key, 2 bytes): pre-key id 10 beyond the newest 3 (ids 25–27 kept)
[dry-run] 300: would delete pre-key-11.json (pre-key, 2 bytes): pre-key id 11 beyond the newest 3 (ids 25–27 kept)
[dry-run] 300: would delete pre-key-12.json (pre-key, 2 bytes): pre-key id 12 beyond the newest 3 (ids 25–27 kept)
[dry-run] 300: would delete pre-key-13.json (pre-key, 2 bytes): pre-key id 13 beyond the newest 3 (ids 25–27 kept)
[dry-run] 300: would delete pre-key-14.json (pre-key, 2 bytes): pre-key id 14 beyond the newest 3 (ids 25–27 kept)
[dry-run] 300: would delete pre-key-15.json (pre-key, 2 bytes): pre-key id 15 beyond the newest 3 (ids 25–27 kept)
[dry-run] 300: would delete pre-key-16.json (pre-key, 2 bytes): pre-key id 16 beyond the newest 3 (ids 25–27 kept)
[dry-run] 300: would delete pre-key-17.json (pre-key, 2 bytes): pre-key id 17 beyond the newest 3 (ids 25–27 kept)
[dry-run] 300: would delete pre-key-18.json (pre-key, 2 bytes): pre-key id 18 beyond the newest 3 (ids 25–27 kept)
[dry-run] 300: would delete pre-key-19.json (pre-key, 2 bytes): pre-key id 19 beyond the newest 3 (ids 25–27 kept)
[dry-run] 300: would delete pre-key-2.json (pre-key, 2 bytes): pre-key id 2 beyond the newest 3 (ids 25–27 kept)
[dry-run] 300: would delete pre-key-20.json (pre-key, 2 bytes): pre-key id 20 beyond the newest 3 (ids 25–27 kept)
[dry-run] 300: would delete pre-key-21.json (pre-key, 2 bytes): pre-key id 21 beyond the newest 3 (ids 25–27 kept)
[dry-run] 300: would delete pre-key-22.json (pre-key, 2 bytes): pre-key id 22 beyond the newest 3 (ids 25–27 kept)
[dry-run] 300: would delete pre-key-23.json (pre-key, 2 bytes): pre-key id 23 beyond the newest 3 (ids 25–27 kept)
[dry-run] 300: would delete pre-key-24.json (pre-key, 2 bytes): pre-key id 24 beyond the newest 3 (ids 25–27 kept)
[dry-run] 300: would delete pre-key-3.json (pre-key, 2 bytes): pre-key id 3 beyond the newest 3 (ids 25–27 kept)
[dry-run] 300: would delete pre-key-4.json (pre-key, 2 bytes): pre-key id 4 beyond the newest 3 (ids 25–27 kept)
[dry-run] 300: would delete pre-key-5.json (pre-key, 2 bytes): pre-key id 5 beyond the newest 3 (ids 25–27 kept)
[dry-run] 300: would delete pre-key-6.json (pre-key, 2 bytes): pre-key id 6 beyond the newest 3 (ids 25–27 kept)
[dry-run] 300: would delete pre-key-7.json (pre-key, 2 bytes): pre-key id 7 beyond the newest 3 (ids 25–27 kept)
[dry-run] 300: would delete pre-key-8.json (pre-key, 2 bytes): pre-key id 8 beyond the newest 3 (ids 25–27 kept)
[dry-run] 300: would delete pre-key-9.json (pre-key, 2 bytes): pre-key id 9 beyond the newest 3 (ids 25–27 kept)
[dry-run] 300: would delete session-16660000001.0.json (session, 2 bytes): older than 3d: last used 12d ago
[dry-run] 300: would delete session-16660000002.0.json (session, 2 bytes): older than 3d: last used 22d ago
[dry-run] 300: would delete session-16660000003.0.json (session, 2 bytes): older than 3d: last used 32d ago
"""


def test_multitenant_cleanup_dry_run_text(tree: Tree) -> None:
    code, stdout, stderr = tree.run("multitenant-cleanup", "--dry-run")
    assert (code, stderr) == (0, "")
    tree.check(stdout, MULTITENANT_DRY_RUN_TEXT)


# ---------------------------------------------------------------- report

CLEANED_AT = "2030-01-15T10:00:00Z"  # two hours before NOW


@pytest.fixture
def cleaned_tree(tree: Tree) -> Tree:
    """The tree after a real `cleanup --company 200` two hours before NOW: a history and a last
    success for the report to show."""
    code, stdout, stderr = tree.run("cleanup", "--company", "200", "--quiet", at=CLEANED_AT)
    assert (code, stdout, stderr) == (0, "", "")
    return tree


REPORT_TABLE = """\
wa-sessions report of <ROOT> at 2030-01-15T12:00:00Z: 3 tenants, 54 files, 366 bytes; history: 7 files (24 bytes) deleted

Tenants per status
status     tenants
healthy          1
warning          0
critical         1
trigger          0
emergency        0
danger           1
unknown          0

Files per category
category                files
creds                       4
app-state-sync-key          1
app-state-sync-version      1
lid-mapping                 1
pre-key                    34
session                     6
sender-key                  1
sender-key-memory           0
identity-key                2
device-list                 1
tctoken                     1
unknown                     2

Largest tenants
company  files      bytes    status
300         32  128 bytes    danger
200         19  235 bytes  critical
100          3    3 bytes   healthy

Disk under root
          total       free  used %
bytes   3.8 GiB  937.5 MiB    76.0
inodes   500000     390000    22.0

Last successful runs
command          last success
cleanup  2030-01-15T10:00:00Z

Tenants
company    status  files      bytes  problems          last cleanup  deleted     freed
100       healthy      3    3 bytes         2                 never        0   0 bytes
200      critical     19  235 bytes         2  2030-01-15T10:00:00Z        7  24 bytes
300        danger     32  128 bytes         0                 never        0   0 bytes
"""


def test_report_table(cleaned_tree: Tree) -> None:
    code, stdout, stderr = cleaned_tree.run("report")
    assert (code, stderr) == (0, "")
    cleaned_tree.check(stdout, REPORT_TABLE)
    code, explicit, stderr = cleaned_tree.run("report", "--format", "table")
    assert (code, explicit, stderr) == (0, stdout, "")


REPORT_JSON = """\
{"schema": 1, "command": "report", "root": "<ROOT>", "generated_at": "2030-01-15T12:00:00Z", "tenants": [
{"company": "100", "path": "<ROOT>/company_100", "files": 3, "bytes": 3, "status": "healthy", "categories": {"creds": 1, "app-state-sync-key": 0, "app-state-sync-version": 0, "lid-mapping": 0, "pre-key": 2, "session": 0, "sender-key": 0, "sender-key-memory": 0, "identity-key": 0, "device-list": 0, "tctoken": 0, "unknown": 0}, "problems": ["empty key file: pre-key-2.json", "creds.json is unparseable"], "last_cleanup": null, "deleted_total": 0, "freed_bytes_total": 0},
{"company": "200", "path": "<ROOT>/company_200", "files": 19, "bytes": 235, "status": "critical", "categories": {"creds": 2, "app-state-sync-key": 1, "app-state-sync-version": 1, "lid-mapping": 1, "pre-key": 5, "session": 2, "sender-key": 1, "sender-key-memory": 0, "identity-key": 2, "device-list": 1, "tctoken": 1, "unknown": 2}, "problems": ["not a regular file (symlink): link.json", "unknown file (kept): notes.txt"], "last_cleanup": "2030-01-15T10:00:00Z", "deleted_total": 7, "freed_bytes_total": 24},
{"company": "300", "path": "<ROOT>/company_300", "files": 32, "bytes": 128, "status": "danger", "categories": {"creds": 1, "app-state-sync-key": 0, "app-state-sync-version": 0, "lid-mapping": 0, "pre-key": 27, "session": 4, "sender-key": 0, "sender-key-memory": 0, "identity-key": 0, "device-list": 0, "tctoken": 0, "unknown": 0}, "problems": [], "last_cleanup": null, "deleted_total": 0, "freed_bytes_total": 0}
], "files": 54, "bytes": 366, "statuses": {"healthy": 1, "warning": 0, "critical": 1, "trigger": 0, "emergency": 0, "danger": 1, "unknown": 0}, "categories": {"creds": 4, "app-state-sync-key": 1, "app-state-sync-version": 1, "lid-mapping": 1, "pre-key": 34, "session": 6, "sender-key": 1, "sender-key-memory": 0, "identity-key": 2, "device-list": 1, "tctoken": 1, "unknown": 2}, "largest": ["300", "200", "100"], "disk": {"bytes_total": 4096000000, "bytes_free": 983040000, "inodes_total": 500000, "inodes_free": 390000}, "memory": null, "deleted_total": 7, "freed_bytes_total": 24, "last_success": {"cleanup": "2030-01-15T10:00:00Z"}, "errors": []}
"""


def test_report_json(cleaned_tree: Tree) -> None:
    code, stdout, stderr = cleaned_tree.run("report", "--format", "json")
    assert (code, stderr) == (0, "")
    cleaned_tree.check(stdout, REPORT_JSON)
    json.loads(stdout)
    code, flag, stderr = cleaned_tree.run("report", "--json")
    assert (code, flag, stderr) == (0, stdout, "")


REPORT_MARKDOWN = """\
# wa-sessions report

wa-sessions report of <ROOT> at 2030-01-15T12:00:00Z: 3 tenants, 54 files, 366 bytes; history: 7 files (24 bytes) deleted

## Tenants per status

| status | tenants |
| --- | ---: |
| healthy | 1 |
| warning | 0 |
| critical | 1 |
| trigger | 0 |
| emergency | 0 |
| danger | 1 |
| unknown | 0 |

## Files per category

| category | files |
| --- | ---: |
| creds | 4 |
| app-state-sync-key | 1 |
| app-state-sync-version | 1 |
| lid-mapping | 1 |
| pre-key | 34 |
| session | 6 |
| sender-key | 1 |
| sender-key-memory | 0 |
| identity-key | 2 |
| device-list | 1 |
| tctoken | 1 |
| unknown | 2 |

## Largest tenants

| company | files | bytes | status |
| --- | ---: | ---: | ---: |
| 300 | 32 | 128 bytes | danger |
| 200 | 19 | 235 bytes | critical |
| 100 | 3 | 3 bytes | healthy |

## Disk under root

|  | total | free | used % |
| --- | ---: | ---: | ---: |
| bytes | 3.8 GiB | 937.5 MiB | 76.0 |
| inodes | 500000 | 390000 | 22.0 |

## Last successful runs

| command | last success |
| --- | ---: |
| cleanup | 2030-01-15T10:00:00Z |

## Tenants

| company | status | files | bytes | problems | last cleanup | deleted | freed |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
| 100 | healthy | 3 | 3 bytes | 2 | never | 0 | 0 bytes |
| 200 | critical | 19 | 235 bytes | 2 | 2030-01-15T10:00:00Z | 7 | 24 bytes |
| 300 | danger | 32 | 128 bytes | 0 | never | 0 | 0 bytes |
"""


def test_report_markdown(cleaned_tree: Tree) -> None:
    code, stdout, stderr = cleaned_tree.run("report", "--format", "markdown")
    assert (code, stderr) == (0, "")
    cleaned_tree.check(stdout, REPORT_MARKDOWN)


REPORT_PROMETHEUS = """\
# HELP wa_sessions_tenants Tenants per status level.
# TYPE wa_sessions_tenants gauge
wa_sessions_tenants{status="healthy"} 1.0
wa_sessions_tenants{status="warning"} 0.0
wa_sessions_tenants{status="critical"} 1.0
wa_sessions_tenants{status="trigger"} 0.0
wa_sessions_tenants{status="emergency"} 0.0
wa_sessions_tenants{status="danger"} 1.0
wa_sessions_tenants{status="unknown"} 0.0
# HELP wa_sessions_category_files Files per category over all tenants.
# TYPE wa_sessions_category_files gauge
wa_sessions_category_files{category="creds"} 4.0
wa_sessions_category_files{category="app-state-sync-key"} 1.0
wa_sessions_category_files{category="app-state-sync-version"} 1.0
wa_sessions_category_files{category="lid-mapping"} 1.0
wa_sessions_category_files{category="pre-key"} 34.0
wa_sessions_category_files{category="session"} 6.0
wa_sessions_category_files{category="sender-key"} 1.0
wa_sessions_category_files{category="sender-key-memory"} 0.0
wa_sessions_category_files{category="identity-key"} 2.0
wa_sessions_category_files{category="device-list"} 1.0
wa_sessions_category_files{category="tctoken"} 1.0
wa_sessions_category_files{category="unknown"} 2.0
# HELP wa_sessions_tenant_files Files in the tenant folder (dot-entries not counted).
# TYPE wa_sessions_tenant_files gauge
wa_sessions_tenant_files{company="100"} 3.0
wa_sessions_tenant_files{company="200"} 19.0
wa_sessions_tenant_files{company="300"} 32.0
# HELP wa_sessions_tenant_bytes Bytes of the tenant's files.
# TYPE wa_sessions_tenant_bytes gauge
wa_sessions_tenant_bytes{company="100"} 3.0
wa_sessions_tenant_bytes{company="200"} 235.0
wa_sessions_tenant_bytes{company="300"} 128.0
# HELP wa_sessions_tenant_status_level Status level of the tenant: 0 healthy, 1 warning, 2 critical, 3 trigger, 4 emergency, 5 danger; none for a tenant that could not be read.
# TYPE wa_sessions_tenant_status_level gauge
wa_sessions_tenant_status_level{company="100"} 0.0
wa_sessions_tenant_status_level{company="200"} 2.0
wa_sessions_tenant_status_level{company="300"} 5.0
# HELP wa_sessions_tenant_problems Problems the scan reported for the tenant.
# TYPE wa_sessions_tenant_problems gauge
wa_sessions_tenant_problems{company="100"} 2.0
wa_sessions_tenant_problems{company="200"} 2.0
wa_sessions_tenant_problems{company="300"} 0.0
# HELP wa_sessions_tenant_last_cleanup_timestamp_seconds When a file of the tenant was last deleted (from the history), Unix time.
# TYPE wa_sessions_tenant_last_cleanup_timestamp_seconds gauge
wa_sessions_tenant_last_cleanup_timestamp_seconds{company="200"} 1.8947016e+09
# HELP wa_sessions_tenant_deleted_files_total Files deleted from the tenant (from the history).
# TYPE wa_sessions_tenant_deleted_files_total counter
wa_sessions_tenant_deleted_files_total{company="100"} 0.0
wa_sessions_tenant_deleted_files_total{company="200"} 7.0
wa_sessions_tenant_deleted_files_total{company="300"} 0.0
# HELP wa_sessions_tenant_deleted_bytes_total Bytes deleted from the tenant (from the history).
# TYPE wa_sessions_tenant_deleted_bytes_total counter
wa_sessions_tenant_deleted_bytes_total{company="100"} 0.0
wa_sessions_tenant_deleted_bytes_total{company="200"} 24.0
wa_sessions_tenant_deleted_bytes_total{company="300"} 0.0
# HELP wa_sessions_filesystem_size_bytes Size of the filesystem holding root.
# TYPE wa_sessions_filesystem_size_bytes gauge
wa_sessions_filesystem_size_bytes 4.096e+09
# HELP wa_sessions_filesystem_avail_bytes Bytes available to us on the filesystem holding root.
# TYPE wa_sessions_filesystem_avail_bytes gauge
wa_sessions_filesystem_avail_bytes 9.8304e+08
# HELP wa_sessions_filesystem_files Inodes of the filesystem holding root.
# TYPE wa_sessions_filesystem_files gauge
wa_sessions_filesystem_files 500000.0
# HELP wa_sessions_filesystem_files_free Free inodes of the filesystem holding root.
# TYPE wa_sessions_filesystem_files_free gauge
wa_sessions_filesystem_files_free 390000.0
# HELP wa_sessions_last_success_timestamp_seconds When the command last finished successfully (exit 0, not a dry run), Unix time.
# TYPE wa_sessions_last_success_timestamp_seconds gauge
wa_sessions_last_success_timestamp_seconds{command="cleanup"} 1.8947016e+09
# HELP wa_sessions_scan_errors Tenant folders the report could not read.
# TYPE wa_sessions_scan_errors gauge
wa_sessions_scan_errors 0.0
# HELP wa_sessions_report_timestamp_seconds When this report was generated, Unix time.
# TYPE wa_sessions_report_timestamp_seconds gauge
wa_sessions_report_timestamp_seconds 1.8947088e+09
"""


def test_report_prometheus(cleaned_tree: Tree) -> None:
    code, stdout, stderr = cleaned_tree.run("report", "--format", "prometheus")
    assert (code, stderr) == (0, "")
    cleaned_tree.check(stdout, REPORT_PROMETHEUS)


#: The prometheus report as prometheus_client reads it back: family name -> (type, samples).
#: A counter's family is named without `_total`; its samples keep it.
REPORT_METRICS = {
    "wa_sessions_tenants": (
        "gauge",
        [
            ("wa_sessions_tenants", {"status": "healthy"}, 1),
            ("wa_sessions_tenants", {"status": "warning"}, 0),
            ("wa_sessions_tenants", {"status": "critical"}, 1),
            ("wa_sessions_tenants", {"status": "trigger"}, 0),
            ("wa_sessions_tenants", {"status": "emergency"}, 0),
            ("wa_sessions_tenants", {"status": "danger"}, 1),
            ("wa_sessions_tenants", {"status": "unknown"}, 0),
        ],
    ),
    "wa_sessions_category_files": (
        "gauge",
        [
            ("wa_sessions_category_files", {"category": "creds"}, 4),
            ("wa_sessions_category_files", {"category": "app-state-sync-key"}, 1),
            ("wa_sessions_category_files", {"category": "app-state-sync-version"}, 1),
            ("wa_sessions_category_files", {"category": "lid-mapping"}, 1),
            ("wa_sessions_category_files", {"category": "pre-key"}, 34),
            ("wa_sessions_category_files", {"category": "session"}, 6),
            ("wa_sessions_category_files", {"category": "sender-key"}, 1),
            ("wa_sessions_category_files", {"category": "sender-key-memory"}, 0),
            ("wa_sessions_category_files", {"category": "identity-key"}, 2),
            ("wa_sessions_category_files", {"category": "device-list"}, 1),
            ("wa_sessions_category_files", {"category": "tctoken"}, 1),
            ("wa_sessions_category_files", {"category": "unknown"}, 2),
        ],
    ),
    "wa_sessions_tenant_files": (
        "gauge",
        [
            ("wa_sessions_tenant_files", {"company": "100"}, 3),
            ("wa_sessions_tenant_files", {"company": "200"}, 19),
            ("wa_sessions_tenant_files", {"company": "300"}, 32),
        ],
    ),
    "wa_sessions_tenant_bytes": (
        "gauge",
        [
            ("wa_sessions_tenant_bytes", {"company": "100"}, 3),
            ("wa_sessions_tenant_bytes", {"company": "200"}, 235),
            ("wa_sessions_tenant_bytes", {"company": "300"}, 128),
        ],
    ),
    "wa_sessions_tenant_status_level": (
        "gauge",
        [
            ("wa_sessions_tenant_status_level", {"company": "100"}, 0),
            ("wa_sessions_tenant_status_level", {"company": "200"}, 2),
            ("wa_sessions_tenant_status_level", {"company": "300"}, 5),
        ],
    ),
    "wa_sessions_tenant_problems": (
        "gauge",
        [
            ("wa_sessions_tenant_problems", {"company": "100"}, 2),
            ("wa_sessions_tenant_problems", {"company": "200"}, 2),
            ("wa_sessions_tenant_problems", {"company": "300"}, 0),
        ],
    ),
    "wa_sessions_tenant_last_cleanup_timestamp_seconds": (
        "gauge",
        [("wa_sessions_tenant_last_cleanup_timestamp_seconds", {"company": "200"}, 1894701600)],
    ),
    "wa_sessions_tenant_deleted_files": (
        "counter",
        [
            ("wa_sessions_tenant_deleted_files_total", {"company": "100"}, 0),
            ("wa_sessions_tenant_deleted_files_total", {"company": "200"}, 7),
            ("wa_sessions_tenant_deleted_files_total", {"company": "300"}, 0),
        ],
    ),
    "wa_sessions_tenant_deleted_bytes": (
        "counter",
        [
            ("wa_sessions_tenant_deleted_bytes_total", {"company": "100"}, 0),
            ("wa_sessions_tenant_deleted_bytes_total", {"company": "200"}, 24),
            ("wa_sessions_tenant_deleted_bytes_total", {"company": "300"}, 0),
        ],
    ),
    "wa_sessions_filesystem_size_bytes": ("gauge", [("wa_sessions_filesystem_size_bytes", {}, 4096000000)]),
    "wa_sessions_filesystem_avail_bytes": ("gauge", [("wa_sessions_filesystem_avail_bytes", {}, 983040000)]),
    "wa_sessions_filesystem_files": ("gauge", [("wa_sessions_filesystem_files", {}, 500000)]),
    "wa_sessions_filesystem_files_free": ("gauge", [("wa_sessions_filesystem_files_free", {}, 390000)]),
    "wa_sessions_last_success_timestamp_seconds": (
        "gauge",
        [("wa_sessions_last_success_timestamp_seconds", {"command": "cleanup"}, 1894701600)],
    ),
    "wa_sessions_scan_errors": ("gauge", [("wa_sessions_scan_errors", {}, 0)]),
    "wa_sessions_report_timestamp_seconds": (
        "gauge",
        [("wa_sessions_report_timestamp_seconds", {}, 1894708800)],
    ),
}


def test_report_prometheus_parses_back(cleaned_tree: Tree) -> None:
    code, stdout, stderr = cleaned_tree.run("report", "--format", "prometheus")
    assert (code, stderr) == (0, "")
    families = {
        family.name: (
            family.type,
            [(sample.name, dict(sample.labels), sample.value) for sample in family.samples],
        )
        for family in text_string_to_metric_families(stdout)
    }
    assert families == REPORT_METRICS


# ---------------------------------------------------------------- config show

# A root that does not exist (config show reads no folder): a fixed string, so that the
# width of the value column, which the root sets, is the same on every machine.
SHOWN_ROOT = "/srv/wa-sessions/sessions"


@pytest.fixture
def config_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """One key from the environment, so that `config show` has every source: cli, env, yaml, default."""
    monkeypatch.setenv("WA_SESSIONS_LOCKS__WAIT", "5s")


CONFIG_SHOW_TEXT = """\
config file: <TMP>/wa-sessions.yaml
root                                 /srv/wa-sessions/sessions  cli
tenant_pattern                       company_*                  default
state_dir                            null                       default
rules.session.max_age                14d                        yaml
rules.sender-key.max_age             3d                         yaml
rules.pre-key.keep_newest            5                          yaml
emergency.rules.session.max_age      3d                         yaml
emergency.rules.sender-key.max_age   1d                         yaml
emergency.rules.pre-key.keep_newest  3                          yaml
thresholds.warning                   5                          yaml
thresholds.critical                  10                         yaml
thresholds.trigger                   20                         yaml
thresholds.emergency                 25                         yaml
thresholds.danger                    30                         yaml
auto.cooldown                        6h                         default
locks.wait                           5s                         env WA_SESSIONS_LOCKS__WAIT
notify.webhook_url                   null                       default
notify.timeout                       5s                         default
store                                null                       default
"""


@pytest.mark.usefixtures("config_env")
def test_config_show_text(tree: Tree) -> None:
    code, stdout, stderr = tree.run_argv(
        ["config", "show", "--root", SHOWN_ROOT, "--config", str(tree.config)]
    )
    assert (code, stderr) == (0, "")
    tree.check(stdout, CONFIG_SHOW_TEXT)


CONFIG_SHOW_JSON = """\
{"schema": 1, "command": "config show", "root": "/srv/wa-sessions/sessions", "generated_at": "2030-01-15T12:00:00Z", "tenants": [], "config_file": "<TMP>/wa-sessions.yaml", "valid": true, "settings": [{"key": "root", "value": "/srv/wa-sessions/sessions", "source": "cli"}, {"key": "tenant_pattern", "value": "company_*", "source": "default"}, {"key": "state_dir", "value": null, "source": "default"}, {"key": "rules.session.max_age", "value": "14d", "source": "yaml"}, {"key": "rules.sender-key.max_age", "value": "3d", "source": "yaml"}, {"key": "rules.pre-key.keep_newest", "value": 5, "source": "yaml"}, {"key": "emergency.rules.session.max_age", "value": "3d", "source": "yaml"}, {"key": "emergency.rules.sender-key.max_age", "value": "1d", "source": "yaml"}, {"key": "emergency.rules.pre-key.keep_newest", "value": 3, "source": "yaml"}, {"key": "thresholds.warning", "value": 5, "source": "yaml"}, {"key": "thresholds.critical", "value": 10, "source": "yaml"}, {"key": "thresholds.trigger", "value": 20, "source": "yaml"}, {"key": "thresholds.emergency", "value": 25, "source": "yaml"}, {"key": "thresholds.danger", "value": 30, "source": "yaml"}, {"key": "auto.cooldown", "value": "6h", "source": "default"}, {"key": "locks.wait", "value": "5s", "source": "env WA_SESSIONS_LOCKS__WAIT"}, {"key": "notify.webhook_url", "value": null, "source": "default"}, {"key": "notify.timeout", "value": "5s", "source": "default"}, {"key": "store", "value": null, "source": "default"}]}
"""


@pytest.mark.usefixtures("config_env")
def test_config_show_json(tree: Tree) -> None:
    code, stdout, stderr = tree.run_argv(
        ["config", "show", "--root", SHOWN_ROOT, "--config", str(tree.config), "--json"]
    )
    assert (code, stderr) == (0, "")
    tree.check(stdout, CONFIG_SHOW_JSON)
    json.loads(stdout)
