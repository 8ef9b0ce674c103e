"""Why the rules keep or delete one file of a tenant (`wa-sessions explain`): the tenant's scan
planned with the regular and the emergency rules, and planned again with the guards lifted, so
that a guard that keeps a file the rule would delete is named. Worded from the same data the
real run uses: a deletion's reason is the text a real run records.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from wa_sessions import layout
from wa_sessions.config import Settings
from wa_sessions.durations import format_age, format_duration
from wa_sessions.layout import Creds, Entry
from wa_sessions.results import Explanation, Verdict
from wa_sessions.rules import Deletion, Rule, age_seconds, plan_tenant
from wa_sessions.scan import TenantScan
from wa_sessions.stores import Tenant

# ---------------------------------------------------------------- one tenant, planned


@dataclass(frozen=True, slots=True)
class _Profile:
    """One profile's rules, its plan of the tenant, and its plan with the guards lifted."""

    rules: Mapping[str, Rule]
    planned: Mapping[str, Deletion]
    unguarded: Mapping[str, Deletion]

    @classmethod
    def of(cls, rules: Mapping[str, Rule], scan: TenantScan, now: float) -> _Profile:
        planned = plan_tenant(scan.entries, rules, scan.creds, now).deletions
        unguarded = plan_tenant(scan.entries, rules, _lifted(scan.creds), now).deletions
        return cls(
            rules,
            {deletion.entry.name: deletion for deletion in planned},
            {deletion.entry.name: deletion for deletion in unguarded},
        )


def _lifted(creds: Creds) -> Creds:
    """creds.json with its guards lifted: readable, no pre-key bound, and an account (`-`) that
    names no key, so that sender keys are judged by their rule alone."""
    return Creds("ok", own_users=creds.own_users or frozenset({"-"}))


@dataclass(frozen=True, slots=True)
class TenantView:
    tenant: Tenant
    scan: TenantScan
    entries: Mapping[str, Entry]
    keys: Mapping[str, int]  # key file -> newest mtime of it and its companions (what a rule judges)
    now: float
    cleanup: _Profile
    emergency: _Profile

    @classmethod
    def of(cls, settings: Settings, tenant: Tenant, scan: TenantScan, now: float) -> TenantView:
        keys: dict[str, int] = {}
        for entry in scan.entries:
            if entry.regular:
                keys[entry.key_name] = max(keys.get(entry.key_name, entry.mtime_ns), entry.mtime_ns)
        return cls(
            tenant,
            scan,
            {entry.name: entry for entry in scan.entries},
            keys,
            now,
            _Profile.of(settings.rules, scan, now),
            _Profile.of(settings.emergency.rules, scan, now),
        )


def explain_entry(view: TenantView, tenant: Tenant, name: str) -> Explanation:
    path = os.path.abspath(tenant.path / name)
    company = layout.display_name(tenant.company)
    if layout.is_own_entry(name):
        kept = Verdict(False, "kept: the tool's own entry (a dot-entry): never counted, never deleted")
        guard = "dot-entries are the tool's own"
        return Explanation(
            layout.display_name(path), company, layout.display_name(name), "-", None, None, guard, kept, kept
        )
    entry = view.entries[name]
    category = entry.category
    return Explanation(
        layout.display_name(path),
        company,
        layout.display_name(name),
        category,
        _rule_text(view.cleanup.rules.get(category)),
        _rule_text(view.emergency.rules.get(category)),
        _guard(view, entry),
        _verdict(view, view.cleanup, entry),
        _verdict(view, view.emergency, entry),
    )


def _rule_text(rule: Rule | None) -> str | None:
    if rule is None:
        return None
    parts = []
    if rule.max_age is not None:
        parts.append(f"max_age {format_duration(rule.max_age)}")
    if rule.keep_newest is not None:
        parts.append(f"keep_newest {rule.keep_newest}")
    return ", ".join(parts)


# ---------------------------------------------------------------- why


def _verdict(view: TenantView, profile: _Profile, entry: Entry) -> Verdict:
    deletion = profile.planned.get(entry.name)
    if deletion is not None:
        return Verdict(True, deletion.reason)
    reason = _kept(view, profile, entry)
    if entry.regular and entry.name != entry.key_name and entry.category not in layout.NEVER_PLANNED:
        reason = f"companion of {layout.display_name(entry.key_name)}, judged with it: {reason}"
    return Verdict(False, f"kept: {reason}")


def _kept(view: TenantView, profile: _Profile, entry: Entry) -> str:
    """Why `profile` keeps an entry its plan does not delete."""
    category = entry.category
    if not entry.regular:
        return f"not a regular file ({entry.kind}): only regular files are deleted, symlinks never followed"
    if category in layout.PROTECTED:
        return f"protected category {category}: never deleted, whatever the configuration"
    if category == layout.UNKNOWN:
        return "unknown entry (not a Baileys key file name): never deleted, reported by scan"
    rule = profile.rules.get(category)
    if rule is None:
        if category == layout.SENDER_KEY_MEMORY:
            return (
                "no rule for sender-key-memory: it goes only with our own sender key of its group, "
                "and none is deleted in this run"
            )
        return f"no rule for {category}"
    if entry.name in profile.unguarded:  # the rule would delete it: a guard keeps it
        return _guard_keeps(view.scan.creds, entry)
    return _rule_keeps(view, rule, entry)


