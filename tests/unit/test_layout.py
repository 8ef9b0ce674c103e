"""layout.py: categories of names, company ids, status levels (SPEC §1–§3)."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wa_sessions import layout
from wa_sessions.layout import classify, classify_name

# Every example name of SPEC §2, as written by Baileys 7.0.0-rc14.
SPEC_EXAMPLES = [
    ("creds.json", "creds"),
    ("app-state-sync-key-AAAAAB3x.json", "app-state-sync-key"),
    ("app-state-sync-key-AAAAAC__q.json", "app-state-sync-key"),
    ("app-state-sync-version-regular_high.json", "app-state-sync-version"),
    ("lid-mapping-17770000000.json", "lid-mapping"),
    ("lid-mapping-200000000000000_reverse.json", "lid-mapping"),
    ("pre-key-812.json", "pre-key"),
    ("session-15550000000.0.json", "session"),
    ("session-15550000001.2.json", "session"),
    ("session-100000000000002_1.0.json", "session"),
    ("sender-key-120363000000000000@g.us--15550000001--2.json", "sender-key"),
    ("sender-key-memory-120363000000000000@g.us.json", "sender-key-memory"),
    ("identity-key-15550000001.2.json", "identity-key"),
    ("device-list-15550000000.json", "device-list"),
    ("tctoken-15550000000@s.whatsapp.net.json", "tctoken"),
]

TRICKY_NAMES = [
    # longest prefix first
    ("sender-key-memory-120363000000000001@g.us.json", "sender-key-memory"),
    ("sender-key-memory-x.json", "sender-key-memory"),
    # Baileys' `/` -> `__` and `:` -> `-` replacements stay inside the id
    ("app-state-sync-key-AAAAAC__q.json", "app-state-sync-key"),
    ("session-100000000000002_128.0.json", "session"),
    ("session-100000000000002_129.3.json", "session"),
    ("sender-key-120363000000000000@g.us--100000000000002_1--0.json", "sender-key"),
    # pre-key ids are plain ASCII decimal integers
    ("pre-key-1.json", "pre-key"),
    ("pre-key-007.json", "pre-key"),
    ("pre-key-abc.json", "unknown"),
    ("pre-key-0x1f.json", "unknown"),
    ("pre-key--1.json", "unknown"),
    ("pre-key-+1.json", "unknown"),
    ("pre-key-1.5.json", "unknown"),
    ("pre-key- 1.json", "unknown"),
    ("pre-key-\u0663.json", "unknown"),  # ARABIC-INDIC DIGIT THREE: isdigit() but not an id
    # bare prefixes have no id
    ("session-.json", "unknown"),
    ("pre-key-.json", "unknown"),
    ("sender-key-.json", "unknown"),
    ("identity-key-.json", "unknown"),
    ("tctoken-.json", "unknown"),
    ("lid-mapping-.json", "unknown"),
    # not .json, or not lower case
    ("pre-key-1.JSON", "unknown"),
    ("pre-key-1", "unknown"),
    ("session-15550000000.0.json~", "unknown"),
    ("session-15550000000.0.json.old", "unknown"),
    ("SESSION-15550000000.0.json", "unknown"),
    ("notes.txt", "unknown"),
    ("creds", "unknown"),
    ("creds.bak", "unknown"),
    ("creds.json.json", "unknown"),
    (".json", "unknown"),
    ("foo.json", "unknown"),
    ("session.json", "unknown"),
    # companions take the category of their key file
    ("creds.json.bak", "creds"),
    ("creds.json.tmp", "creds"),
    ("pre-key-5.json.bak", "pre-key"),
    ("pre-key-5.json.tmp", "pre-key"),
    ("session-15550000000.0.json.bak", "session"),
    ("sender-key-memory-120363000000000000@g.us.json.tmp", "sender-key-memory"),
    ("app-state-sync-key-AAAAAB3x.json.bak", "app-state-sync-key"),
    ("lid-mapping-17770000000.json.tmp", "lid-mapping"),
    # ...but only one level deep, and only of a .json file
    ("creds.json.bak.bak", "unknown"),
    ("pre-key-5.json.bak.tmp", "unknown"),
    ("pre-key-5.bak", "unknown"),
    ("notes.txt.bak", "unknown"),
    ("pre-key-abc.json.bak", "unknown"),
]


@pytest.mark.parametrize(("name", "category"), SPEC_EXAMPLES)
def test_classify_gives_every_spec_example_its_category(name: str, category: str) -> None:
    assert classify(name) == category


@pytest.mark.parametrize(("name", "category"), TRICKY_NAMES)
def test_classify_handles_tricky_names(name: str, category: str) -> None:
    assert classify(name) == category


def test_classify_puts_sender_key_memory_before_sender_key() -> None:
    assert classify("sender-key-memory-120363000000000000@g.us.json") == layout.SENDER_KEY_MEMORY
    assert classify("sender-key-120363000000000000@g.us--15550000001--2.json") == layout.SENDER_KEY


def test_classify_treats_a_bare_sender_key_memory_prefix_as_unknown() -> None:
    assert classify("sender-key-memory-.json") == layout.UNKNOWN


@pytest.mark.parametrize("name", ["session-15550000000.0.json", "creds.json", "pre-key-1.json"])
def test_classify_puts_anything_that_is_not_a_regular_file_in_unknown(name: str) -> None:
    assert classify(name, regular=False) == layout.UNKNOWN


def test_every_spec_example_category_is_a_known_category() -> None:
    assert {category for _, category in SPEC_EXAMPLES} | {"unknown"} == set(layout.CATEGORIES)


def test_protected_categories_are_exactly_those_of_the_spec() -> None:
    assert frozenset({"creds", "app-state-sync-key", "app-state-sync-version", "lid-mapping"}) == (
        layout.PROTECTED
    )


def test_classify_name_gives_pre_key_ids_as_integers() -> None:
    assert classify_name("pre-key-812.json")[2] == 812
    assert classify_name("pre-key-007.json")[2] == 7
    assert classify_name("pre-key-812.json.bak")[2] == 812


def test_pre_key_9_is_older_than_pre_key_10_although_it_sorts_after_it_as_text() -> None:
    names = ["pre-key-10.json", "pre-key-9.json"]
    assert sorted(names) == ["pre-key-10.json", "pre-key-9.json"]
    ids = [classify_name(name)[2] for name in names]
    assert ids == [10, 9]


@pytest.mark.parametrize(
    "name",
    ["session-15550000000.0.json", "sender-key-memory-g.json", "identity-key-1.2.json", "creds.json"],
)
def test_classify_name_gives_no_pre_key_id_outside_pre_keys(name: str) -> None:
    assert classify_name(name)[2] is None


@pytest.mark.parametrize(
    ("name", "key_name"),
    [
        ("pre-key-5.json", "pre-key-5.json"),
        ("pre-key-5.json.bak", "pre-key-5.json"),
        ("pre-key-5.json.tmp", "pre-key-5.json"),
        ("creds.json.bak", "creds.json"),
        ("notes.txt.bak", "notes.txt.bak"),
        ("pre-key-5.json.bak.tmp", "pre-key-5.json.bak.tmp"),
    ],
)
def test_the_key_file_of_a_name_strips_one_companion_suffix_of_a_json_file(name: str, key_name: str) -> None:
    assert layout.classify_name(name)[1] == key_name


def test_classify_name_groups_companions_under_their_key_file() -> None:
    assert classify_name("session-1.0.json.bak")[1] == "session-1.0.json"
    assert classify_name("session-1.0.json.tmp")[1] == "session-1.0.json"


def test_classify_name_keeps_the_full_name_of_an_unknown_entry() -> None:
    assert classify_name("notes.txt")[1] == "notes.txt"


# Non-UTF-8 names arrive from os.listdir as surrogate-escaped str.
SESSION_WITH_BAD_BYTE = os.fsdecode(b"session-\xff.json")
PRE_KEY_WITH_BAD_BYTE = os.fsdecode(b"pre-key-1\xff.json")


def test_classify_accepts_a_non_utf8_name_without_crashing() -> None:
    assert classify(SESSION_WITH_BAD_BYTE) == layout.SESSION
    assert classify(PRE_KEY_WITH_BAD_BYTE) == layout.UNKNOWN
    assert classify(os.fsdecode(b"\xfe\xff.json")) == layout.UNKNOWN


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (b"session-\xff.json", "session-\\xff.json"),
        (b"\xfe\xff", "\\xfe\\xff"),
        ("sessão-1.json".encode(), "sessão-1.json"),
        (b"pre-key-1.json", "pre-key-1.json"),
    ],
)
def test_display_name_escapes_only_bytes_that_are_not_utf8(raw: bytes, shown: str) -> None:
    assert layout.display_name(os.fsdecode(raw)) == shown


def test_display_name_is_encodable_as_strict_utf8() -> None:
    layout.display_name(SESSION_WITH_BAD_BYTE).encode("utf-8")  # must not raise


@pytest.mark.parametrize(
    ("count", "status"),
    [
        (0, "healthy"),
        (149, "healthy"),
        (150, "warning"),
        (169, "warning"),
        (170, "critical"),
        (174, "critical"),
        (175, "trigger"),
        (179, "trigger"),
        (180, "emergency"),
        (184, "emergency"),
        (185, "danger"),
        (100_000, "danger"),
    ],
)
def test_status_for_is_the_highest_level_whose_default_threshold_is_reached(count: int, status: str) -> None:
    thresholds = {"warning": 150, "critical": 170, "trigger": 175, "emergency": 180, "danger": 185}
    assert layout.status_for(count, thresholds) == status


@pytest.mark.parametrize(
    ("count", "status"),
    [(9, "healthy"), (10, "warning"), (19, "warning"), (20, "critical"), (30, "trigger"), (50, "danger")],
)
def test_status_for_uses_the_given_thresholds(count: int, status: str) -> None:
    thresholds = {"warning": 10, "critical": 20, "trigger": 30, "emergency": 40, "danger": 50}
    assert layout.status_for(count, thresholds) == status


def test_status_rank_orders_levels_from_healthy_to_danger() -> None:
    ranks = [layout.status_rank(level) for level in layout.STATUS_LEVELS]
    assert ranks == sorted(ranks)
    assert layout.status_rank("healthy") == 0
    assert layout.status_rank("danger") > layout.status_rank("emergency") > layout.status_rank("trigger")


@pytest.mark.parametrize(
    ("directory", "pattern", "company"),
    [
        ("company_962302", "company_*", "962302"),
        ("company_abc_1", "company_*", "abc_1"),
        ("962302", "*", "962302"),
        ("tenant-7-x", "tenant-*-x", "7-x"),
        ("other_962302", "company_*", "other_962302"),
    ],
)
def test_company_id_removes_the_literal_prefix_before_the_first_star(
    directory: str, pattern: str, company: str
) -> None:
    assert layout.company_id(directory, pattern) == company


@pytest.mark.parametrize(
    ("name", "pattern", "is_tenant"),
    [
        ("company_962302", "company_*", True),
        ("company_", "company_*", True),
        ("other_962302", "company_*", False),
        ("Company_962302", "company_*", False),
        ("sessionA", "*", True),
        (".wa-sessions", "*", False),
        (".cleanup.lock", "*", False),
    ],
)
def test_is_tenant_name_matches_the_glob_and_never_a_dot_entry(
    name: str, pattern: str, is_tenant: bool
) -> None:
    assert layout.is_tenant_name(name, pattern) is is_tenant


@pytest.mark.parametrize("value", ["962302", "company_962302", "a", "A.b-c_d", "9", "sess.ion-1", "a..b"])
def test_is_valid_company_argument_accepts_ids_and_folder_names(value: str) -> None:
    assert layout.is_valid_company_argument(value)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "/",
        "..",
        ".",
        "../x",
        "x/..",
        "company_1/../company_2",
        "/etc",
        ".hidden",
        "-rf",
        "_x",
        "a\x00b",
        "\x00",
        "962302\n",
        "a b",
        "ｃompany",
        "a\\b",
    ],
)
def test_is_valid_company_argument_rejects_paths_and_oddities(value: str) -> None:
    assert not layout.is_valid_company_argument(value)


@pytest.mark.parametrize(
    ("name", "own"),
    [(".cleanup.lock", True), (".wa-sessions", True), ("creds.json", False), ("pre-key-1.json", False)],
)
def test_is_own_entry_is_true_for_dot_entries_only(name: str, own: bool) -> None:
    assert layout.is_own_entry(name) is own


@pytest.mark.parametrize(
    ("jid", "user"),
    [
        ("15550000000:12@s.whatsapp.net", "15550000000"),
        ("15550000000@s.whatsapp.net", "15550000000"),
        ("100000000000002:3@lid", "100000000000002_1"),
        ("100000000000002@lid", "100000000000002_1"),
        ("15550000000:1@hosted", "15550000000_128"),
        ("100000000000002:1@hosted.lid", "100000000000002_129"),
        ("15550000000", None),
        ("@s.whatsapp.net", None),
        (":3@lid", None),
        ("", None),
    ],
)
def test_signal_user_gives_the_user_part_baileys_puts_in_key_names(jid: str, user: str | None) -> None:
    assert layout.signal_user(jid) == user


@pytest.mark.parametrize(
    ("key_name", "parsed"),
    [
        (
            "sender-key-120363000000000000@g.us--15550000001--2.json",
            ("120363000000000000@g.us", "15550000001"),
        ),
        (
            "sender-key-120363000000000000@g.us--100000000000002_1--0.json",
            ("120363000000000000@g.us", "100000000000002_1"),
        ),
        ("sender-key-a--b--c--d.json", ("a--b", "c")),
        ("sender-key-group--user.json", None),
        ("sender-key-group--user--.json", None),
        ("sender-key---user--1.json", None),
        ("sender-key-plain.json", None),
    ],
)
def test_parse_sender_key_gives_group_and_sender_user(key_name: str, parsed: tuple[str, str] | None) -> None:
    assert layout.parse_sender_key(key_name) == parsed


def test_sender_key_memory_name_is_the_memory_file_of_the_group() -> None:
    name = layout.sender_key_memory_name("120363000000000000@g.us")
    assert name == "sender-key-memory-120363000000000000@g.us.json"
    assert classify(name) == layout.SENDER_KEY_MEMORY


def test_creds_is_readable_only_when_it_parsed() -> None:
    assert layout.Creds("ok").readable
    for state in ("missing", "empty", "unparseable", "unreadable", "without nextPreKeyId"):
        assert not layout.Creds(state).readable


@settings(deadline=None)  # a loaded CI machine: the first examples import and compile
@given(
    st.lists(
        st.sampled_from(["pre-key-", "session-", "sender-key-", "sender-key-memory-", "creds", "x"]).flatmap(
            lambda prefix: st.text(max_size=12).map(lambda rest: prefix + rest + ".json")
        ),
        max_size=30,
    )
)
def test_the_cached_classifier_answers_as_the_classifier_does(names: list[str]) -> None:
    for name in names + names:  # the second time from the cache
        assert layout.classify_name_cached(name) == layout.classify_name(name)
        assert layout.CLASSIFIED[name] == layout.classify_name(name)


def test_the_classifier_cache_is_emptied_when_full(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(layout, "CLASSIFIED", {})
    monkeypatch.setattr(layout, "CLASSIFIED_KEPT", 3)
    for pre_key_id in range(3):
        layout.classify_name_cached(f"pre-key-{pre_key_id}.json")
    assert len(layout.CLASSIFIED) == 3
    assert layout.classify_name_cached("session-1.0.json") == (layout.SESSION, "session-1.0.json", None)
    assert list(layout.CLASSIFIED) == ["session-1.0.json"]
