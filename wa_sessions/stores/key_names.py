"""How a key of a database store (a Redis field, a MySQL row id) is named and listed: as the file
Baileys' useMultiFileAuthState would write for it, so the one classifier (layout.classify_name)
gives it its category exactly as in a folder (`creds` is `creds.json`, protected)."""

from __future__ import annotations

import errno
import stat
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from wa_sessions.errors import UsageError
from wa_sessions.listing import ListedEntry
from wa_sessions.stores import KeyOutcome, Tenant

if TYPE_CHECKING:
    from wa_sessions.history import LazyHistory
    from wa_sessions.rules import Deletion

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


# What a batched check or delete says of a key the last scan did not list.
NOT_SCANNED = FileNotFoundError(errno.ENOENT, "not a key of the last scan")


def raised(outcome: KeyOutcome) -> str | None:
    """A key's outcome (stores.KeyOutcome) as `Keys.changed` and `Keys.delete_unless_changed`
    give it: raised if an error, else returned."""
    if isinstance(outcome, OSError):
        raise outcome
    return outcome


class OneKeyOfABatch:
    """A database store's per-key `Keys` methods: a batch of one (stores.BatchedKeys), and nothing
    to recover (a key is deleted by one atomic step, never half)."""

    def changed_many(self, deletions: Sequence[Deletion]) -> list[KeyOutcome]:
        raise NotImplementedError

    def delete_many(self, deletions: Sequence[Deletion]) -> list[KeyOutcome]:
        raise NotImplementedError

    def changed(self, deletion: Deletion) -> str | None:
        """Why the key's value is no longer the one planned (its digest differs), or None. Raise
        FileNotFoundError if it is gone, OSError if the server cannot be asked."""
        return raised(self.changed_many([deletion])[0])

    def delete_unless_changed(self, deletion: Deletion) -> str | None:
        """Delete the key if its value is still the one planned; else keep it and return why.
        Raise FileNotFoundError if it is gone, OSError if it cannot be deleted (the tenant lock
        was lost)."""
        return raised(self.delete_many([deletion])[0])

    def recover(self, company: str, history: LazyHistory) -> list[str]:
        """Nothing to put back: a key is deleted by one atomic step, never half."""
        return []


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
