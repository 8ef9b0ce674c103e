"""How a database store's key is named and listed (shared by the Redis and MySQL stores)."""

from __future__ import annotations

from pathlib import Path

import pytest

from wa_sessions.errors import UsageError
from wa_sessions.stores import Tenant
from wa_sessions.stores.key_names import NOT_SCANNED, chosen_tenants, field_file_name, key_listing, raised


def test_a_key_is_named_as_the_file_baileys_would_write() -> None:
    assert field_file_name("sender-key-g@g.us::155::0") == "sender-key-g@g.us--155--0.json"
    assert field_file_name("app-state-sync-key-AB/cd") == "app-state-sync-key-AB__cd.json"


def test_listing_ages_from_first_sight_and_keeps_two_keys_that_escape_alike_apart() -> None:
    rows = [(b"a:b", 10, b"d1", 100), (b"a-b", 20, b"d2", None), (b"\xff", 1, b"d3", None)]
    listed, planned = key_listing(rows, 500)
    assert [(name, size, mtime) for name, _, _, size, mtime in listed] == [
        ("a-b.json", 10, 100 * 10**9),
        ("a-b", 20, 500 * 10**9),  # the second that escapes alike: its raw name (unknown, kept)
        ("\udcff.json", 1, 500 * 10**9),
    ]
    assert planned["a-b"] == (b"a-b", b"d2")


def test_raised_raises_an_error_outcome_and_returns_the_rest() -> None:
    assert raised(None) is None and raised("modified since the plan") == "modified since the plan"
    with pytest.raises(FileNotFoundError):
        raised(NOT_SCANNED)


def test_chosen_tenants_names_the_unknown_one() -> None:
    tenants = [Tenant(name, name, Path(name)) for name in ("a", "b")]
    assert chosen_tenants(tenants, [], str) == tenants
    assert chosen_tenants(tenants, ["b", "a", "b"], str) == tenants
    with pytest.raises(UsageError, match="no c"):
        chosen_tenants(tenants, ["c"], lambda company: f"no {company}")
