"""A dry run touches nothing and shows exactly what the real run deletes; every deletion is in the
history; protected files survive byte for byte (SPEC §2, §4, §9)."""

from __future__ import annotations

import json
import os
import random
import stat
from datetime import UTC, datetime
from pathlib import Path

from wa_sessions.demo import make_tenant

from .helpers import (
    DAY,
    deleted_files,
    file_state,
    history_lines,
    names,
    run_cli,
    snapshot,
    standard_tenant,
    tenant_doc,
    write_file,
)

PROTECTED_PREFIXES = ("creds.json", "app-state-sync-key-", "app-state-sync-version-", "lid-mapping-")
HISTORY_FIELDS = {"time", "company", "file", "category", "reason", "bytes", "mtime"}


def _iso_z(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _parse_iso(text: str) -> datetime:
    assert text.endswith("Z"), text
    return datetime.fromisoformat(text[:-1] + "+00:00")


def test_dry_run_changes_nothing_and_lists_what_the_real_run_deletes(root: Path, now: float) -> None:
    standard = standard_tenant(root / "company_1", now)
    make_tenant(root / "company_2", random.Random(7), now, 260)
    before = snapshot(root)

    dry = run_cli("cleanup", "--dry-run", "--root", root, "--json")

    assert dry.returncode == 0, dry.describe()
    assert snapshot(root) == before  # not a byte, an mtime, an inode, a lock file or a state dir
    assert not os.path.lexists(root / ".wa-sessions")
    assert dry.doc["dry_run"] is True
    assert all(tenant["dry_run"] is True for tenant in dry.doc["tenants"])
    assert set(deleted_files(tenant_doc(dry.doc, "1"))) == standard.delete

    started = datetime.now(UTC).replace(microsecond=0)
    real = run_cli("cleanup", "--root", root, "--json")
    finished = datetime.now(UTC)

    assert real.returncode == 0, real.describe()
    assert real.doc["dry_run"] is False
    deleted: dict[tuple[str, str], dict[str, object]] = {}
    for company in ("1", "2"):
        would, did = tenant_doc(dry.doc, company), tenant_doc(real.doc, company)
        shape = [[(d["file"], d["category"], d["bytes"]) for d in doc["deleted"]] for doc in (would, did)]
        assert shape[0] == shape[1], f"company {company}: dry run and real run differ"
        assert would["files_after"] == did["files_after"] == len(names(root / f"company_{company}"))
        assert did["errors"] == []
        for item in did["deleted"]:
            deleted[(company, item["file"])] = item
    assert len(deleted) > len(standard.delete)  # the demo tenant lost files too

    # The disk: exactly the listed files are gone; every other file is untouched.
    after = snapshot(root)
    for path, entry in before.items():
        parts = os.fsdecode(path).split(os.sep)
        if len(parts) == 2 and (parts[0].removeprefix("company_"), parts[1]) in deleted:
            assert path not in after, f"{path!r} listed as deleted but still there"
        elif not stat.S_ISDIR(entry[0]):
            assert after.get(path) == entry, f"{path!r} changed though not deleted"

    # The history: one line per deleted file, with the fields SPEC §4 names.
    lines = history_lines(root / ".wa-sessions")
    assert len(lines) == len(deleted)
    seen = set()
    for line in lines:
        assert set(line) >= HISTORY_FIELDS, line
        key = (line["company"], line["file"])
        assert key in deleted and key not in seen, line
        seen.add(key)
        item = deleted[key]
        assert (line["category"], line["reason"], line["bytes"]) == (
            item["category"],
            item["reason"],
            item["bytes"],
        )
        path = os.fsencode(os.path.join(f"company_{line['company']}", line["file"]))
        assert line["mtime"] == _iso_z(before[path][4] / 1e9)
        assert started <= _parse_iso(line["time"]) <= finished


def test_protected_files_are_byte_identical_after_cleaning_an_aged_demo_tree(root: Path, now: float) -> None:
    folder = root / "company_962302"
    make_tenant(folder, random.Random(20261122), now, 300)
    creds = json.loads((folder / "creds.json").read_text())
    # Companions of protected files are protected too.
    write_file(folder, "creds.json.bak", (folder / "creds.json").read_bytes(), 0, now)
    write_file(folder, "app-state-sync-key-AAAAAB3x.json.bak", b'{"keyData": "old"}', 0, now)
    write_file(folder, "lid-mapping-15550000000.json.tmp", b'"100000000000001"', 0, now)
    for name in os.listdir(folder):  # everything 100 days older
        info = os.lstat(folder / name)
        aged = info.st_mtime_ns - 100 * DAY * 10**9
        os.utime(folder / name, ns=(aged, aged))
    protected = {name for name in os.listdir(folder) if name.startswith(PROTECTED_PREFIXES)}
    kept_by_policy = {
        name for name in os.listdir(folder) if name.startswith(("identity-key-", "device-list-", "tctoken-"))
    } | {name for name in os.listdir(folder) if not name.endswith(".json")}
    assert len(protected) >= 11 and kept_by_policy
    before = {name: file_state(folder / name) for name in protected | kept_by_policy}

    run = run_cli("cleanup", "--root", root, "--json")

    assert run.returncode == 0, run.describe()
    cleaned = tenant_doc(run.doc, "962302")
    deleted = set(deleted_files(cleaned))
    assert not deleted & protected
    assert not {item["category"] for item in cleaned["deleted"]} & {
        "creds",
        "app-state-sync-key",
        "app-state-sync-version",
        "lid-mapping",
    }
    assert {name: file_state(folder / name) for name in protected | kept_by_policy} == before
    # The run did real work: every session and sender key was 100+ days old.
    left = names(folder)
    assert not any(name.startswith(("session-", "sender-key-1")) for name in left), sorted(left)
    pre_keys = sorted(
        int(name[len("pre-key-") : -len(".json")]) for name in left if name.startswith("pre-key-")
    )
    newest = creds["nextPreKeyId"] - 1
    assert pre_keys == list(range(newest - 49, newest + 1))
