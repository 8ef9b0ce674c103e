"""Interop on the stores of SPEC §10: tenants whose auth state the real Baileys 7.0.0-rc14 keeps in
Evolution API's Redis hash or in mysql-baileys' table, aged by real clock time under libfaketime.

A store keeps no time per key: a key's age is the time since wa-sessions first saw its value. So
the fleet is built 15 days ago (``faketime '15 days ago' node build_fleet.mjs --store URL``), a
first real cleanup records every value then (under the same faketime), a traffic pass now uses
some chats (their keys change value), and the cleanup now deletes exactly the sessions and sender
keys nobody used since: with SPEC §2's pairing, the newest 50 pre-keys kept, and protected keys
byte-identical. ``verify_fleet.mjs --store URL`` then proves with Baileys that every kept chat
still decrypts and a new contact starts from the newest pre-key.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from baileys_fleet import (
    BAILEYS_VERSION,
    COMPANIES,
    DAY,
    PLANS,
    PRE_KEYS_KEPT,
    PROTECTED_TYPES,
    AgingSpec,
    checks_of,
    pre_key_id,
    run_node,
    verify_report,
    wa_sessions_json,
)
from stores_under_test import StoreUnderTest

pytestmark = pytest.mark.interop

RECORDED = "15 days ago"
HOUR = 3600


def _check_encoding(store: StoreUnderTest, tenant: Mapping[str, Any]) -> None:
    """The writer's own layout: raw `<type>-<id>` keys, Buffers as BufferJSON writes them."""
    values = store.values(tenant["company"])
    creds = store.decode(values["creds"])
    assert creds["me"]["id"] == tenant["me"]["id"]
    assert creds["noiseKey"]["private"]["type"] == "Buffer"  # BufferJSON.replacer: base64 text
    assert isinstance(creds["noiseKey"]["private"]["data"], str)
    own = tenant["groups"][0]["tenantSenderJid"].split("@")[0].replace(":", "::")
    assert f"sender-key-{tenant['groups'][0]['jid']}::{own}" in values  # ids unescaped
    assert "app-state-sync-key-AAAAAC/q" in values
    assert (
        store.decode(values[f"lid-mapping-{tenant['me']['id'].split(':')[0]}"])
        == tenant["me"]["lid"].split(":")[0]
    )


# --------------------------------------------------------------------------- what must happen


@dataclass(frozen=True)
class Traffic:
    """One tenant's traffic pass (verify_fleet --only) and what the cleanup after it must delete."""

    only: list[str]
    expect_deleted: set[str]
    deleted_sessions_of: set[str]
    deleted_sender_keys_of: set[tuple[str, str]]
    own_key_deleted_in: str


def _traffic(tenant: Mapping[str, Any], spec: AgingSpec) -> Traffic:
    """Chats of the spec's old keys stay silent; every other contact, member and our own key in the
    other group talks now. Silent since the recording 15 days ago: sessions (> 14 d) and sender
    keys (> 3 d) go, our own with its group's sender-key-memory (SPEC §2)."""
    only: list[str] = []
    expect: set[str] = set()
    for contact in tenant["contacts"]:
        if contact["name"] in spec.old_sessions:
            expect.add(contact["tenantSessionFile"])
        else:
            only.append(f"contact-message:{contact['name']}")
    member_keys = set()
    for index, group in enumerate(tenant["groups"]):
        for member in group["members"]:
            if (index, member["contact"]) in spec.old_member_keys:
                expect.add(member["senderKeyFile"])
                member_keys.add((group["jid"], member["contact"]))
            else:
                only.append(f"member-group-message:{group['jid']} {member['contact']}")
    silent = tenant["groups"][spec.own_old_group]
    expect |= {silent["ownSenderKeyFile"], silent["memoryFile"]}
    talking = tenant["groups"][1 - spec.own_old_group]
    only.append(f"tenant-group-message:{talking['jid']}")
    return Traffic(only, expect, set(spec.old_sessions), member_keys, silent["jid"])


def _pre_keys(names: Mapping[str, str] | set[str]) -> list[str]:
    return sorted((n for n in names if n.startswith("pre-key-")), key=pre_key_id)


