"""rules.py: the pure rules engine, plan_tenant(entries, rules, creds, now) -> Plan (SPEC §2, §8)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wa_sessions import layout
from wa_sessions.durations import format_age, parse_duration
from wa_sessions.layout import Creds, Entry
from wa_sessions.rules import Plan, Rule, age_seconds, plan_tenant

from .factories import (
    DAY,
    GROUP,
    HOUR,
    MINUTE,
    NOW,
    OTHER_GROUP,
    OTHER_USER,
    OWN_LID_USER,
    OWN_USER,
    creds_ok,
    entry,
    memory,
    sender_key,
)


def plan(
    entries: Iterable[Entry], rules: Mapping[str, Rule], creds: Creds | None = None, now: float = NOW
) -> Plan:
    return plan_tenant(list(entries), rules, creds if creds is not None else creds_ok(), now)


def deleted_names(result: Plan) -> list[str]:
    return [deletion.entry.name for deletion in result.deletions]


def reasons(result: Plan) -> dict[str, str]:
    return {deletion.entry.name: deletion.reason for deletion in result.deletions}


def pre_keys(ids: Iterable[int], age: float = HOUR) -> list[Entry]:
    return [entry(f"pre-key-{pre_key_id}.json", age) for pre_key_id in ids]


# --- max_age -------------------------------------------------------------------------------------


def test_max_age_deletes_files_older_than_the_limit_and_keeps_younger_ones() -> None:
    entries = [
        entry("session-15550000001.0.json", 20 * DAY),
        entry("session-15550000002.0.json", 13 * DAY),
        entry("session-15550000003.0.json", 10 * MINUTE),
    ]
    result = plan(entries, {"session": Rule(max_age=parse_duration("14d"))})
    assert deleted_names(result) == ["session-15550000001.0.json"]


def test_max_age_reason_says_the_limit_and_the_last_use() -> None:
    result = plan(
        [entry("session-15550000001.0.json", 20 * DAY + 3 * HOUR)],
        {"session": Rule(max_age=parse_duration("14d"))},
    )
    assert reasons(result) == {"session-15550000001.0.json": "older than 14d: last used 20d 3h ago"}


def test_max_age_keeps_a_file_exactly_as_old_as_the_limit() -> None:
    entries = [
        entry("session-15550000001.0.json", 14 * DAY),
        entry("session-15550000002.0.json", 14 * DAY + 1),
    ]
    result = plan(entries, {"session": Rule(max_age=parse_duration("14d"))})
    assert deleted_names(result) == ["session-15550000002.0.json"]


def test_a_modification_time_in_the_future_counts_as_age_zero() -> None:
    entries = [entry("session-15550000001.0.json", -30 * DAY)]
    assert plan(entries, {"session": Rule(max_age=parse_duration("1s"))}).deletions == ()
    assert age_seconds(int((NOW + 30 * DAY) * 1e9), NOW) == 0.0


def test_age_is_judged_against_the_given_now_not_the_clock() -> None:
    entries = [entry("session-15550000001.0.json", 2 * DAY)]
    rules = {"session": Rule(max_age=parse_duration("3d"))}
    assert plan(entries, rules, now=NOW).deletions == ()
    assert deleted_names(plan(entries, rules, now=NOW + 2 * DAY)) == ["session-15550000001.0.json"]


def test_a_category_without_a_rule_is_kept_however_old() -> None:
    entries = [
        entry("identity-key-15550000001.2.json", 400 * DAY),
        entry("device-list-15550000000.json", 400 * DAY),
        entry("tctoken-15550000000@s.whatsapp.net.json", 400 * DAY),
        entry(memory(GROUP), 400 * DAY),
        entry("session-15550000001.0.json", 400 * DAY),
    ]
    result = plan(entries, {"session": Rule(max_age=parse_duration("14d"))})
    assert deleted_names(result) == ["session-15550000001.0.json"]
    assert plan(entries, {}).deletions == ()


# --- keep_newest ---------------------------------------------------------------------------------


def test_keep_newest_orders_pre_keys_by_integer_id_not_by_text() -> None:
    result = plan(pre_keys([9, 10, 100]), {"pre-key": Rule(keep_newest=2)})
    assert deleted_names(result) == ["pre-key-9.json"]


def test_keep_newest_orders_pre_keys_by_id_even_when_the_lowest_id_was_written_last() -> None:
    entries = [entry("pre-key-9.json", 1 * MINUTE), entry("pre-key-10.json", 5 * DAY)]
    result = plan(entries, {"pre-key": Rule(keep_newest=1)})
    assert deleted_names(result) == ["pre-key-9.json"]


def test_keep_newest_on_pre_keys_reason_names_the_id_and_the_kept_range() -> None:
    result = plan(pre_keys(range(1, 813)), {"pre-key": Rule(keep_newest=50)}, creds_ok(next_pre_key_id=813))
    assert len(result.deletions) == 762
    assert reasons(result)["pre-key-37.json"] == "pre-key id 37 beyond the newest 50 (ids 763–812 kept)"
    assert "pre-key-762.json" in reasons(result)
    assert "pre-key-763.json" not in reasons(result)


def test_keep_newest_orders_other_categories_by_last_use() -> None:
    entries = [
        entry("session-15550000001.0.json", 3 * DAY),
        entry("session-15550000002.0.json", 1 * DAY),
        entry("session-15550000003.0.json", 5 * DAY),
        entry("session-15550000004.0.json", 2 * DAY),
    ]
    result = plan(entries, {"session": Rule(keep_newest=2)})
    assert deleted_names(result) == ["session-15550000001.0.json", "session-15550000003.0.json"]
    assert reasons(result)["session-15550000003.0.json"] == "beyond the newest 2 session files by last use"


def test_keep_newest_deletes_nothing_when_there_are_no_more_files_than_that() -> None:
    assert plan(pre_keys(range(1, 51)), {"pre-key": Rule(keep_newest=50)}).deletions == ()
    assert plan(pre_keys(range(1, 52)), {"pre-key": Rule(keep_newest=50)}).deletions != ()


def test_keep_newest_zero_keeps_only_the_guarded_pre_key() -> None:
    result = plan(pre_keys(range(1, 21)), {"pre-key": Rule(keep_newest=0)}, creds_ok(next_pre_key_id=21))
    assert len(result.deletions) == 19
    assert "pre-key-20.json" not in deleted_names(result)


# --- max_age and keep_newest together ------------------------------------------------------------


def test_max_age_and_keep_newest_delete_only_what_both_allow() -> None:
    entries = [
        entry("session-15550000001.0.json", 1 * DAY),  # newest 2, young
        entry("session-15550000002.0.json", 6 * DAY),  # newest 2, old: kept by keep_newest
        entry("session-15550000003.0.json", 7 * DAY),  # beyond 2, old: deleted
        entry("session-15550000004.0.json", 8 * DAY),  # beyond 2, old: deleted
    ]
    result = plan(entries, {"session": Rule(max_age=parse_duration("5d"), keep_newest=2)})
    assert deleted_names(result) == ["session-15550000003.0.json", "session-15550000004.0.json"]


def test_max_age_and_keep_newest_keep_young_files_beyond_the_count() -> None:
    entries = pre_keys([1, 2, 3], age=HOUR) + pre_keys([4], age=10 * DAY)
    # id 4 is the newest by id; ids 1-3 are beyond keep_newest 1 but young
    assert plan(entries, {"pre-key": Rule(max_age=parse_duration("5d"), keep_newest=1)}).deletions == ()
    entries = pre_keys([1], age=10 * DAY) + pre_keys([2, 3], age=HOUR)
    result = plan(entries, {"pre-key": Rule(max_age=parse_duration("5d"), keep_newest=1)})
    assert deleted_names(result) == ["pre-key-1.json"]


def test_a_combined_rule_gives_both_reasons() -> None:
    entries = [entry("session-15550000001.0.json", 1 * DAY), entry("session-15550000002.0.json", 9 * DAY)]
    result = plan(entries, {"session": Rule(max_age=parse_duration("5d"), keep_newest=1)})
    assert reasons(result) == {
        "session-15550000002.0.json": "older than 5d: last used 9d ago, and beyond the newest 1 session files by last use"
    }


# --- the protected floor ------------------------------------------------------------------------

PROTECTED_ENTRIES = [
    "creds.json",
    "creds.json.bak",
    "creds.json.tmp",
    "app-state-sync-key-AAAAAB3x.json",
    "app-state-sync-key-AAAAAC__q.json.bak",
    "app-state-sync-version-regular_high.json",
    "lid-mapping-17770000000.json",
    "lid-mapping-200000000000000_reverse.json",
]


def test_plan_tenant_never_deletes_protected_files_even_when_given_rules_for_them() -> None:
    entries = [entry(name, 1000 * DAY) for name in PROTECTED_ENTRIES]
    everything = Rule(max_age=parse_duration("0s"), keep_newest=0)
    rules = {category: everything for category in layout.PROTECTED}
    result = plan(entries, rules)
    assert result.deletions == ()


def test_creds_json_bak_is_protected_even_without_creds_json() -> None:
    entries = [entry("creds.json.bak", 1000 * DAY), entry("creds.json.tmp", 1000 * DAY)]
    assert {item.category for item in entries} == {"creds"}
    assert (
        plan(
            entries, {"creds": Rule(max_age=parse_duration("0s"), keep_newest=0)}, Creds("missing")
        ).deletions
        == ()
    )


def test_plan_tenant_never_deletes_unknown_entries() -> None:
    entries = [entry(name, 1000 * DAY) for name in ["notes.txt", "pre-key-abc.json", "session-.json"]]
    rules = {
        "unknown": Rule(max_age=parse_duration("0s"), keep_newest=0),
        "session": Rule(max_age=parse_duration("0s")),
    }
    assert plan(entries, rules).deletions == ()


@pytest.mark.parametrize("kind", ["symlink", "directory", "fifo", "socket"])
def test_plan_tenant_never_deletes_an_entry_that_is_not_a_regular_file(kind: str) -> None:
    # even if some caller classified it like the key file it is named after
    entries = [
        entry("session-15550000001.0.json", 100 * DAY, regular=False, kind=kind, category="session"),
        entry("pre-key-1.json", 100 * DAY, regular=False, kind=kind, category="pre-key"),
        entry("pre-key-2.json", 100 * DAY),
    ]
    rules = {"session": Rule(max_age=parse_duration("1d")), "pre-key": Rule(keep_newest=0)}
    result = plan(entries, rules, creds_ok(next_pre_key_id=1))
    assert deleted_names(result) == []


# --- creds.json guards ---------------------------------------------------------------------------


def test_the_newest_pre_key_named_by_creds_survives_every_cap() -> None:
    # nextPreKeyId 50: id 49 is the newest Baileys handed out and checks for on connect
    result = plan(pre_keys(range(1, 101)), {"pre-key": Rule(keep_newest=10)}, creds_ok(next_pre_key_id=50))
    kept = set(range(1, 101)) - {deletion.entry.pre_key_id for deletion in result.deletions}
    assert kept == set(range(49, 101))


def test_no_pre_key_at_or_above_first_unuploaded_pre_key_id_is_deleted() -> None:
    result = plan(
        pre_keys(range(1, 101)),
        {"pre-key": Rule(keep_newest=10)},
        creds_ok(next_pre_key_id=101, first_unuploaded_pre_key_id=30),
    )
    kept = set(range(1, 101)) - {deletion.entry.pre_key_id for deletion in result.deletions}
    assert kept == set(range(30, 101))


def test_both_creds_guards_apply_whichever_is_lower() -> None:
    result = plan(
        pre_keys(range(1, 101)),
        {"pre-key": Rule(keep_newest=0)},
        creds_ok(next_pre_key_id=60, first_unuploaded_pre_key_id=80),
    )
    kept = set(range(1, 101)) - {deletion.entry.pre_key_id for deletion in result.deletions}
    assert min(kept) == 59


def test_pre_keys_above_next_pre_key_id_are_kept_too() -> None:
    # Files Baileys wrote beyond what creds says (creds lagging behind a batch) are not ours to judge.
    result = plan(pre_keys(range(1, 21)), {"pre-key": Rule(keep_newest=0)}, creds_ok(next_pre_key_id=10))
    assert deleted_names(result) == [
        f"pre-key-{pre_key_id}.json" for pre_key_id in sorted(range(1, 9), key=str)
    ]


def test_the_creds_guards_hold_for_an_age_rule_on_pre_keys_too() -> None:
    result = plan(
        pre_keys(range(1, 11), age=30 * DAY),
        {"pre-key": Rule(max_age=parse_duration("1d"))},
        creds_ok(next_pre_key_id=8),
    )
    assert sorted(deletion.entry.pre_key_id for deletion in result.deletions) == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("state", ["missing", "empty", "unparseable", "unreadable", "without nextPreKeyId"])
def test_pre_keys_are_not_pruned_when_creds_json_is_not_ok(state: str) -> None:
    entries = [*pre_keys(range(1, 101)), entry("session-15550000001.0.json", 30 * DAY)]
    result = plan(
        entries,
        {"pre-key": Rule(keep_newest=10), "session": Rule(max_age=parse_duration("14d"))},
        Creds(state),
    )
    assert deleted_names(result) == ["session-15550000001.0.json"]
    assert result.notes == (f"pre-keys not pruned: creds.json is {state}",)


def test_no_note_when_there_are_no_pre_keys_to_prune() -> None:
    result = plan(
        [entry("session-15550000001.0.json", 30 * DAY)], {"pre-key": Rule(keep_newest=1)}, Creds("missing")
    )
    assert result.notes == ()


# --- sender keys and their memory ----------------------------------------------------------------


def test_deleting_our_own_sender_key_deletes_its_groups_sender_key_memory() -> None:
    entries = [
        entry(sender_key(GROUP, OWN_USER, 12), 5 * DAY),
        entry(memory(GROUP), 1 * MINUTE),  # young: goes because its partner goes
        entry(memory(OTHER_GROUP), 1 * MINUTE),
    ]
    result = plan(entries, {"sender-key": Rule(max_age=parse_duration("3d"))})
    # the memory file first: a run killed in between never leaves it without our sender key
    assert deleted_names(result) == [memory(GROUP), sender_key(GROUP, OWN_USER, 12)]
    assert reasons(result)[memory(GROUP)] == (
        f"partner of our own sender key {sender_key(GROUP, OWN_USER, 12)}, deleted in this run"
    )


def test_our_own_sender_key_is_recognised_by_our_lid_too() -> None:
    entries = [entry(sender_key(GROUP, OWN_LID_USER, 0), 5 * DAY), entry(memory(GROUP), MINUTE)]
    result = plan(entries, {"sender-key": Rule(max_age=parse_duration("3d"))})
    assert deleted_names(result) == [memory(GROUP), sender_key(GROUP, OWN_LID_USER, 0)]


def test_other_participants_sender_keys_go_without_their_groups_memory() -> None:
    entries = [entry(sender_key(GROUP, OTHER_USER, 2), 5 * DAY), entry(memory(GROUP), MINUTE)]
    result = plan(entries, {"sender-key": Rule(max_age=parse_duration("3d"))})
    assert deleted_names(result) == [sender_key(GROUP, OTHER_USER, 2)]


def test_our_own_sender_key_that_stays_keeps_its_memory() -> None:
    entries = [
        entry(sender_key(GROUP, OWN_USER, 0), 1 * DAY),
        entry(sender_key(GROUP, OTHER_USER, 0), 5 * DAY),
        entry(memory(GROUP), 10 * DAY),
    ]
    result = plan(entries, {"sender-key": Rule(max_age=parse_duration("3d"))})
    assert deleted_names(result) == [sender_key(GROUP, OTHER_USER, 0)]


def test_the_memory_partner_goes_with_its_companions() -> None:
    entries = [
        entry(sender_key(GROUP, OWN_USER, 0), 5 * DAY),
        entry(memory(GROUP), MINUTE),
        entry(memory(GROUP) + ".bak", MINUTE),
    ]
    result = plan(entries, {"sender-key": Rule(max_age=parse_duration("3d"))})
    assert set(deleted_names(result)) == {
        sender_key(GROUP, OWN_USER, 0),
        memory(GROUP),
        memory(GROUP) + ".bak",
    }


def test_sender_keys_are_kept_with_a_note_when_creds_names_no_account() -> None:
    entries = [entry(sender_key(GROUP, OWN_USER, 0), 5 * DAY), entry(memory(GROUP), MINUTE)]
    result = plan(entries, {"sender-key": Rule(max_age=parse_duration("3d"))}, Creds("unparseable"))
    assert result.deletions == ()
    assert len(result.notes) == 1
    assert result.notes[0].startswith("sender keys not deleted: creds.json is unparseable")


# --- companions ---------------------------------------------------------------------------------


def test_companions_are_deleted_together_with_their_key_file() -> None:
    name = "session-15550000001.0.json"
    entries = [entry(name, 20 * DAY), entry(name + ".bak", 20 * DAY), entry(name + ".tmp", 20 * DAY)]
    result = plan(entries, {"session": Rule(max_age=parse_duration("14d"))})
    # companions first, the key file last: a run killed in between never leaves a `.bak` whose
    # old value Baileys would read back
    assert deleted_names(result) == [name + ".bak", name + ".tmp", name]
    assert reasons(result)[name + ".bak"] == f"{reasons(result)[name]} (with {name})"


def test_a_key_is_judged_by_the_newest_modification_time_of_its_members() -> None:
    name = "session-15550000001.0.json"
    entries = [entry(name, 20 * DAY), entry(name + ".bak", 1 * HOUR)]
    assert plan(entries, {"session": Rule(max_age=parse_duration("14d"))}).deletions == ()
    assert reasons(plan(entries, {"session": Rule(max_age=parse_duration("14d"))}, now=NOW + 30 * DAY))[
        name
    ].endswith("last used 30d 1h ago")


def test_companions_count_with_their_key_file_not_as_extra_pre_keys() -> None:
    entries = [*pre_keys([5, 6]), entry("pre-key-5.json.bak", HOUR), entry("pre-key-5.json.tmp", HOUR)]
    assert plan(entries, {"pre-key": Rule(keep_newest=2)}).deletions == ()
    result = plan(entries, {"pre-key": Rule(keep_newest=1)})
    assert deleted_names(result) == ["pre-key-5.json.bak", "pre-key-5.json.tmp", "pre-key-5.json"]


def test_a_lone_companion_is_judged_as_its_key() -> None:
    result = plan(
        [entry("session-15550000001.0.json.bak", 20 * DAY)], {"session": Rule(max_age=parse_duration("14d"))}
    )
    assert deleted_names(result) == ["session-15550000001.0.json.bak"]


def test_deletions_are_ordered_by_name() -> None:
    entries = [entry(f"session-{n}.0.json", 20 * DAY) for n in (3, 1, 2)]
    result = plan(entries, {"session": Rule(max_age=parse_duration("14d"))})
    assert deleted_names(result) == ["session-1.0.json", "session-2.0.json", "session-3.0.json"]


# --- format_age ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0, "0s"),
        (42, "42s"),
        (60, "1m"),
        (5 * HOUR, "5h"),
        (5 * HOUR + 12 * MINUTE + 30, "5h 12m"),
        (20 * DAY, "20d"),
        (20 * DAY + 3 * HOUR + 59 * MINUTE, "20d 3h"),
        (-5, "0s"),
    ],
)
def test_format_age_gives_the_two_largest_units(seconds: float, shown: str) -> None:
    assert format_age(seconds) == shown


# --- properties ---------------------------------------------------------------------------------

USERS = [OWN_USER, OWN_LID_USER, OTHER_USER]
GROUPS = [GROUP, OTHER_GROUP]

KEY_FILE_NAMES = [
    *(f"pre-key-{pre_key_id}.json" for pre_key_id in range(1, 41)),
    *(f"session-1555000000{n}.0.json" for n in range(6)),
    *(sender_key(group, user, device) for group in GROUPS for user in USERS for device in range(3)),
    *(memory(group) for group in GROUPS),
    *(f"identity-key-1555000000{n}.0.json" for n in range(4)),
    *(f"device-list-1555000000{n}.json" for n in range(4)),
    *(f"tctoken-1555000000{n}@s.whatsapp.net.json" for n in range(4)),
    *PROTECTED_ENTRIES,
    "notes.txt",
    "pre-key-abc.json",
    "session-.json",
    "core",
]
# Mostly key files, some `.bak`/`.tmp` companions (sampling a list is much faster than composing);
# sender-key-memory files weighted up so that own sender keys often meet their group's memory.
entry_names = st.sampled_from(
    [
        *KEY_FILE_NAMES,
        *KEY_FILE_NAMES,
        *(name + suffix for name in KEY_FILE_NAMES for suffix in (".bak", ".tmp")),
        *(memory(group) for group in GROUPS for _ in range(12)),
    ]
)
# Hypothesis favours small values; steer it towards ages on both sides of every duration used.
ages = st.one_of(
    st.sampled_from(
        [-DAY, 0, 30 * MINUTE, 2 * HOUR, DAY + 1, 2 * DAY, 4 * DAY, 10 * DAY, 15 * DAY, 30 * DAY]
    ),
    st.integers(-2 * DAY, 30 * DAY),
)
kinds = st.sampled_from(["file"] * 6 + ["symlink", "directory", "fifo"])
likely = st.sampled_from([True, True, True, False])


@st.composite
def tenant_entries(draw: st.DrawFn, names: st.SearchStrategy[str] = entry_names) -> list[Entry]:
    """A tenant folder: unique names, mostly regular files. A non-regular entry keeps the category
    its name would have, to check that the engine does not rely on the scan's `unknown`."""
    drawn = draw(
        st.lists(st.tuples(names, ages, kinds), min_size=5, max_size=30, unique_by=lambda item: item[0])
    )
    return [
        entry(name, age, regular=kind == "file", kind=kind, category=layout.classify(name))
        for name, age, kind in drawn
    ]


