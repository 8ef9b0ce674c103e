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
(values never cross the network) and, only when the tenant lock is held (a real cleanup, never a
scan or a dry run), records what it has not seen. A field never seen has age 0.

Deletion is compare-and-delete: a Lua script removes a field only if its digest is still the one
planned, so a write by a live Baileys between plan and apply is kept. The tenant lock is
`SET wa-sessions:lock:<id> <token> NX PX`, renewed by a thread while held and released only by
its token: a holder that dies lets it expire.
"""

from __future__ import annotations

import contextlib
import errno
import secrets
import time
from collections.abc import Container, Iterator, Sequence, Set
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wa_sessions import layout
from wa_sessions.config import Settings
from wa_sessions.creds import CREDS_MAX_BYTES, parse_creds
from wa_sessions.errors import StoreUnavailable, UsageError
from wa_sessions.history import LazyHistory
from wa_sessions.layout import Creds
from wa_sessions.listing import ListedEntry
from wa_sessions.locks import LockBusy, LockUnsafe
from wa_sessions.results import DiskUsage
from wa_sessions.rules import Deletion
from wa_sessions.scan import TenantScan, scan_listing
from wa_sessions.store_url import RedisAddress, parse_redis_url
from wa_sessions.stores import Tenant, TenantUnavailable
from wa_sessions.stores.key_names import chosen_tenants, key_listing, planned_key, text_of
from wa_sessions.stores.redis_wire import (
    DELETE_SCRIPT,
    DIGEST_SCRIPT,
    LIST_SCRIPT,
    RELEASE_SCRIPT,
    RENEW_SCRIPT,
    LockRenewal,
    connect,
    evolution_value,
    reason_of,
)

if TYPE_CHECKING:
    import redis

SEEN_PREFIX = "wa-sessions:seen:"
LOCK_PREFIX = "wa-sessions:lock:"
CREDS_FIELD = b"creds"
# The tenant lock's time to live; a thread renews it every third of that while it is held.
LOCK_TTL_MS = 30_000
_POLL_SECONDS = 0.05
_SCAN_COUNT = 1000


class RedisKeys:
    """One instance's hash, with its seen record and its lock."""

    def __init__(self, store: RedisStore, tenant: Tenant):
        self.store = store
        self.client = store.client
        self.scripts = store.scripts
        self.key = store.instance_key(tenant.name)
        self.seen_key = SEEN_PREFIX + tenant.name
        self.lock_key = LOCK_PREFIX + tenant.name
        self.renewal: LockRenewal | None = None
        # name shown (the file-equivalent) -> (field, digest planned), from the last scan
        self.planned: dict[str, tuple[bytes, bytes]] = {}

    # ---------------------------------------------------------------- scan

    def scan(self, now: float | None = None, keep: Container[str] | None = None) -> TenantScan:
        """Count and classify the fields; under the lock (a real cleanup) record first-seen times
        of values not seen before. Raise TenantUnavailable."""
        import redis

        moment = int(time.time() if now is None else now)
        record = self.renewal is not None
        try:
            rows = self.scripts["list"](keys=[self.key, self.seen_key], args=[moment, "1" if record else "0"])
            if not rows and not self.client.exists(self.key):
                raise TenantUnavailable(f"instance hash {text_of(self.key)} is gone")
        except redis.RedisError as error:
            raise TenantUnavailable(f"cannot read {text_of(self.key)}: {self.store.reason(error)}") from None
        listed = self._listed(rows, moment)

        def creds_of(names: Set[str]) -> Creds:
            return self._read_creds(names)

        try:
            return scan_listing(listed, now, keep, creds_of)
        except redis.RedisError as error:
            raise TenantUnavailable(
                f"cannot read creds of {text_of(self.key)}: {self.store.reason(error)}"
            ) from None

    def _listed(self, rows: Sequence[Any], moment: int) -> list[ListedEntry]:
        """The fields as a listing (scan.py): each named as its file, age from its first sight."""
        keys = (
            (
                rows[index],
                int(rows[index + 1]),
                rows[index + 2],
                int(rows[index + 3]) if rows[index + 3] else None,
            )
            for index in range(0, len(rows), 4)
        )
        listed, self.planned = key_listing(keys, moment)
        return listed

    def _read_creds(self, names: Set[str]) -> Creds:
        if layout.CREDS_FILE not in names:
            return Creds("missing")
        field = self.planned[layout.CREDS_FILE][0]
        raw = self.client.hget(self.key, field)
        if not isinstance(raw, bytes):  # gone since the listing
            return Creds("missing")
        return parse_creds(evolution_value(raw[:CREDS_MAX_BYTES]), layout.CREDS_FILE)

    # ---------------------------------------------------------------- lock

    @contextlib.contextmanager
    def lock(self, wait_seconds: float) -> Iterator[None]:
        """Hold `wa-sessions:lock:<id>` (SET NX PX with a token), renewed while held, released
        only if still ours. Raise LockBusy when another run holds it, LockUnsafe when the server
        cannot be asked."""
        import redis

        token = secrets.token_hex(16)
        deadline = time.monotonic() + wait_seconds
        try:
            while not self.client.set(self.lock_key, token, nx=True, px=LOCK_TTL_MS):
                if time.monotonic() >= deadline:
                    raise LockBusy(f"{self.lock_key} is held by another run")
                time.sleep(_POLL_SECONDS)
        except redis.RedisError as error:
            raise LockUnsafe(f"cannot take {self.lock_key}: {self.store.reason(error)}") from None
        renewal = LockRenewal(self.scripts["renew"], self.lock_key, token, LOCK_TTL_MS)
        renewal.thread.start()
        self.renewal = renewal
        try:
            yield
        finally:
            self.renewal = None
            renewal.stop.set()
            renewal.thread.join()
            with contextlib.suppress(redis.RedisError):
                self.scripts["release"](keys=[self.lock_key], args=[token])

    def lock_is_held(self) -> bool:
        """Whether a run (another one, if we hold none) holds the tenant lock."""
        import redis

        try:
            return self.renewal is None and bool(self.client.exists(self.lock_key))
        except redis.RedisError:
            return False

    def recover(self, company: str, history: LazyHistory) -> list[str]:
        """Nothing to put back: a field is deleted by one atomic script, never half."""
        return []

    # ---------------------------------------------------------------- checked delete

    def changed(self, deletion: Deletion) -> str | None:
        """Why the field's value is no longer the one planned (its digest differs), or None. Raise
        FileNotFoundError if it is gone, OSError if the server cannot be asked."""
        import redis

        field, digest = planned_key(self.planned, deletion.entry.name)
        try:
            current = self.scripts["digest"](keys=[self.key], args=[field])
        except redis.RedisError as error:
            raise OSError(errno.EIO, f"Redis: {self.store.reason(error)}") from None
        if current is None:
            raise FileNotFoundError(errno.ENOENT, "gone")
        return None if current == digest else "modified since the plan"

    def delete_unless_changed(self, deletion: Deletion) -> str | None:
        """Delete the field if its value is still the one planned (one Lua script); else keep it
        and return why. Raise FileNotFoundError if it is gone, OSError if it cannot be deleted
        (the server is gone, or the tenant lock was lost)."""
        import redis

        field, digest = planned_key(self.planned, deletion.entry.name)
        if self.renewal is not None and self.renewal.lost:
            raise OSError(errno.ENOLCK, f"{self.lock_key} was lost; nothing more deleted")
        try:
            outcome = self.scripts["delete"](keys=[self.key, self.seen_key], args=[field, digest])
        except redis.RedisError as error:
            raise OSError(errno.EIO, f"Redis: {self.store.reason(error)}") from None
        if outcome == 0:
            raise FileNotFoundError(errno.ENOENT, "gone")
        return "modified since the plan" if outcome == 1 else None


class RedisStore:
    """The instances of one Evolution API Redis database."""

    def __init__(self, settings: Settings, address: RedisAddress, client: redis.Redis):
        self.settings = settings
        self.address = address
        self.client = client
        self.scripts = {
            name: client.register_script(source)  # EVALSHA, loading the script when the server lacks it
            for name, source in (
                ("list", LIST_SCRIPT),
                ("digest", DIGEST_SCRIPT),
                ("delete", DELETE_SCRIPT),
                ("renew", RENEW_SCRIPT),
                ("release", RELEASE_SCRIPT),
            )
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


@contextlib.contextmanager
def open_redis_store(settings: Settings) -> Iterator[RedisStore]:
    """The Redis of `settings.store` as a store. Raise UsageError for a bad URL, StoreUnavailable
    when it cannot be used."""
    assert settings.store is not None
    try:
        address = parse_redis_url(settings.store)
    except ValueError as error:
        raise UsageError(f"store: {error}") from None
    client = connect(address)
    try:
        yield RedisStore(settings, address, client)
    finally:
        client.close()
