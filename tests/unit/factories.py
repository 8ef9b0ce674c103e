"""Plain-data builders shared by the unit tests: entries as the scan would see them, and creds."""

from __future__ import annotations

from wa_sessions import layout
from wa_sessions.layout import Creds, Entry

NOW = 1_800_000_000.0  # a fixed "now" (2027-01-15), epoch seconds
MINUTE = 60
HOUR = 3600
DAY = 86400

OWN_USER = "15550000000"
OWN_LID_USER = "100000000000002_1"
OTHER_USER = "15550000001"
GROUP = "120363000000000000@g.us"
OTHER_GROUP = "120363000000000001@g.us"


def entry(
    name: str,
    age: float = 0.0,
    *,
    regular: bool = True,
    kind: str | None = None,
    size: int = 100,
    inode: int = 0,
    category: str | None = None,
) -> Entry:
    """An entry `age` seconds old at NOW (negative: modified in the future).

    Like the scan: a regular file is classified by its name, anything else is `unknown`
    unless a category is forced (to check that the engine does not trust it).
    """
    classified_category, key_name, pre_key_id = layout.classify_name(name)
    if category is None:
        category = classified_category if regular else layout.UNKNOWN
    return Entry(
        name=name,
        category=category,
        key_name=key_name if regular else name,
        regular=regular,
        kind=kind or ("file" if regular else "symlink"),
        inode=inode,
        size=size,
        mtime_ns=int((NOW - age) * 1_000_000_000),
        pre_key_id=pre_key_id if regular else None,
    )


def creds_ok(
    next_pre_key_id: int | None = 1000,
    first_unuploaded_pre_key_id: int | None = None,
    own_users: frozenset[str] = frozenset({OWN_USER, OWN_LID_USER}),
) -> Creds:
    """A creds.json that parsed."""
    return Creds(
        "ok",
        next_pre_key_id=next_pre_key_id,
        first_unuploaded_pre_key_id=first_unuploaded_pre_key_id,
        own_users=own_users,
    )


def sender_key(group: str, user: str, device: int = 0) -> str:
    return f"sender-key-{group}--{user}--{device}.json"


def memory(group: str) -> str:
    return f"sender-key-memory-{group}.json"