durations = st.sampled_from(["0s", "1h", "1d", "3d", "14d"]).map(parse_duration)
rule_strategy = st.one_of(
    st.builds(Rule, max_age=durations),
    st.builds(Rule, keep_newest=st.integers(0, 8)),
    st.builds(Rule, max_age=durations, keep_newest=st.integers(0, 8)),
)
PLANNABLE = [
    category for category in layout.CATEGORIES if category not in layout.PROTECTED | {layout.UNKNOWN}
]


@st.composite
def rules_strategy(draw: st.DrawFn) -> dict[str, Rule]:
    """Rules on most plannable categories, and now and then on protected or unknown ones."""
    rules = {}
    for category in layout.CATEGORIES:
        if draw(likely) if category in PLANNABLE else not draw(likely):
            rules[category] = draw(rule_strategy)
    return rules


creds_strategy = st.one_of(
    st.builds(
        Creds,
        state=st.just("ok"),
        next_pre_key_id=st.none() | st.integers(1, 45),
        first_unuploaded_pre_key_id=st.none() | st.integers(1, 45),
        own_users=st.sampled_from(
            [frozenset(USERS[:2]), frozenset(USERS[:1]), frozenset(USERS[1:2]), frozenset()]
        ),
    ),
    st.sampled_from([Creds("missing"), Creds("unparseable"), Creds("empty")]),
)
PROPERTY_SETTINGS = settings(max_examples=100, deadline=None)


