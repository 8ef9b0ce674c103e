"""Extreme mtimes (issue 10): a file whose mtime is before year 1 or after year 9999 (tmpfs, btrfs
and ZFS keep them; anyone who can write a tenant folder can set one) must not end a run with
`internal error: ValueError: year ... is out of range`. Every command goes on, shows such a time
clamped to 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z, and cleans the other tenants as usual.

ext4 clamps mtimes to 1901..2446, so the trees are built on a tmpfs mounted for this module
(root only; skipped otherwise).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .support import assert_clean_stderr, put, run_cli

SECOND = 1_000_000_000
YEAR_1 = -62135596800  # 0001-01-01T00:00:00Z, the first second datetime can show
YEAR_10000 = 253402300800  # 10000-01-01T00:00:00Z, the first second it cannot
MTIMES_NS = {
    "year 0": (YEAR_1 - 200 * 86400) * SECOND,
    "year -1": (YEAR_1 - 2 * 366 * 86400) * SECOND,
    "year 10000": (YEAR_10000 + 10 * 86400) * SECOND,
    "year 1e9": 10**9 * 365 * 86400 * SECOND,
    "year -1e9": -(10**9) * 365 * 86400 * SECOND,
}
FIRST = "0001-01-01T00:00:00Z"
LAST = "9999-12-31T23:59:59Z"
ME = {"id": "15550000000:12@s.whatsapp.net", "lid": "100000000000001:12@lid"}

# Every tenant is `trigger` or above for multitenant-cleanup, none reaches `danger`.
LOW_THRESHOLDS = {
    "WA_SESSIONS_THRESHOLDS__WARNING": "1",
    "WA_SESSIONS_THRESHOLDS__CRITICAL": "2",
    "WA_SESSIONS_THRESHOLDS__TRIGGER": "3",
    "WA_SESSIONS_THRESHOLDS__EMERGENCY": "1000000",
    "WA_SESSIONS_THRESHOLDS__DANGER": "1000001",
}


def _keeps_extreme_mtimes(folder: Path) -> bool:
    probe = folder / "probe"
    probe.touch()
    try:
        for mtime_ns in MTIMES_NS.values():
            os.utime(probe, ns=(mtime_ns, mtime_ns))
            if os.stat(probe).st_mtime_ns != mtime_ns:
                return False
        return True
    finally:
        probe.unlink()


@pytest.fixture(scope="module")
def tmpfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A tmpfs for this module's trees (it keeps any mtime): mounted for the module when root can,
    else a folder in /dev/shm (a tmpfs on Linux, writable by anyone); removed afterwards."""
    mount_point = tmp_path_factory.mktemp("extreme-mtimes") / "mnt"
    mount_point.mkdir()
    mounted = (
        os.geteuid() == 0
        and shutil.which("mount") is not None
        and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", os.fspath(mount_point)],
            capture_output=True,
            check=False,
        ).returncode
        == 0
    )
    if mounted:
        try:
            if not _keeps_extreme_mtimes(mount_point):
                pytest.fail("a tmpfs that does not keep extreme mtimes")
            yield mount_point
        finally:
            if subprocess.run(["umount", os.fspath(mount_point)], check=False).returncode != 0:
                subprocess.run(["umount", "-l", os.fspath(mount_point)], check=False)
        return
    if not os.path.isdir("/dev/shm"):
        pytest.skip("neither a tmpfs mount (needs root) nor /dev/shm: ext4 cannot keep mtimes before 1901")
    folder = Path(tempfile.mkdtemp(prefix="wa-sessions-extreme-", dir="/dev/shm"))
    try:
        if not _keeps_extreme_mtimes(folder):
            pytest.skip("/dev/shm does not keep mtimes before 1901 or after 2446")
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _extreme(folder: Path, name: str, label: str, content: str = "{}") -> None:
    path = put(folder, name, 0, content)
    os.utime(path, ns=(MTIMES_NS[label], MTIMES_NS[label]))


def _creds(next_pre_key_id: int) -> str:
    return json.dumps({"nextPreKeyId": next_pre_key_id, "firstUnuploadedPreKeyId": next_pre_key_id, "me": ME})


