"""How a key of a database store (a Redis field, a MySQL row id) is named and listed: as the file
Baileys' useMultiFileAuthState would write for it, so the one classifier (layout.classify_name)
gives it its category exactly as in a folder (`creds` is `creds.json`, protected)."""

from __future__ import annotations

import errno
import stat
from collections.abc import Callable, Iterable, Sequence

from wa_sessions.errors import UsageError
from wa_sessions.listing import ListedEntry
from wa_sessions.stores import Tenant

# A key is listed as a regular file readable by its owner only (what the scan expects of a key).
KEY_MODE = stat.S_IFREG | 0o600

#: One key as a store lists it: raw name, value length, digest of the value, first seen (epoch
#: seconds; None when its current value was never seen).
KeyRow = tuple[bytes, int, bytes, int | None]
#: The name shown (the file-equivalent) -> (raw name, digest planned).
Planned = dict[str, tuple[bytes, bytes]]


def field_file_name(field: str) -> str:
    """The file Baileys' useMultiFileAuthState would write for a key named `field` (`:` -> `-`,
    `/` -> `__`, then `.json`): what the one classifier (layout.classify_name) reads."""
    return field.replace("/", "__").replace(":", "-") + ".json"


def text_of(value: bytes) -> str:
    """Bytes from a store as text: UTF-8, with any other byte kept (surrogateescape)."""
    return value.decode("utf-8", "surrogateescape")


def key_listing(rows: Iterable[KeyRow], moment: int) -> tuple[list[ListedEntry], Planned]:
    """Given a tenant's keys, return them as a listing (scan.py) — each named as its file, its age
    from its first sight (`moment` when never seen) — and what each name stands for. Two keys
    that escape alike: the second keeps its raw name (unknown, kept); a third is left out."""
    planned: Planned = {}
    listed: list[ListedEntry] = []
    for number, (raw, size, digest, first) in enumerate(rows, start=1):
        name = field_file_name(text_of(raw))
        if name in planned:
            name = text_of(raw)
        if name in planned:
            continue
        planned[name] = (raw, digest)
        first_seen = moment if first is None else first
        listed.append((name, KEY_MODE, number, size, first_seen * 1_000_000_000))
    return listed, planned


def planned_key(planned: Planned, name: str) -> tuple[bytes, bytes]:
    """The raw name and planned digest of the key listed as `name`. Raise OSError (ENOENT) for a
    name the last scan did not list."""
    try:
        return planned[name]
    except KeyError:
        raise OSError(errno.ENOENT, "not a key of the last scan") from None


def chosen_tenants(
    tenants: list[Tenant], companies: Sequence[str], unknown: Callable[[str], str]
) -> list[Tenant]:
    """The tenants named in `companies` (all when none is), sorted. Raise UsageError with
    `unknown(company)` for a name with no tenant."""
    if not companies:
        return tenants
    known = {tenant.company: tenant for tenant in tenants}
    for company in companies:
        if company not in known:
            raise UsageError(unknown(company))
    return sorted(
        {company: known[company] for company in companies}.values(), key=lambda tenant: tenant.company
    )