def plannable(item: Entry) -> bool:
    return item.regular and item.category not in layout.PROTECTED and item.category != layout.UNKNOWN


def is_partner(reason: str) -> bool:
    return reason.startswith("partner of our own sender key")


@PROPERTY_SETTINGS
@given(tenant_entries(), rules_strategy(), creds_strategy)
def test_property_no_protected_unknown_or_non_regular_entry_is_ever_planned(
    entries: list[Entry], rules: dict[str, Rule], creds: Creds
) -> None:
    for deletion in plan_tenant(entries, rules, creds, NOW).deletions:
        assert deletion.entry.regular
        assert deletion.entry.category not in layout.PROTECTED
        assert deletion.entry.category != layout.UNKNOWN
        assert deletion.entry in entries


@PROPERTY_SETTINGS
@given(tenant_entries(), rules_strategy(), creds_strategy)
def test_property_a_second_plan_on_what_the_first_left_deletes_nothing(
    entries: list[Entry], rules: dict[str, Rule], creds: Creds
) -> None:
    first = plan_tenant(entries, rules, creds, NOW)
    gone = {deletion.entry.name for deletion in first.deletions}
    left = [item for item in entries if item.name not in gone]
    assert plan_tenant(left, rules, creds, NOW).deletions == ()


@PROPERTY_SETTINGS
@given(tenant_entries(), rules_strategy(), creds_strategy)
def test_property_every_deletion_carries_a_reason(
    entries: list[Entry], rules: dict[str, Rule], creds: Creds
) -> None:
    result = plan_tenant(entries, rules, creds, NOW)
    assert all(deletion.reason.strip() for deletion in result.deletions)
    assert len({deletion.entry.name for deletion in result.deletions}) == len(result.deletions)