def _normal_tenant(folder: Path, now: float) -> set[str]:
    """A tenant of ordinary old files; returns what the regular rules delete."""
    folder.mkdir()
    put(folder, "creds.json", 0.01, _creds(61), now)
    put(folder, "app-state-sync-key-AAAAAB3x.json", 100, now=now)
    for key_id in range(1, 61):
        put(folder, f"pre-key-{key_id}.json", 30, now=now)
    put(folder, "session-15550000001.0.json", 20, now=now)
    put(folder, "session-15550000002.0.json", 5, now=now)
    put(folder, "sender-key-120363000000000001@g.us--15550000003--0.json", 4, now=now)
    put(folder, "identity-key-15550000001.2.json", 100, now=now)
    return {
        *(f"pre-key-{key_id}.json" for key_id in range(1, 11)),
        "session-15550000001.0.json",
        "sender-key-120363000000000001@g.us--15550000003--0.json",
    }


def build(tmpfs: Path, name: str) -> tuple[Path, dict[str, str], dict[str, set[str]]]:
    """A sessions root on the tmpfs, the env of a run (state dir beside the root) and, per company,
    what `cleanup` must delete:
    - 1: a tenant with files dated year 0, -1, 10000, 1e9 and -1e9;
    - 2: ordinary old files;
    - 3: a stale folder (everything 30 days old): purged by --purge-stale-dirs --older-than 1d;
    - 4: a folder whose every file dates from before year 1: purged too."""
    now = time.time()
    top = tmpfs / name
    root = top / "root"
    root.mkdir(parents=True)
    extreme = root / "company_1"
    extreme.mkdir()
    put(extreme, "creds.json", 0.01, _creds(4), now)
    for key_id in range(1, 4):
        put(extreme, f"pre-key-{key_id}.json", 1, now=now)
    _extreme(extreme, "session-15550000011.0.json", "year 0")
    _extreme(extreme, "session-15550000012.0.json", "year -1")
    _extreme(extreme, "session-15550000013.0.json", "year 10000")
    _extreme(extreme, "sender-key-120363000000000009@g.us--15550000009--0.json", "year 1e9")
    _extreme(extreme, "tctoken-15550000001@s.whatsapp.net.json", "year -1e9")
    expected = {"1": {"session-15550000011.0.json", "session-15550000012.0.json"}}
    expected["2"] = _normal_tenant(root / "company_2", now)
    stale = root / "company_3"
    stale.mkdir()
    put(stale, "creds.json", 30, json.dumps({"nextPreKeyId": 2}), now)
    put(stale, "session-15550000021.0.json", 30, now=now)
    put(stale, "identity-key-15550000021.0.json", 30, now=now)
    expected["3"] = {"session-15550000021.0.json"}
    ancient = root / "company_4"
    ancient.mkdir()
    _extreme(ancient, "creds.json", "year 0", json.dumps({"nextPreKeyId": 2}))
    _extreme(ancient, "session-15550000031.0.json", "year -1e9")
    _extreme(ancient, "identity-key-15550000031.0.json", "year -1")
    expected["4"] = {"session-15550000031.0.json"}
    env = {"WA_SESSIONS_STATE_DIR": os.fspath(top / "state"), **LOW_THRESHOLDS}
    return root, env, expected


def cli(root: Path, env: dict[str, str], *args: str) -> dict[str, Any]:
    """Run a command with --json; it must end normally with one complete JSON document on stdout."""
    result = run_cli(*args, "--root", root, "--json", env=env)
    context = f"{args}: rc={result.returncode}\nstdout={result.stdout[:3000]}\nstderr={result.stderr[:3000]}"
    assert_clean_stderr(result, context)
    assert "out of range" not in result.stderr, context
    assert result.returncode == 0, context
    try:
        document = json.loads(result.stdout)
    except ValueError as error:
        raise AssertionError(f"stdout is not one JSON document ({error})\n{context}") from None
    assert isinstance(document, dict) and document["schema"] == 1, context
    return document


