"""Tenant folders, company ids, file categories and status levels (SPEC §1–§3).

Everything here is pure: names in, answers out. Nothing touches the disk or the clock.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

CREDS = "creds"
APP_STATE_SYNC_KEY = "app-state-sync-key"
APP_STATE_SYNC_VERSION = "app-state-sync-version"
LID_MAPPING = "lid-mapping"
PRE_KEY = "pre-key"
SESSION = "session"
SENDER_KEY = "sender-key"
SENDER_KEY_MEMORY = "sender-key-memory"
IDENTITY_KEY = "identity-key"
DEVICE_LIST = "device-list"
TCTOKEN = "tctoken"
UNKNOWN = "unknown"

CATEGORIES: tuple[str, ...] = (
    CREDS,
    APP_STATE_SYNC_KEY,
    APP_STATE_SYNC_VERSION,
    LID_MAPPING,
    PRE_KEY,
    SESSION,
    SENDER_KEY,
    SENDER_KEY_MEMORY,
    IDENTITY_KEY,
    DEVICE_LIST,
    TCTOKEN,
    UNKNOWN,
)

PROTECTED: frozenset[str] = frozenset({CREDS, APP_STATE_SYNC_KEY, APP_STATE_SYNC_VERSION, LID_MAPPING})
#: The categories no rule ever plans: the protected ones and unknown files.
NEVER_PLANNED: frozenset[str] = PROTECTED | {UNKNOWN}

# Key-file prefixes, longest first so that `sender-key-memory-` wins over `sender-key-`.
_KEY_PREFIXES: tuple[tuple[str, str], ...] = tuple(
    sorted(
        ((f"{category}-", category) for category in CATEGORIES if category not in (CREDS, UNKNOWN)),
        key=lambda pair: len(pair[0]),
        reverse=True,
    )
)

CREDS_FILE = "creds.json"
LOCK_FILE = ".cleanup.lock"

STATUS_LEVELS: tuple[str, ...] = ("healthy", "warning", "critical", "trigger", "emergency", "danger")
# A tenant that could not be read (SPEC §3): no count, so no level. Below every level: it never
# trips `--fail-on` nor makes a tenant due (what could not be read is an error of its own).
UNKNOWN_STATUS = "unknown"
STATUSES: tuple[str, ...] = (*STATUS_LEVELS, UNKNOWN_STATUS)  # what the report counts

_COMPANY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


# One match classifies a name (the scan runs it for every file). Alternatives are tried longest
# prefix first, like _KEY_PREFIXES; each has one capturing group, so the index of the group that
# matched (`lastindex`) names the category: `creds.json`, a pre-key with its numeric id, or a key
# prefix with a non-empty id; then `.json` and an optional companion suffix.
def _key_file_pattern() -> tuple[re.Pattern[str], tuple[str, ...]]:
    alternatives, categories = ["(creds)"], ["", CREDS]
    for prefix, category in _KEY_PREFIXES:
        if category == PRE_KEY:
            alternatives.append(re.escape(prefix) + "([0-9]+)")
        else:
            # a longer prefix that starts with this one owns its names even with an empty id:
            # `sender-key-memory-.json` is unknown, not a sender key of group `memory-`
            longer = [
                other[len(prefix) :]
                for other, _ in _KEY_PREFIXES
                if other != prefix and other.startswith(prefix)
            ]
            exclude = "".join(f"(?!{re.escape(rest)})" for rest in longer)
            alternatives.append("(" + re.escape(prefix[:-1]) + ")-" + exclude + ".+")
        categories.append(category)
    pattern = re.compile("(?:" + "|".join(alternatives) + r")\.json(?:\.bak|\.tmp)?", re.DOTALL)
    return pattern, tuple(categories)


KEY_FILE_NAME, CATEGORY_OF_GROUP = _key_file_pattern()
PRE_KEY_GROUP = CATEGORY_OF_GROUP.index(PRE_KEY)


def classify_name(
    name: str, _match: Callable[[str], re.Match[str] | None] = KEY_FILE_NAME.fullmatch
) -> tuple[str, str, int | None]:
    """The one classifier (SPEC §2): given the name of a regular file in a tenant folder (or a
    store's key name with `.json`), return (category, key file, pre-key id). `<key file>.bak` and
    `<key file>.tmp` take the category of their key file. A plain tuple: the scan calls it for
    every file of a fleet."""
    match = _match(name)
    if match is None:
        return UNKNOWN, name, None
    group = match.lastindex or 0
    key_name = name if name[-1] == "n" else name[:-4]  # it ends in .json, .json.bak or .json.tmp
    if group == PRE_KEY_GROUP:
        return PRE_KEY, key_name, int(match.group(group))
    return CATEGORY_OF_GROUP[group], key_name, None


#: classify_name remembered for the names met: the scan's way to it. A fleet's names repeat from
#: tenant to tenant (pre-key ids start at 1 in every folder, the same contacts and groups); a
#: name met again costs a dictionary lookup (`CLASSIFIED.get(name)`, no function call) instead of
#: a regular expression. Bounded: emptied when it holds CLASSIFIED_KEPT names (a few MB at most
#: per process, whatever the fleet).
CLASSIFIED: dict[str, tuple[str, str, int | None]] = {}
CLASSIFIED_KEPT = 16384


def classify_name_cached(name: str) -> tuple[str, str, int | None]:
    """classify_name, remembered in CLASSIFIED (the scan calls it only for a name not there)."""
    classified = CLASSIFIED.get(name)
    if classified is None:
        if len(CLASSIFIED) >= CLASSIFIED_KEPT:
            CLASSIFIED.clear()
        classified = CLASSIFIED[name] = classify_name(name)
    return classified


def classify(name: str, *, regular: bool = True) -> str:
    """Given an entry name (and whether it is a regular file), return its category only."""
    if not regular:
        return UNKNOWN
    return classify_name(name)[0]


def is_own_entry(name: str) -> bool:
    """Dot-entries (`.cleanup.lock`, `.wa-sessions`) are the tool's own: never counted or deleted."""
    return name.startswith(".")


def is_valid_company_argument(value: str) -> bool:
    """Whether `--company` may name this (an id or a directory name); checked before any read."""
    return bool(_COMPANY_ID.fullmatch(value)) and "\x00" not in value


def tenant_prefix(tenant_pattern: str) -> str:
    """The literal prefix before the first `*` of the tenant pattern."""
    star = tenant_pattern.find("*")
    return tenant_pattern if star < 0 else tenant_pattern[:star]


def is_tenant_name(name: str, tenant_pattern: str) -> bool:
    """Whether a directory directly under root with this name is a tenant."""
    return not is_own_entry(name) and fnmatch.fnmatchcase(name, tenant_pattern)


def company_id(directory_name: str, tenant_pattern: str) -> str:
    """Given a tenant directory name, return its company id (`company_962302` -> `962302`)."""
    prefix = tenant_prefix(tenant_pattern)
    if prefix and directory_name.startswith(prefix):
        return directory_name[len(prefix) :]
    return directory_name


def status_for(file_count: int, thresholds: Mapping[str, int]) -> str:
    """Given a file count, return the highest status level whose threshold it reaches."""
    status = "healthy"
    for level in STATUS_LEVELS[1:]:
        if file_count >= thresholds[level]:
            status = level
    return status


def status_rank(status: str) -> int:
    """Position of a status level, for comparisons (`healthy` is 0; `unknown` is -1, below all)."""
    if status == UNKNOWN_STATUS:
        return -1
    return STATUS_LEVELS.index(status)


def display_name(name: str) -> str:
    """A name as shown in JSON and text: non-UTF-8 bytes escaped as `\\xNN` (SPEC §6)."""
    if name.isascii():  # nearly every name: nothing to escape
        return name
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def signal_user(jid: str) -> str | None:
    """Given a jid from creds.json `me.id`/`me.lid`, return the user part Baileys uses in key names.

    `15550000000:12@s.whatsapp.net` -> `15550000000`; `100000000000002:3@lid` -> `100000000000002_1`.
    """
    if "@" not in jid:
        return None
    user_part, server = jid.split("@", 1)
    user = user_part.split(":", 1)[0].split("_", 1)[0]
    if not user:
        return None
    if server == "lid":
        return f"{user}_1"
    if server == "hosted":
        return f"{user}_128"
    if server == "hosted.lid":
        return f"{user}_129"
    return user


def parse_sender_key(key_name: str) -> tuple[str, str] | None:
    """Given a `sender-key-<group>--<user>--<device>.json` name, return (group, user)."""
    stem = key_name[len("sender-key-") : -len(".json")]
    parts = stem.rsplit("--", 2)
    if len(parts) != 3 or not all(parts):
        return None
    return parts[0], parts[1]


def sender_key_memory_name(group: str) -> str:
    """The `sender-key-memory` file of a group."""
    return f"sender-key-memory-{group}.json"


class Entry(NamedTuple):
    """One entry of a tenant folder as the scan saw it (lstat; symlinks not followed).

    A named tuple, not a dataclass: a fleet has millions of entries, and a tuple is built (and
    pickled) fastest."""

    name: str
    category: str
    key_name: str
    regular: bool
    kind: str
    inode: int
    size: int
    mtime_ns: int
    pre_key_id: int | None = None


@dataclass(frozen=True, slots=True)
class Creds:
    """What creds.json says that the rules need. `state` is `ok`, `missing`, `empty` or `unparseable`."""

    state: str
    next_pre_key_id: int | None = None
    first_unuploaded_pre_key_id: int | None = None
    own_users: frozenset[str] = frozenset()
    source: str = CREDS_FILE
    paired: bool = False  # parsed, with a `me` (the account): the folder completed pairing

    @property
    def readable(self) -> bool:
        return self.state == "ok"