@PROPERTY_SETTINGS
@given(tenant_entries(), rules_strategy(), creds_strategy)
def test_property_nothing_younger_than_max_age_is_deleted_by_its_rule(
    entries: list[Entry], rules: dict[str, Rule], creds: Creds
) -> None:
    newest: dict[str, int] = {}
    for item in entries:
        if plannable(item):
            newest[item.key_name] = max(newest.get(item.key_name, item.mtime_ns), item.mtime_ns)
    for deletion in plan_tenant(entries, rules, creds, NOW).deletions:
        if is_partner(deletion.reason):
            continue
        rule = rules[deletion.entry.category]
        if rule.max_age is not None:
            assert age_seconds(newest[deletion.entry.key_name], NOW) > rule.max_age


@PROPERTY_SETTINGS
@given(tenant_entries(), rules_strategy(), creds_strategy)
def test_property_a_keys_companions_are_all_deleted_or_all_kept(
    entries: list[Entry], rules: dict[str, Rule], creds: Creds
) -> None:
    gone = {deletion.entry.name for deletion in plan_tenant(entries, rules, creds, NOW).deletions}
    members: dict[str, set[str]] = {}
    for item in entries:
        if plannable(item):
            members.setdefault(item.key_name, set()).add(item.name)
    for names in members.values():
        assert names <= gone or not names & gone


