"""Interop tests against folders written by the real Baileys 7.0.0-rc14.

``build_fleet.mjs`` drives Baileys' own code (useMultiFileAuthState, the
libsignal repository, decryptMessageNode, getNextPreKeysNode, ...) to build
tenant folders the way a live account fills them, and records which Baileys
key type wrote each file. These tests check that wa-sessions classifies every
one of those files as that key type, then age the files, run a real
``wa-sessions cleanup`` and let ``verify_fleet.mjs`` prove with Baileys that
every chat the cleanup kept still decrypts, that the group sender-key pairing
rule holds, and that a new contact can still use the newest pre-key.

Needs ``node`` (>= 20) and ``npm ci --prefix tests/interop``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from baileys_fleet import (
    BAILEYS_VERSION,
    COMPANIES,
    DAY,
    KEEP_TYPES,
    PLANS,
    PRE_KEYS_KEPT,
    PROTECTED_TYPES,
    AgingSpec,
    Fleet,
    checks_of,
    pre_key_id,
    run_node,
    verify_report,
    wa_sessions_json,
)

pytestmark = pytest.mark.interop


def _verify(fleet: Fleet, *companies: str) -> tuple[int, dict[str, Any]]:
    args = ["--root", str(fleet.root), "--contacts-dir", str(fleet.contacts)]
    for company in companies:
        args += ["--company", company]
    return verify_report(args)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _listing(directory: Path) -> set[str]:
    return {name for name in os.listdir(directory) if not name.startswith(".")}


def _snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    """name -> (mtime_ns, size) of every non-dot entry."""
    return {
        name: ((st := (directory / name).lstat()).st_mtime_ns, st.st_size) for name in _listing(directory)
    }


def _age(path: Path, days: float) -> None:
    when = time.time() - days * DAY
    os.utime(path, (when, when), follow_symlinks=False)


@pytest.fixture(scope="session")
def built_fleet(tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    """Build the fleet once per session with the real Baileys (about 5 s)."""
    base = tmp_path_factory.mktemp("baileys-fleet")
    args = ["--root", str(base / "root"), "--contacts-dir", str(base / "contacts")]
    for company in COMPANIES:
        args += ["--company", company]
    run_node("build_fleet.mjs", *args)
    manifest = json.loads((base / "contacts" / "manifest.json").read_text())
    assert manifest["baileys"] == BAILEYS_VERSION
    return Fleet(root=base / "root", contacts=base / "contacts", manifest=manifest)


@pytest.fixture
def fleet(built_fleet: Fleet, tmp_path: Path) -> Iterator[Fleet]:
    """A private copy of the built fleet (tests clean and verify it, which changes it)."""
    root = tmp_path / "root"
    contacts = tmp_path / "contacts"
    shutil.copytree(built_fleet.root, root, symlinks=True)
    shutil.copytree(built_fleet.contacts, contacts, symlinks=True)
    yield Fleet(root=root, contacts=contacts, manifest=built_fleet.manifest)


# --------------------------------------------------------------------------- classification


def test_manifest_lists_every_file_baileys_left_in_each_tenant(built_fleet: Fleet) -> None:
    for tenant in built_fleet.manifest["tenants"]:
        on_disk = _listing(built_fleet.root / tenant["dir"])
        assert on_disk == set(tenant["files"]), f"{tenant['dir']}: manifest and folder differ"
        types = Counter(tenant["files"].values())
        # every key type Baileys rc14 persists shows up in the fleet
        assert set(types) == {
            "creds",
            "app-state-sync-key",
            "app-state-sync-version",
            "lid-mapping",
            "pre-key",
            "session",
            "sender-key",
            "sender-key-memory",
            "identity-key",
            "device-list",
            "tctoken",
        }


def test_classify_gives_every_file_the_category_of_the_baileys_key_type_that_wrote_it(
    built_fleet: Fleet,
) -> None:
    from wa_sessions.layout import classify

    wrong = {
        name: (key_type, classify(name))
        for tenant in built_fleet.manifest["tenants"]
        for name, key_type in tenant["files"].items()
        if classify(name) != key_type
    }
    assert not wrong, f"file -> (Baileys key type, wa-sessions category): {wrong}"


def test_file_names_baileys_wrote_match_the_spec_examples(built_fleet: Fleet) -> None:
    files = built_fleet.tenant(COMPANIES[0])["files"]
    expected = {
        "creds.json": "creds",
        "app-state-sync-key-AAAAAB3x.json": "app-state-sync-key",
        "app-state-sync-key-AAAAAC__q.json": "app-state-sync-key",
        "app-state-sync-version-regular_high.json": "app-state-sync-version",
        "lid-mapping-17770000000.json": "lid-mapping",
        "lid-mapping-200000000000000_reverse.json": "lid-mapping",
        "pre-key-812.json": "pre-key",
        "session-15550000000.0.json": "session",
        "session-15550000001.2.json": "session",
        "session-100000000000002_1.0.json": "session",
        "sender-key-120363000000000000@g.us--15550000001--2.json": "sender-key",
        "sender-key-memory-120363000000000000@g.us.json": "sender-key-memory",
        "identity-key-15550000001.2.json": "identity-key",
        "device-list-15550000000.json": "device-list",
        "tctoken-15550000000@s.whatsapp.net.json": "tctoken",
    }
    assert {name: files.get(name) for name in expected} == expected


def test_scan_counts_every_category_as_baileys_wrote_it(built_fleet: Fleet) -> None:
    before = {t["dir"]: _snapshot(built_fleet.root / t["dir"]) for t in built_fleet.manifest["tenants"]}
    document = wa_sessions_json("scan", "--json", "--root", str(built_fleet.root))
    assert document["command"] == "scan"
    tenants = {t["company"]: t for t in document["tenants"]}
    assert sorted(tenants) == sorted(COMPANIES)
    for tenant in built_fleet.manifest["tenants"]:
        scanned = tenants[tenant["company"]]
        expected = Counter(tenant["files"].values())
        nonzero = {category: count for category, count in scanned["categories"].items() if count}
        assert nonzero == dict(expected), tenant["dir"]
        assert scanned["categories"].get("unknown", 0) == 0
        assert scanned["files"] == len(tenant["files"])
        assert scanned["problems"] == []
    after = {t["dir"]: _snapshot(built_fleet.root / t["dir"]) for t in built_fleet.manifest["tenants"]}
    assert after == before, "scan must not change a tenant folder"


# --------------------------------------------------------------------------- cleanup + verify


@dataclass(frozen=True)
class AgingPlan:
    """Which files of one tenant are made old, and what a regular cleanup must therefore delete."""

    aged: dict[str, float]  # file -> age in days
    expect_deleted: set[str]
    deleted_sessions_of: set[str]  # contact names
    deleted_sender_keys_of: set[tuple[str, str]]  # (group jid, contact name)
    own_key_deleted_in: set[str]  # group jids


def _aging_plan(tenant: Mapping[str, Any], spec: AgingSpec) -> AgingPlan:
    """Regular rules: session > 14 d, sender-key > 3 d, pre-key newest 50; everything else kept."""
    old_sessions, old_member_keys, own_old_group = spec.old_sessions, spec.old_member_keys, spec.own_old_group
    contacts = {c["name"]: c for c in tenant["contacts"]}
    groups = tenant["groups"]
    aged: dict[str, float] = {}
    expect: set[str] = set()
    for name in old_sessions:
        aged[contacts[name]["tenantSessionFile"]] = 30
        expect.add(contacts[name]["tenantSessionFile"])
    # a session 10 days old is still fresh enough
    young = next(n for n in contacts if n not in old_sessions)
    aged[contacts[young]["tenantSessionFile"]] = 10
    member_keys = set()
    for group_index, contact in old_member_keys:
        member = next(m for m in groups[group_index]["members"] if m["contact"] == contact)
        aged[member["senderKeyFile"]] = 30
        expect.add(member["senderKeyFile"])
        member_keys.add((groups[group_index]["jid"], contact))
    # a member sender key 2 days old survives the 3-day rule
    for group in groups:
        for member in group["members"]:
            if member["senderKeyFile"] not in aged:
                aged[member["senderKeyFile"]] = 2
                break
    own_group = groups[own_old_group]
    aged[own_group["ownSenderKeyFile"]] = 30
    expect |= {own_group["ownSenderKeyFile"], own_group["memoryFile"]}  # SPEC §2: the pair goes together
    other_group = groups[1 - own_old_group]
    aged[other_group["ownSenderKeyFile"]] = 2
    aged[other_group["memoryFile"]] = 30  # kept: sender-key-memory has no age rule
    for name, key_type in tenant["files"].items():
        if key_type in PROTECTED_TYPES or key_type in KEEP_TYPES:
            aged[name] = 30  # protected / keep: age never matters
    pre_keys = sorted((n for n, t in tenant["files"].items() if t == "pre-key"), key=pre_key_id)
    expect |= set(pre_keys[:-PRE_KEYS_KEPT])
    return AgingPlan(
        aged=aged,
        expect_deleted=expect,
        deleted_sessions_of=set(old_sessions),
        deleted_sender_keys_of=member_keys,
        own_key_deleted_in={own_group["jid"]},
    )


def _protected_hashes(fleet: Fleet) -> dict[str, str]:
    return {
        f"{tenant['dir']}/{name}": _sha256(fleet.root / tenant["dir"] / name)
        for tenant in fleet.manifest["tenants"]
        for name, key_type in tenant["files"].items()
        if key_type in PROTECTED_TYPES
    }


def _apply_aging(fleet: Fleet) -> dict[str, AgingPlan]:
    plans = {}
    for company, spec in PLANS.items():
        tenant = fleet.tenant(company)
        plan = _aging_plan(tenant, spec)
        for name, days in plan.aged.items():
            _age(fleet.tenant_dir(company) / name, days)
        plans[company] = plan
    return plans


def test_cleanup_deletes_only_what_baileys_can_lose_and_every_kept_chat_still_works(fleet: Fleet) -> None:
    plans = _apply_aging(fleet)
    protected = _protected_hashes(fleet)
    before = {company: _listing(fleet.tenant_dir(company)) for company in COMPANIES}

    # the dry run announces exactly the real run's deletions and touches nothing
    dry = wa_sessions_json("cleanup", "--dry-run", "--json", "--root", str(fleet.root))
    for tenant in dry["tenants"]:
        assert tenant["dry_run"] is True
        assert {d["file"] for d in tenant["deleted"]} == plans[tenant["company"]].expect_deleted, tenant[
            "company"
        ]
    assert {company: _listing(fleet.tenant_dir(company)) for company in COMPANIES} == before

    document = wa_sessions_json("cleanup", "--json", "--root", str(fleet.root))
    assert document["command"] == "cleanup"
    results = {t["company"]: t for t in document["tenants"]}
    assert sorted(results) == sorted(COMPANIES)
    for company in COMPANIES:
        tenant = fleet.tenant(company)
        plan = plans[company]
        result = results[company]
        remaining = _listing(fleet.tenant_dir(company))
        assert result["dry_run"] is False
        assert result["errors"] == []
        assert result["files_before"] == len(before[company])
        assert result["files_after"] == len(remaining)
        # each deleted file is reported with the category of the Baileys key type that wrote it
        assert {d["file"]: d["category"] for d in result["deleted"]} == {
            name: tenant["files"][name] for name in plan.expect_deleted
        }
        assert remaining == before[company] - plan.expect_deleted, (
            f"{company}: unexpectedly deleted {sorted(before[company] - plan.expect_deleted - remaining)}, "
            f"unexpectedly kept {sorted(remaining & plan.expect_deleted)}"
        )
        pre_keys = sorted(pre_key_id(n) for n in remaining if tenant["files"][n] == "pre-key")
        all_pre_keys = sorted(pre_key_id(n) for n, t in tenant["files"].items() if t == "pre-key")
        assert pre_keys == all_pre_keys[-PRE_KEYS_KEPT:]
        assert tenant["nextPreKeyId"] - 1 in pre_keys
        for group in tenant["groups"]:
            own_gone = group["ownSenderKeyFile"] not in remaining
            assert own_gone == (group["memoryFile"] not in remaining), (
                f"{group['jid']}: own sender key and sender-key-memory must go together"
            )

    history = fleet.root / ".wa-sessions" / "history.jsonl"
    lines = [json.loads(line) for line in history.read_text().splitlines() if line.strip()]
    assert sorted((str(line["company"]), line["file"]) for line in lines) == sorted(
        (company, name) for company in COMPANIES for name in plans[company].expect_deleted
    )
    assert _protected_hashes(fleet) == protected, "protected files changed during cleanup"

    code, report = _verify(fleet)
    assert code == 0 and report["ok"], json.dumps(report["failures"], indent=1)
    for company in COMPANIES:
        tenant = fleet.tenant(company)
        plan = plans[company]
        contact_checks = checks_of(report, company, "contact-message")
        assert {
            name for name, c in contact_checks.items() if c["status"] == "skipped"
        } == plan.deleted_sessions_of
        assert {name for name, c in contact_checks.items() if c["status"] == "passed"} == {
            c["name"] for c in tenant["contacts"]
        } - plan.deleted_sessions_of
        member_checks = checks_of(report, company, "member-group-message")
        skipped = {
            tuple(subject.split(" ")) for subject, c in member_checks.items() if c["status"] == "skipped"
        }
        assert skipped == plan.deleted_sender_keys_of
        assert len(member_checks) == sum(len(g["members"]) for g in tenant["groups"])
        group_checks = checks_of(report, company, "tenant-group-message")
        assert set(group_checks) == {g["jid"] for g in tenant["groups"]}
        for jid, check in group_checks.items():
            assert check["status"] == "passed"
            assert ("own sender key new" in check["detail"]) == (jid in plan.own_key_deleted_in), check[
                "detail"
            ]
        assert (
            checks_of(report, company, "newest-pre-key")[f"pre-key-{tenant['nextPreKeyId'] - 1}"]["status"]
            == "passed"
        )
        assert all(c["status"] == "passed" for c in checks_of(report, company, "app-state").values())
        assert all(c["status"] == "passed" for c in checks_of(report, company, "lid-mapping").values())
    assert _protected_hashes(fleet) == protected, (
        "protected files changed while Baileys used the cleaned folders"
    )


def test_emergency_cleanup_keeps_chats_working(fleet: Fleet) -> None:
    """Emergency profile (session 3 d, sender-key 1 d, pre-key newest 20) on one named tenant."""
    company = COMPANIES[1]
    tenant = fleet.tenant(company)
    directory = fleet.tenant_dir(company)
    contacts = {c["name"]: c for c in tenant["contacts"]}
    lid_group = tenant["groups"][1]
    aged = {
        contacts["md1"]["tenantSessionFile"]: 5,  # > 3 d: goes
        contacts["md5"]["tenantSessionFile"]: 2,  # kept
        lid_group["members"][0]["senderKeyFile"]: 1.5,  # > 1 d: goes
        lid_group["ownSenderKeyFile"]: 1.5,  # goes, and takes the memory file with it
    }
    for name, days in aged.items():
        _age(directory / name, days)
    protected = _protected_hashes(fleet)
    before = _listing(directory)
    other_before = _listing(fleet.tenant_dir(COMPANIES[0]))

    document = wa_sessions_json(
        "emergency-cleanup", "--company", company, "--json", "--root", str(fleet.root)
    )
    assert [t["company"] for t in document["tenants"]] == [company]
    assert document["tenants"][0]["action"] == "emergency"
    remaining = _listing(directory)
    pre_keys = sorted(pre_key_id(n) for n, t in tenant["files"].items() if t == "pre-key")
    expected_gone = {
        contacts["md1"]["tenantSessionFile"],
        lid_group["members"][0]["senderKeyFile"],
        lid_group["ownSenderKeyFile"],
        lid_group["memoryFile"],
        *(f"pre-key-{i}.json" for i in pre_keys[:-20]),
    }
    assert before - remaining == expected_gone
    assert _listing(fleet.tenant_dir(COMPANIES[0])) == other_before, "a tenant that was not named was touched"
    assert _protected_hashes(fleet) == protected

    code, report = _verify(fleet, company)
    assert code == 0 and report["ok"], json.dumps(report["failures"], indent=1)
    assert (
        "own sender key new" in checks_of(report, company, "tenant-group-message")[lid_group["jid"]]["detail"]
    )


# --------------------------------------------------------------------------- the verifier itself


def test_verifier_catches_own_sender_key_deleted_without_its_memory(fleet: Fleet) -> None:
    """Control: the failure SPEC §2's pairing rule prevents is real and verify_fleet sees it."""
    company = COMPANIES[0]
    group = fleet.tenant(company)["groups"][0]
    (fleet.tenant_dir(company) / group["ownSenderKeyFile"]).unlink()
    code, report = _verify(fleet, company)
    assert code == 1
    failed = {(f["check"], f["subject"]) for f in report["failures"]}
    assert failed == {("tenant-group-message", group["jid"])}


def test_verifier_catches_a_deleted_newest_pre_key(fleet: Fleet) -> None:
    company = COMPANIES[0]
    newest = fleet.tenant(company)["nextPreKeyId"] - 1
    (fleet.tenant_dir(company) / f"pre-key-{newest}.json").unlink()
    code, report = _verify(fleet, company)
    assert code == 1
    assert {(f["check"], f["subject"]) for f in report["failures"]} == {
        ("newest-pre-key", f"pre-key-{newest}")
    }