def _guard_keeps(creds: Creds, entry: Entry) -> str:
    if entry.category == layout.PRE_KEY:
        if not creds.readable:
            return f"creds.json is {creds.state}: no pre-key pruned in this run"
        bound = _pre_key_bound(creds, entry.pre_key_id or 0)
        if bound is not None:
            return bound
    if entry.category == layout.SENDER_KEY and not creds.own_users:
        return (
            f"sender keys not deleted: creds.json is {creds.state} and names no account, "
            "so our own sender keys cannot be told apart"
        )
    return "kept by a guard"


def _pre_key_bound(creds: Creds, pre_key_id: int) -> str | None:
    """The pre-key guard of SPEC §2 that keeps this id, worded, or None."""
    if creds.next_pre_key_id is not None and pre_key_id >= creds.next_pre_key_id - 1:
        newest = creds.next_pre_key_id - 1
        return f"pre-key id {pre_key_id} >= nextPreKeyId-1 ({newest}), newest pre-key guard"
    first = creds.first_unuploaded_pre_key_id
    if first is not None and pre_key_id >= first:
        return f"pre-key id {pre_key_id} >= firstUnuploadedPreKeyId ({first}), unuploaded pre-key guard"
    return None


def _rule_keeps(view: TenantView, rule: Rule, entry: Entry) -> str:
    """The part of the rule that keeps the key (a rule deletes only what all its parts allow)."""
    parts = []
    mtime_ns = view.keys[entry.key_name]
    if rule.max_age is not None:
        age = age_seconds(mtime_ns, view.now)
        if age <= rule.max_age:
            parts.append(
                f"last used {format_age(age)} ago, younger than max_age {format_duration(rule.max_age)}"
            )
    if rule.keep_newest is not None and _rank(view, entry) < rule.keep_newest:
        if entry.category == layout.PRE_KEY:
            parts.append(f"pre-key id {entry.pre_key_id} is within the newest {rule.keep_newest} by id")
        else:
            parts.append(f"within the newest {rule.keep_newest} {entry.category} files by last use")
    return " and ".join(parts) or "not selected by its rule"


def _rank(view: TenantView, entry: Entry) -> int:
    """How many keys of the entry's category come before it in keep_newest's order: by id for
    pre-keys, by last use (then name) otherwise, newest first."""
    same = {e.key_name: e for e in view.scan.entries if e.regular and e.category == entry.category}
    if entry.category == layout.PRE_KEY:
        return sum(1 for key in same.values() if (key.pre_key_id or 0) > (entry.pre_key_id or 0))
    mine = (view.keys[entry.key_name], entry.key_name)
    return sum(1 for name in same if (view.keys[name], name) > mine)


def _guard(view: TenantView, entry: Entry) -> str | None:
    """The guard that applies to this entry whatever the profile, or None."""
    creds = view.scan.creds
    category = entry.category
    if not entry.regular:
        return "only regular files are deleted; symlinks are never followed"
    if category in layout.PROTECTED:
        return "protected category: no configuration can delete it"
    if category == layout.UNKNOWN:
        return "unknown entries are never deleted"
    guards = []
    if entry.name != entry.key_name:
        guards.append(f"companion of {layout.display_name(entry.key_name)}: judged and deleted with it")
    if category == layout.PRE_KEY:
        if not creds.readable:
            guards.append(f"creds.json is {creds.state}: no pre-key pruned")
        elif (bound := _pre_key_bound(creds, entry.pre_key_id or 0)) is not None:
            guards.append(bound)
    elif category == layout.SENDER_KEY:
        parsed = layout.parse_sender_key(entry.key_name)
        if not creds.own_users:
            guards.append(f"creds.json is {creds.state} and names no account: no sender key deleted")
        elif parsed is not None and parsed[1] in creds.own_users:
            memory = layout.display_name(layout.sender_key_memory_name(parsed[0]))
            guards.append(f"our own sender key: deleted together with its partner {memory}, that one first")
    elif category == layout.SENDER_KEY_MEMORY:
        own = _own_sender_keys_of(view, entry.key_name)
        if own:
            guards.append(f"partner of our own sender key {own[0]}: deleted with it, first")
    return "; ".join(guards) or None


def _own_sender_keys_of(view: TenantView, memory_name: str) -> list[str]:
    """Our own sender keys (by creds.json's account) of the group of a sender-key-memory file."""
    own = []
    for key_name in sorted(view.keys):
        if not key_name.startswith("sender-key-") or key_name.startswith("sender-key-memory-"):
            continue
        parsed = layout.parse_sender_key(key_name)
        if (
            parsed is not None
            and parsed[1] in view.scan.creds.own_users
            and layout.sender_key_memory_name(parsed[0]) == memory_name
        ):
            own.append(layout.display_name(key_name))
    return own