SENDER_KEY_NAMES = [
    *(sender_key(group, user, device) for group in GROUPS for user in USERS for device in range(2)),
    *(memory(group) for group in GROUPS for _ in range(3)),
]
sender_key_names = st.sampled_from([*SENDER_KEY_NAMES, *(name + ".bak" for name in SENDER_KEY_NAMES)])
sender_key_rules = st.fixed_dictionaries(
    {"sender-key": rule_strategy}, optional={"sender-key-memory": rule_strategy, "session": rule_strategy}
)


@PROPERTY_SETTINGS
@given(tenant_entries(sender_key_names), sender_key_rules, creds_strategy)
def test_property_a_sender_key_memory_goes_exactly_when_our_own_sender_key_of_its_group_goes(
    entries: list[Entry], rules: dict[str, Rule], creds: Creds
) -> None:
    result = plan_tenant(entries, rules, creds, NOW)
    own_groups_deleted = set()
    for deletion in result.deletions:
        parsed = layout.parse_sender_key(deletion.entry.key_name)
        if deletion.entry.category == layout.SENDER_KEY and parsed and parsed[1] in creds.own_users:
            own_groups_deleted.add(parsed[0])
    for deletion in result.deletions:
        if is_partner(deletion.reason):
            assert deletion.entry.category == layout.SENDER_KEY_MEMORY
            assert deletion.entry.key_name in {memory(group) for group in own_groups_deleted}
    gone = {deletion.entry.name for deletion in result.deletions}
    for group in own_groups_deleted:
        members = {item.name for item in entries if plannable(item) and item.key_name == memory(group)}
        assert members <= gone


