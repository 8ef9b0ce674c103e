"""The scan's Columns (key_groups.Columns) and the planner's paths over them: what the scan hands
the planner gives the plan the entries give, whatever the tenant (companions, odd names, guards)."""

from __future__ import annotations

import gc
import stat

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wa_sessions import layout, verdicts
from wa_sessions.actions.cleanup import collector_paused
from wa_sessions.durations import format_age
from wa_sessions.key_groups import Columns, Key
from wa_sessions.layout import Creds, Entry
from wa_sessions.listing import ListedEntry
from wa_sessions.rules import Rule, judged_categories, plan_tenant
from wa_sessions.scan import scan_listing

from .factories import DAY, HOUR, NOW, creds_ok, entry
from .test_rules import PROPERTY_SETTINGS, creds_strategy, entry_names, rules_strategy, tenant_entries

ODD_NAMES = [
    "pre-key-5.json",
    "pre-key-05.json",
    "pre-key-005.json.bak",
    "pre-key-99999999999999999999999.json",
    "session-x.json.tmp",
    "sender-key-memory-.json",
    "notes.txt",
]
names = st.one_of(entry_names, st.sampled_from(ODD_NAMES))


def listing_of(entries: list[Entry]) -> list[ListedEntry]:
    kinds = {"symlink": stat.S_IFLNK, "directory": stat.S_IFDIR, "fifo": stat.S_IFIFO}
    return [
        (
            item.name,
            (stat.S_IFREG if item.regular else kinds[item.kind]) | 0o600,
            item.inode,
            item.size,
            item.mtime_ns,
        )
        for item in entries
    ]


@PROPERTY_SETTINGS
@given(tenant_entries(names), rules_strategy(), creds_strategy)
def test_property_the_plan_of_the_scans_columns_is_the_plan_of_its_entries(
    entries: list[Entry], rules_: dict[str, Rule], creds: Creds
) -> None:
    scanned = scan_listing(listing_of(entries), NOW, judged_categories(rules_), lambda _: creds)
    assert plan_tenant(scanned.columns, rules_, creds, NOW) == plan_tenant(entries, rules_, creds, NOW)
    assert plan_tenant(scanned.entries, rules_, creds, NOW) == plan_tenant(entries, rules_, creds, NOW)
    for deletion in plan_tenant(scanned.columns, rules_, creds, NOW).deletions:
        assert type(deletion.entry) is Entry


@PROPERTY_SETTINGS
@given(tenant_entries(names))
def test_property_a_scan_keeps_each_entry_asked_for_once_and_counts_as_a_count_only_scan(
    entries: list[Entry],
) -> None:
    listed = listing_of(entries)
    counted = scan_listing(listed, NOW, frozenset(), lambda _: creds_ok())
    assert counted.entries == []
    every = scan_listing(listed, NOW, None, lambda _: creds_ok())
    assert sorted(item.name for item in every.entries) == sorted(item.name for item in entries)
    judged = scan_listing(listed, NOW, {layout.SESSION, layout.PRE_KEY}, lambda _: creds_ok())
    assert sorted(item.name for item in judged.entries) == sorted(
        item.name for item in entries if item.regular and item.category in (layout.SESSION, layout.PRE_KEY)
    )
    for scanned in (every, judged):
        assert scanned.counts == counted.counts
        assert (scanned.bytes, scanned.problems) == (counted.bytes, counted.problems)


def test_columns_group_only_a_category_with_a_companion() -> None:
    entries = [
        entry("session-1.0.json", DAY),
        entry("session-1.0.json.bak", 2 * DAY),
        entry("pre-key-1.json", DAY),
        entry("pre-key-2.json", DAY),
        entry("creds.json"),
        entry("session-2.0.json", regular=False),
    ]
    columns = Columns.of(entries)
    assert columns.grouped == {layout.SESSION}
    assert columns.keys(layout.PRE_KEY) is columns.by_category[layout.PRE_KEY]  # nothing copied
    (key,) = columns.keys(layout.SESSION)
    assert isinstance(key, Key) and [item.name for item in key.entries] == [
        "session-1.0.json",
        "session-1.0.json.bak",
    ]
    assert columns.keys(layout.CREDS) == () and columns.keys(layout.UNKNOWN) == ()


def test_age_reasons_are_worded_by_the_hour_and_their_cache_is_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(verdicts, "_AGE_REASONS", {})
    monkeypatch.setattr(verdicts, "_AGE_REASONS_KEPT", 4)
    ages = [20 * DAY + hour * HOUR + 59 * 60 for hour in range(10)] + [5 * HOUR + 7 * 60, 14 * DAY + 1]
    entries = [entry(f"session-{n}.0.json", age) for n, age in enumerate(ages)]
    for _ in range(2):  # the second time from the cache
        result = plan_tenant(entries, {"session": Rule(max_age=HOUR)}, creds_ok(), NOW)
        assert {d.entry.name: d.reason for d in result.deletions} == {
            item.name: f"older than 1h: last used {format_age(age)} ago"
            for item, age in zip(entries, ages, strict=True)
        }
    assert len(verdicts._AGE_REASONS[HOUR]) == 11  # more than kept: the next judgement starts again
    plan_tenant(entries[:1], {"session": Rule(max_age=HOUR)}, creds_ok(), NOW)
    assert list(verdicts._AGE_REASONS[HOUR].values()) == [
        f"older than 1h: last used {format_age(ages[0])} ago"
    ]


def test_the_collector_is_paused_inside_and_resumes_as_it_was() -> None:
    assert gc.isenabled()
    with pytest.raises(ValueError), collector_paused():
        assert not gc.isenabled()
        raise ValueError
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # was off: left off
    finally:
        gc.enable()