def tenants(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {tenant["company"]: tenant for tenant in document["tenants"]}


def deleted(tenant: dict[str, Any]) -> set[str]:
    return {item["file"] for item in tenant["deleted"]}


def on_disk(folder: Path) -> set[str]:
    return {name for name in os.listdir(folder) if not name.startswith(".")}


def test_cleanup_dry_run_lists_what_it_would_delete(tmpfs: Path) -> None:
    root, env, expected = build(tmpfs, "dry-run")
    before = {company: on_disk(root / f"company_{company}") for company in expected}
    document = cli(root, env, "cleanup", "--dry-run")
    assert document["command"] == "cleanup" and document["dry_run"] is True
    found = tenants(document)
    for company, names in expected.items():
        assert deleted(found[company]) == names, company
        assert on_disk(root / f"company_{company}") == before[company], company


def test_cleanup_deletes_and_records_the_clamped_mtimes(tmpfs: Path) -> None:
    root, env, expected = build(tmpfs, "cleanup")
    document = cli(root, env, "cleanup")
    found = tenants(document)
    for company, names in expected.items():
        assert deleted(found[company]) == names, company
        assert not names & on_disk(root / f"company_{company}"), company
        assert found[company]["errors"] == [], company
    assert "session-15550000013.0.json" in on_disk(root / "company_1")  # year 10000: age 0, kept
    history = [
        json.loads(line)
        for line in (Path(env["WA_SESSIONS_STATE_DIR"]) / "history.jsonl").read_text().splitlines()
    ]
    mtimes = {record["file"]: record["mtime"] for record in history if record.get("event") == "deleted"}
    assert mtimes["session-15550000011.0.json"] == FIRST
    assert mtimes["session-15550000031.0.json"] == FIRST

    # What reads the history and the tree afterwards goes on too.
    report = cli(root, env, "report")
    assert report["command"] == "report"
    assert tenants(report)["2"]["deleted_total"] == len(expected["2"])
    for report_format in ("table", "markdown", "prometheus"):
        result = run_cli("report", "--format", report_format, "--root", root, env=env)
        assert_clean_stderr(result, report_format)
        assert result.returncode == 0, f"{report_format}: {result.stderr}"


def test_multitenant_cleanup_cleans_every_due_tenant(tmpfs: Path) -> None:
    root, env, expected = build(tmpfs, "multitenant")
    document = cli(root, env, "multitenant-cleanup", "--force")
    assert document["command"] == "multitenant-cleanup"
    found = tenants(document)
    for company, names in expected.items():
        assert found[company]["action"] == "cleanup", company
        assert deleted(found[company]) == names, company
        assert not names & on_disk(root / f"company_{company}"), company


def test_purge_stale_dirs_dry_run_judges_by_the_clamped_newest_file(tmpfs: Path) -> None:
    root, env, _ = build(tmpfs, "purge")
    before = {company: on_disk(root / f"company_{company}") for company in "1234"}
    document = cli(
        root,
        env,
        "emergency-cleanup",
        "--purge-stale-dirs",
        "--include-paired",
        "--older-than",
        "1d",
        "--dry-run",
    )
    found = tenants(document)
    assert found["1"]["action"] == "none"  # its newest file is in year 1e9
    assert found["1"]["newest_file_at"] == LAST
    assert found["2"]["action"] == "none"  # creds.json is fresh
    for company in "34":  # stale, and before year 1: both would be purged, file by file
        assert found[company]["action"] == "emergency", company
        assert deleted(found[company]) == before[company], company
    assert found["4"]["newest_file_at"] == FIRST
    assert {company: on_disk(root / f"company_{company}") for company in "1234"} == before


def test_scan_and_report_show_clamped_times(tmpfs: Path) -> None:
    root, env, expected = build(tmpfs, "scan")
    scan = cli(root, env, "scan")
    found = tenants(scan)
    assert set(found) == set(expected)
    assert any("future" in problem for problem in found["1"]["problems"]), found["1"]["problems"]
    assert found["1"]["files"] == 9
    text = run_cli("scan", "--root", root, env=env)
    assert_clean_stderr(text, "scan (text)")
    assert text.returncode == 0, text.stderr
    report = cli(root, env, "report")
    assert set(tenants(report)) == set(expected)
    assert report["files"] == sum(tenant["files"] for tenant in found.values())


def test_the_tree_really_has_extreme_mtimes(tmpfs: Path) -> None:
    """The trees above are what they claim (or the other tests prove nothing)."""
    root, _, _ = build(tmpfs, "check")
    mtimes = {path.name: path.stat().st_mtime_ns for path in (root / "company_1").iterdir()}
    assert mtimes["session-15550000011.0.json"] < YEAR_1 * SECOND
    assert mtimes["session-15550000013.0.json"] >= YEAR_10000 * SECOND
    assert min(mtimes.values()) == MTIMES_NS["year -1e9"]