companion_sets = st.sampled_from([(), (), (".bak",), (".tmp",), (".bak", ".tmp")])


@st.composite
def pre_key_folder(draw: st.DrawFn) -> list[Entry]:
    """Pre-keys with unique ids, some with companions."""
    drawn = draw(
        st.lists(
            st.tuples(st.integers(1, 80), ages, companion_sets), max_size=60, unique_by=lambda item: item[0]
        )
    )
    return [
        entry(f"pre-key-{pre_key_id}.json{suffix}", age + index)
        for pre_key_id, age, suffixes in drawn
        for index, suffix in enumerate(("", *suffixes))
    ]


@PROPERTY_SETTINGS
@given(
    pre_key_folder(),
    st.integers(0, 70),
    st.integers(1, 90),
    st.none() | st.integers(1, 90),
)
def test_property_keep_newest_leaves_the_highest_pre_key_ids_and_every_guarded_one(
    entries: list[Entry], keep_newest: int, next_pre_key_id: int, first_unuploaded: int | None
) -> None:
    creds = creds_ok(next_pre_key_id=next_pre_key_id, first_unuploaded_pre_key_id=first_unuploaded)
    result = plan_tenant(entries, {"pre-key": Rule(keep_newest=keep_newest)}, creds, NOW)
    gone = {deletion.entry.name for deletion in result.deletions}
    all_ids = sorted({item.pre_key_id for item in entries if item.pre_key_id is not None}, reverse=True)
    left_ids = sorted({item.pre_key_id for item in entries if item.name not in gone}, reverse=True)
    guarded = [
        pre_key_id
        for pre_key_id in all_ids
        if pre_key_id >= next_pre_key_id - 1 or (first_unuploaded and pre_key_id >= first_unuploaded)
    ]
    assert len(left_ids) <= max(keep_newest, len(guarded))
    assert left_ids == all_ids[: len(left_ids)]
    assert set(guarded) <= set(left_ids)
    assert len(left_ids) >= min(keep_newest, len(all_ids))
