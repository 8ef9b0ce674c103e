"""One tenant's Baileys auth state as the store tests write it (Redis and MySQL alike): a key of
every category, pre-keys 1..60 and creds with nextPreKeyId 61, values as BufferJSON.replacer
writes them; and which keys the default rules delete, cap or never touch."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from typing import Any

OWN_PHONE = "15550000000"
OWN_LID = "100000000000001"
GROUP = "120363000000000000@g.us"
OTHER_GROUP = "120363000000000001@g.us"

# key -> category, as Evolution API and mysql-baileys name them (`<type>-<id>`, raw Baileys ids)
STANDARD_KEYS = {
    "creds": "creds",
    "app-state-sync-key-AAAAAB/x": "app-state-sync-key",
    "app-state-sync-version-regular_high": "app-state-sync-version",
    "lid-mapping-17770000000": "lid-mapping",
    "lid-mapping-200000000000000_reverse": "lid-mapping",
    "session-15550000001.0": "session",
    "session-100000000000002_1.0": "session",
    f"sender-key-{GROUP}::{OWN_PHONE}::0": "sender-key",
    f"sender-key-{OTHER_GROUP}::15550000002::0": "sender-key",
    f"sender-key-memory-{GROUP}": "sender-key-memory",
    "identity-key-15550000001.0": "identity-key",
    "device-list-15550000001": "device-list",
    "tctoken-15550000001@s.whatsapp.net": "tctoken",
}
PRE_KEYS = 60
ALL_KEYS = set(STANDARD_KEYS) | {f"pre-key-{number}" for number in range(1, PRE_KEYS + 1)}

OWN_SENDER_KEY = f"sender-key-{GROUP}::{OWN_PHONE}::0"
# What the default rules delete once every key was seen 20 days ago...
AGED = {
    "session-15550000001.0",
    "session-100000000000002_1.0",
    OWN_SENDER_KEY,
    f"sender-key-{OTHER_GROUP}::15550000002::0",
    f"sender-key-memory-{GROUP}",  # the partner of our own sender key (SPEC §2)
}
# ...what the pre-key cap (keep_newest 50) deletes from the first run...
CAPPED = {f"pre-key-{number}" for number in range(1, PRE_KEYS - 50 + 1)}
# ...and what no rule ever deletes.
NEVER = {"creds", "app-state-sync-key-AAAAAB/x", "app-state-sync-version-regular_high"} | {
    "lid-mapping-17770000000",
    "lid-mapping-200000000000000_reverse",
}


def buffer(data: bytes) -> dict[str, str]:
    """A Buffer as BufferJSON.replacer writes it."""
    return {"type": "Buffer", "data": base64.b64encode(data).decode()}


def creds_value(next_pre_key_id: int = PRE_KEYS + 1) -> dict[str, Any]:
    return {
        "noiseKey": {"private": buffer(b"n" * 32), "public": buffer(b"N" * 32)},
        "registrationId": 1234,
        "nextPreKeyId": next_pre_key_id,
        "firstUnuploadedPreKeyId": next_pre_key_id,
        "me": {"id": f"{OWN_PHONE}:3@s.whatsapp.net", "lid": f"{OWN_LID}:3@lid"},
    }


def standard_values() -> Iterator[tuple[str, Any]]:
    """Every key of the standard tenant with its value (before stringifying)."""
    for name in STANDARD_KEYS:
        yield name, creds_value() if name == "creds" else {"key": buffer(name.encode()), "field": name}
    for number in range(1, PRE_KEYS + 1):
        yield f"pre-key-{number}", {"public": buffer(bytes([number % 256]) * 33)}


def digest(value: bytes) -> str:
    return hashlib.sha1(value).hexdigest()


def file_names(names: set[str]) -> set[str]:
    """Keys as a store shows them: the file Baileys would write (`:` -> `-`, `/` -> `__`)."""
    return {name.replace("/", "__").replace(":", "-") + ".json" for name in names}
