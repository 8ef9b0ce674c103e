"""What creds.json says that the rules need (SPEC §2): the pre-key bounds and our own account.

Pure: bytes in, a Creds out. Reading the bytes is the store's (a file, a Redis field, a row).
"""

from __future__ import annotations

import json
import math

from wa_sessions import layout
from wa_sessions.layout import Creds

CREDS_MAX_BYTES = 4 * 1024 * 1024


def parse_creds(data: bytes | None, source: str) -> Creds:
    """Given the bytes of creds.json (None: it could not be read) and where they came from,
    return its state and what it says."""
    if data is None:
        return Creds("unreadable", source=source)
    if not data.strip():
        return Creds("empty", source=source)
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        return Creds("unparseable", source=source)
    if not isinstance(document, dict):
        return Creds("unparseable", source=source)
    me = document.get("me") if isinstance(document.get("me"), dict) else {}
    own_users = set()
    for jid_key in ("id", "lid"):
        jid = me.get(jid_key) if me else None
        if isinstance(jid, str) and (user := layout.signal_user(jid)):
            own_users.add(user)
    # A pre-key bound of the wrong type ("5", 5.0, true, null, a list) is no bound: the guard of
    # SPEC §2 cannot be worked out, so the state is not `ok` and no pre-key is pruned. A missing
    # firstUnuploadedPreKeyId leaves nextPreKeyId as the only bound.
    state = _bound_problem(document, "nextPreKeyId", required=True) or _bound_problem(
        document, "firstUnuploadedPreKeyId", required=False
    )
    return Creds(
        state or "ok",
        next_pre_key_id=_integer(document.get("nextPreKeyId")),
        first_unuploaded_pre_key_id=_integer(document.get("firstUnuploadedPreKeyId")),
        own_users=frozenset(own_users),
        source=source,
        paired=bool(me),
    )


def _integer(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _bound_problem(document: dict[str, object], key: str, *, required: bool) -> str | None:
    """Why creds.json's pre-key bound `key` cannot be used (the Creds state), or None if it can."""
    if key not in document:
        return f"without {key}" if required else None
    value = document[key]
    if _integer(value) is not None:
        return None
    return f"invalid: {key} is {_json_kind(value)}, not an integer"


def _json_kind(value: object) -> str:
    """What a parsed JSON value is, for a message: `a string`, `a boolean`, `null`..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, float):
        return "a floating-point number" if math.isfinite(value) else "an out-of-range number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
