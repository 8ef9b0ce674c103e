"""Evolution API v2's Redis auth state as a store (SPEC §10).

Evolution API (src/utils/use-multi-file-auth-state-redis-db.ts, src/cache/rediscache.ts) keeps
each instance's Baileys keys in one hash `<prefix>:instance:<instance id>`: field `creds` and
fields `<type>-<id>` with Baileys' ids unescaped (`sender-key-<group>::<user>::<device>`). Its
CacheService.hSet stringifies the value with BufferJSON.replacer and RedisCache.hSet stringifies
that text again, so a value is a JSON string holding the JSON document; both forms are read.

A tenant is an instance. A key is named as the file Baileys' useMultiFileAuthState would write
for it (`:` -> `-`, `/` -> `__`, then `.json`), so it gets its category, and our own sender keys
their sender-key-memory partner, exactly as in a folder; the field itself is what is deleted.

Redis keeps no time per field, so a key's age is the time since wa-sessions first saw its
current value: the hash `wa-sessions:seen:<id>` maps a field to `<sha1 of the value>
<first seen, epoch seconds>`. One Lua script lists the fields with their lengths and digests
(values never cross the network) and, in a real cleanup (for every instance it scans, never in a
scan, report, explain or dry run), records what it has not seen. A field never seen has age 0.

Deletion is compare-and-delete: a Lua script removes a field only if its digest is still the one
planned, so a write by a live Baileys between plan and apply is kept; it does so for a batch of
fields in one call (and checks them in one call before), and only while the run still holds the
tenant lock, `SET wa-sessions:lock:<id> <token> NX PX` (stores/redis_lock.py). A server that goes
away mid-run stops the run (StoreUnavailable): what a run killed there would leave.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from wa_sessions.config import Settings
from wa_sessions.errors import StoreUnavailable, UsageError
from wa_sessions.results import DiskUsage, StoreMemory
from wa_sessions.store_url import RedisAddress, parse_redis_url
from wa_sessions.stores import Tenant
from wa_sessions.stores import redis_scripts as lua
from wa_sessions.stores.key_names import chosen_tenants, text_of
from wa_sessions.stores.redis_keys import RedisKeys
from wa_sessions.stores.redis_lock import held_lock
from wa_sessions.stores.redis_wire import connect, reason_of, unless_lost

if TYPE_CHECKING:
    import redis

RUN_LOCK_PREFIX = "wa-sessions:run:"
CREDS_FIELD = b"creds"
# A lock's time to live; a thread renews it every third of that while it is held.
LOCK_TTL_MS = 30_000
_SCAN_COUNT = 1000


class RedisStore:
    """The instances of one Evolution API Redis database."""

    def __init__(
        self, settings: Settings, address: RedisAddress, client: redis.Redis, *, record_seen: bool = False
    ):
        self.settings = settings
        self.address = address
        self.client = client
        self.record_seen = record_seen
        self.lock_ttl_ms = LOCK_TTL_MS
        self.scripts = {  # EVALSHA, loading the script when the server lacks it
            name: client.register_script(source) for name, source in lua.SCRIPTS.items()
        }

    @property
    def instance_prefix(self) -> bytes:
        return f"{self.address.prefix}:instance:".encode()

    def instance_key(self, instance: str) -> bytes:
        return self.instance_prefix + instance.encode("utf-8", "surrogateescape")

    def reason(self, error: Exception) -> str:
        return reason_of(error, self.address)

    def tenants(self, companies: Sequence[str]) -> list[Tenant]:
        """The instances (hashes `<prefix>:instance:<id>`, found with SCAN), or those named by id.
        Raise UsageError for an id with no hash, StoreUnavailable if the server cannot be asked."""
        import redis

        prefix = self.instance_prefix
        try:
            keys = sorted(set(self.client.scan_iter(match=prefix + b"*", count=_SCAN_COUNT)))
            pipeline = self.client.pipeline(transaction=False)
            for key in keys:
                pipeline.type(key)
            types = pipeline.execute()
        except redis.RedisError as error:
            raise StoreUnavailable(
                f"cannot list instances on {self.address.server}: {self.reason(error)}"
            ) from None
        tenants = []
        for key, kind in zip(keys, types, strict=True):
            instance = text_of(key[len(prefix) :])
            if instance and kind == b"hash":
                tenants.append(Tenant(instance, instance, Path(text_of(key))))
        tenants.sort(key=lambda tenant: tenant.company)
        shown = self.address.shown
        return chosen_tenants(
            tenants,
            companies,
            lambda company: f"no instance {company!r} ({text_of(prefix)}{company}) in {shown}",
        )

    @contextlib.contextmanager
    def open(self, tenant: Tenant) -> Iterator[RedisKeys]:
        yield RedisKeys(self, tenant)

    def disk(self) -> DiskUsage | None:
        """No filesystem: the keys live in the server's memory."""
        return None

    def memory(self) -> StoreMemory | None:
        """`used_memory` and `maxmemory` of INFO memory; None when the server will not say (a
        managed Redis may refuse INFO). Raise StoreUnavailable if the server is gone."""
        import redis

        try:
            info = self.client.info("memory")
            return StoreMemory(self.address.shown, int(info["used_memory"]), int(info.get("maxmemory", 0)))
        except redis.RedisError as error:
            unless_lost(error, self.address)
            return None
        except (KeyError, TypeError, ValueError):
            return None

    @contextlib.contextmanager
    def run_lock(self, command: str) -> Iterator[None]:
        """Hold `wa-sessions:run:<command>` as tenant locks are held (renewed, released with its
        token, expiring with a dead holder). Raise LockBusy, LockUnsafe."""
        key = RUN_LOCK_PREFIX + command
        with held_lock(
            self.client, self.scripts, key, wait_seconds=0, ttl_ms=self.lock_ttl_ms, reason=self.reason
        ):
            yield


@contextlib.contextmanager
def open_redis_store(settings: Settings, *, record_seen: bool = False) -> Iterator[RedisStore]:
    """The Redis of `settings.store` as a store (`record_seen`: see stores.open_store). Raise
    UsageError for a bad URL, StoreUnavailable when it cannot be used."""
    assert settings.store is not None
    try:
        address = parse_redis_url(settings.store)
    except ValueError as error:
        raise UsageError(f"store: {error}") from None
    client = connect(address)
    try:
        yield RedisStore(settings, address, client, record_seen=record_seen)
    finally:
        client.close()
