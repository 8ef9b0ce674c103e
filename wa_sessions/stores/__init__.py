"""Where a tenant's keys live (SPEC §10): the seam between the actions and a store.

An action opens the store of its settings (`open_store`), lists its tenants, opens one at a time
and talks to it only through `Keys`: scan, lock, put back what a killed run left, and the checked
delete the deletion engine (apply.py) drives. The rules never see a store. The folder store
(stores/folder.py), Evolution API's Redis (stores/redis.py) and mysql-baileys' table
(stores/mysql.py) implement the same two protocols;
`open_store` picks one from `settings.store`.

A store on a server may offer more (checked with isinstance, so the folder store needs none of
it): `BatchedKeys`, the checks and compare-and-deletes of many keys in one round trip;
`ServerStore`, multitenant-cleanup's run lock and the server's memory.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from wa_sessions.config import Settings
    from wa_sessions.history import LazyHistory
    from wa_sessions.results import DiskUsage, StoreMemory
    from wa_sessions.rules import Deletion
    from wa_sessions.scan import TenantScan


class TenantUnavailable(Exception):
    """A tenant could not be opened or read; the message says why."""


@dataclass(frozen=True, slots=True)
class Tenant:
    """A tenant of a store: its company id, its name in the store (the folder name) and where it
    is (shown in output). `is_symlink`: a folder that is a symlink, listed to be reported, never
    followed."""

    company: str
    name: str
    path: Path
    is_symlink: bool = False


class Keys(Protocol):
    """One tenant's keys, opened."""

    def scan(self, now: float | None, keep: Container[str] | None) -> TenantScan:
        """Count, classify and (for `keep`) list the keys. Raise TenantUnavailable."""

    def lock(self, wait_seconds: float) -> AbstractContextManager[None]:
        """Hold the tenant lock. Raise LockBusy, LockUnsafe."""

    def lock_is_held(self) -> bool:
        """Whether another process holds the tenant lock (taking nothing)."""

    def recover(self, company: str, history: LazyHistory) -> list[str]:
        """Under the lock: put back what a killed run left half-deleted. Return notes."""

    def changed(self, deletion: Deletion) -> str | None:
        """Why the key is no longer the one the plan judged, or None. Raise FileNotFoundError if
        it is gone, OSError if it cannot be looked at."""

    def delete_unless_changed(self, deletion: Deletion) -> str | None:
        """Delete the key if it is still the one planned; else keep it and return why. Raise
        FileNotFoundError if it is gone, OSError if it cannot be deleted."""


# What became of one key of a batch: None (as planned; deleted, for a delete), a reason it was
# kept (str), FileNotFoundError (gone) or another OSError (could not be checked or deleted): what
# Keys.changed and Keys.delete_unless_changed return or raise for one key.
KeyOutcome = str | OSError | None


@runtime_checkable
class BatchedKeys(Protocol):
    """A tenant's keys in a store that checks and deletes many keys per round trip."""

    batch_size: int

    def changed_many(self, deletions: Sequence[Deletion]) -> list[KeyOutcome]:
        """`changed` of each deletion, in order. Raise StoreUnavailable if the server is gone."""

    def delete_many(self, deletions: Sequence[Deletion]) -> list[KeyOutcome]:
        """`delete_unless_changed` of each deletion, in order, in one atomic step: a key whose
        unit had a key changed earlier in the batch is kept (its outcome: a reason). Raise
        StoreUnavailable if the server is gone."""


@runtime_checkable
class ServerStore(Protocol):
    """A store on a server shared by several hosts."""

    def run_lock(self, command: str) -> AbstractContextManager[None]:
        """Hold the store's run lock of `command`, excluding its runs on every host. Raise
        LockBusy, LockUnsafe."""

    def memory(self) -> StoreMemory | None:
        """The server's memory (what free disk and inodes are for folders), if it can say."""


class Store(Protocol):
    """A store of tenants."""

    def tenants(self, companies: Sequence[str]) -> list[Tenant]:
        """The tenants named (id or name), or all. Raise UsageError for a name with no tenant."""

    def open(self, tenant: Tenant) -> AbstractContextManager[Keys]:
        """Open one tenant. Raise TenantUnavailable."""

    def disk(self) -> DiskUsage | None:
        """Free space and inodes where the keys live, if the store can say."""


def open_store(settings: Settings, *, record_seen: bool = False) -> AbstractContextManager[Store]:
    """The store of these settings: Evolution API's Redis for a `redis://` store, mysql-baileys'
    table for a `mysql://` one, else the folders under `root`. `record_seen` (a real cleanup): a
    store that keeps no time per key records the first sight of every value of every tenant it
    scans (SPEC §10). Raise UsageError if it cannot be opened, StoreUnavailable if its server
    cannot be reached."""
    scheme = (settings.store or "").lower()
    if scheme.startswith(("redis://", "rediss://")):
        from wa_sessions.stores.redis import open_redis_store

        return open_redis_store(settings, record_seen=record_seen)
    if scheme.startswith("mysql://"):
        from wa_sessions.stores.mysql import open_mysql_store

        return open_mysql_store(settings, record_seen=record_seen)
    from wa_sessions.stores.folder import open_folder_store

    return open_folder_store(settings)