def _protected(manifest: Mapping[str, Any], store: StoreUnderTest) -> dict[str, bytes]:
    return {
        f"{tenant['company']}/{name}": value
        for tenant in manifest["tenants"]
        for name, value in store.files(tenant["company"]).items()
        if tenant["files"].get(name) in PROTECTED_TYPES
    }


def _deleted(document: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """company -> file -> category of what a cleanup deleted (or a dry run would)."""
    for tenant in document["tenants"]:
        assert tenant["errors"] == [], tenant["errors"]
    return {t["company"]: {d["file"]: d["category"] for d in t["deleted"]} for t in document["tenants"]}


def _cleanup(store: StoreUnderTest, state: Path, *extra: str, faketime: str | None = None) -> dict[str, Any]:
    return wa_sessions_json(
        "cleanup", *extra, "--json", "--store", store.url, "--root", str(state), faketime=faketime
    )


# --------------------------------------------------------------------------- the flow


def _build(store: StoreUnderTest, contacts: Path) -> dict[str, Any]:
    """Build the fleet into the store 15 days ago (libfaketime): node must see that clock."""
    args = ["--store", store.url, "--contacts-dir", str(contacts)]
    for company in COMPANIES:
        args += ["--company", company]
    run_node("build_fleet.mjs", *args, faketime=RECORDED)
    manifest: dict[str, Any] = json.loads((contacts / "manifest.json").read_text())
    assert manifest["baileys"] == BAILEYS_VERSION
    built_at = datetime.fromisoformat(manifest["generatedAt"].replace("Z", "+00:00")).timestamp()
    assert abs(built_at - (time.time() - 15 * DAY)) < HOUR, f"node's clock said {manifest['generatedAt']}"
    for tenant in manifest["tenants"]:
        # every key Baileys wrote is in the store under its raw name, and nothing else is
        assert set(store.files(tenant["company"])) == set(tenant["files"]), tenant["company"]
        _check_encoding(store, tenant)
    return manifest


def _record_15_days_ago(store: StoreUnderTest, state: Path, manifest: Mapping[str, Any]) -> None:
    """The first real cleanup, 15 days ago: records every value, caps the pre-keys, ages nothing."""
    first = _cleanup(store, state, faketime=RECORDED)
    deleted = _deleted(first)
    for tenant in manifest["tenants"]:
        pre_keys = _pre_keys(tenant["files"])
        assert deleted[tenant["company"]] == dict.fromkeys(pre_keys[:-PRE_KEYS_KEPT], "pre-key")
        kept = store.files(tenant["company"])
        assert _pre_keys(set(kept)) == pre_keys[-PRE_KEYS_KEPT:]
        # every value kept was recorded as first seen then, by the clock of wa-sessions' host
        first_seen = store.first_seen(tenant["company"])
        assert set(first_seen) == set(kept)
        assert all(abs(when - (time.time() - 15 * DAY)) < HOUR for when in first_seen.values()), first_seen
    # 13 days after the recording (2 days ago) every sender key is older than 3 d, no session 14 d
    later = _deleted(_cleanup(store, state, "--dry-run", faketime="2 days ago"))
    for tenant in manifest["tenants"]:
        categories = set(later[tenant["company"]].values())
        assert categories == {"sender-key", "sender-key-memory"}, later[tenant["company"]]
        sender_keys = {n for n, t in tenant["files"].items() if t == "sender-key"}
        assert {n for n, c in later[tenant["company"]].items() if c == "sender-key"} == sender_keys


def _talk_now(store: StoreUnderTest, contacts: Path, manifest: Mapping[str, Any]) -> dict[str, Traffic]:
    """The traffic pass, now: exactly the keys of the chats that talk change value."""
    traffic = {}
    for tenant in manifest["tenants"]:
        company = tenant["company"]
        plan = _traffic(tenant, PLANS[company])
        before = store.files(company)
        args = ["--store", store.url, "--contacts-dir", str(contacts), "--company", company]
        code, report = verify_report(args + [arg for only in plan.only for arg in ("--only", only)])
        assert code == 0 and report["passed"] == len(plan.only), json.dumps(report["checks"], indent=1)
        after = store.files(company)
        changed = {
            n for n in before if after.get(n) != before[n] and tenant["files"][n] in ("session", "sender-key")
        }
        aging = {n for n, t in tenant["files"].items() if t in ("session", "sender-key")} - changed
        assert aging == {n for n in plan.expect_deleted if tenant["files"][n] != "sender-key-memory"}
        traffic[company] = plan
    return traffic


def _check_verified(
    report: Mapping[str, Any], manifest: Mapping[str, Any], traffic: Mapping[str, Traffic]
) -> None:
    for tenant in manifest["tenants"]:
        company = tenant["company"]
        plan = traffic[company]
        contact_checks = checks_of(report, company, "contact-message")
        assert {n for n, c in contact_checks.items() if c["status"] == "skipped"} == plan.deleted_sessions_of
        assert {n for n, c in contact_checks.items() if c["status"] == "passed"} == {
            c["name"] for c in tenant["contacts"]
        } - plan.deleted_sessions_of
        member_checks = checks_of(report, company, "member-group-message")
        skipped = {tuple(s.split(" ")) for s, c in member_checks.items() if c["status"] == "skipped"}
        assert skipped == plan.deleted_sender_keys_of
        for jid, check in checks_of(report, company, "tenant-group-message").items():
            assert check["status"] == "passed"
            assert ("own sender key new" in check["detail"]) == (jid == plan.own_key_deleted_in), check
        newest = f"pre-key-{tenant['nextPreKeyId'] - 1}"
        assert checks_of(report, company, "newest-pre-key")[newest]["status"] == "passed"
        assert all(c["status"] == "passed" for c in checks_of(report, company, "app-state").values())
        assert all(c["status"] == "passed" for c in checks_of(report, company, "lid-mapping").values())


def _clean_now_and_verify(store: StoreUnderTest, tmp_path: Path) -> None:
    contacts, state = tmp_path / "contacts", tmp_path / "state"
    state.mkdir()
    manifest = _build(store, contacts)
    _record_15_days_ago(store, state, manifest)
    traffic = _talk_now(store, contacts, manifest)
    protected = _protected(manifest, store)
    before = {company: store.files(company) for company in COMPANIES}

    dry = _deleted(_cleanup(store, state, "--dry-run"))
    assert {company: store.files(company) for company in COMPANIES} == before, "a dry run changed the store"
    document = _cleanup(store, state)
    assert _deleted(document) == dry
    for tenant in manifest["tenants"]:
        company = tenant["company"]
        plan = traffic[company]
        assert dry[company] == {name: tenant["files"][name] for name in plan.expect_deleted}
        remaining = store.files(company)
        assert set(remaining) == set(before[company]) - plan.expect_deleted
        assert {n: remaining[n] for n in remaining} == {n: before[company][n] for n in remaining}
        pre_keys = _pre_keys(set(remaining))
        assert len(pre_keys) == PRE_KEYS_KEPT and pre_keys[-1] == f"pre-key-{tenant['nextPreKeyId'] - 1}.json"
    assert _protected(manifest, store) == protected, "protected keys changed during cleanup"

    code, report = verify_report(["--store", store.url, "--contacts-dir", str(contacts)])
    assert code == 0 and report["ok"], json.dumps(report["failures"], indent=1)
    _check_verified(report, manifest, traffic)
    assert _protected(manifest, store) == protected, "protected keys changed while Baileys used the store"


def test_evolution_redis_fleet_recorded_15_days_ago_is_cleaned_now_and_every_kept_chat_works(
    redis_store: StoreUnderTest, tmp_path: Path
) -> None:
    _clean_now_and_verify(redis_store, tmp_path)


def test_mysql_baileys_fleet_on_mariadb_recorded_15_days_ago_is_cleaned_now_and_every_kept_chat_works(
    mysql_store: StoreUnderTest, tmp_path: Path
) -> None:
    _clean_now_and_verify(mysql_store, tmp_path)
