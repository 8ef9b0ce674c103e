"""Where a tenant's keys live (SPEC §10): the seam between the actions and a store.

An action opens the store of its settings (`open_store`), lists its tenants, opens one at a time
and talks to it only through `Keys`: scan, lock, put back what a killed run left, and the checked
delete the deletion engine (apply.py) drives. The rules never see a store. The folder store
(stores/folder.py), Evolution API's Redis (stores/redis.py) and mysql-baileys' table
(stores/mysql.py) implement the same two protocols;
`open_store` picks one from `settings.store`.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from wa_sessions.config import Settings
    from wa_sessions.history import LazyHistory
    from wa_sessions.results import DiskUsage
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


class Store(Protocol):
    """A store of tenants."""

    def tenants(self, companies: Sequence[str]) -> list[Tenant]:
        """The tenants named (id or name), or all. Raise UsageError for a name with no tenant."""

    def open(self, tenant: Tenant) -> AbstractContextManager[Keys]:
        """Open one tenant. Raise TenantUnavailable."""

    def disk(self) -> DiskUsage | None:
        """Free space and inodes where the keys live, if the store can say."""


def open_store(settings: Settings) -> AbstractContextManager[Store]:
    """The store of these settings: Evolution API's Redis for a `redis://` store, mysql-baileys'
    table for a `mysql://` one, else the folders under `root`. Raise UsageError if it cannot be opened, StoreUnavailable if its server cannot
    be reached."""
    if settings.store is not None and settings.store.lower().startswith(("redis://", "rediss://")):
        from wa_sessions.stores.redis import open_redis_store

        return open_redis_store(settings)
    if settings.store is not None and settings.store.lower().startswith("mysql://"):
        from wa_sessions.stores.mysql import open_mysql_store

        return open_mysql_store(settings)
    from wa_sessions.stores.folder import open_folder_store

    return open_folder_store(settings)
