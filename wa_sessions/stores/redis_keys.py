"""One Evolution API instance's hash, opened (stores/redis.py has the store and the layout): its
scan with seen records, its lock, and its compare-and-delete, one field or a batch per Lua call.
"""

from __future__ import annotations

import contextlib
import errno
import time
from collections.abc import Container, Iterator, Sequence, Set
from typing import TYPE_CHECKING, Any

from wa_sessions import layout
from wa_sessions.creds import CREDS_MAX_BYTES, parse_creds
from wa_sessions.layout import Creds
from wa_sessions.listing import ListedEntry
from wa_sessions.rules import Deletion
from wa_sessions.scan import TenantScan, scan_listing
from wa_sessions.stores import KeyOutcome, Tenant, TenantUnavailable
from wa_sessions.stores import redis_scripts as lua
from wa_sessions.stores.key_names import NOT_SCANNED, OneKeyOfABatch, key_listing, text_of
from wa_sessions.stores.redis_lock import LockRenewal, held_lock
from wa_sessions.stores.redis_wire import evolution_value, unless_lost, wire_name

if TYPE_CHECKING:
    from wa_sessions.stores.redis import RedisStore

SEEN_PREFIX = "wa-sessions:seen:"
LOCK_PREFIX = "wa-sessions:lock:"
# Fields checked, and compare-and-deleted, per round trip (one Lua call each).
BATCH_SIZE = 500


class RedisKeys(OneKeyOfABatch):
    """One instance's hash, with its seen record and its lock."""

    def __init__(self, store: RedisStore, tenant: Tenant):
        self.store = store
        self.client = store.client
        self.scripts = store.scripts
        self.key = store.instance_key(tenant.name)
        self.seen_key = wire_name(SEEN_PREFIX + tenant.name)
        self.lock_key = LOCK_PREFIX + tenant.name  # as messages show it (wire_name: as sent)
        self.renewal: LockRenewal | None = None
        self.batch_size = BATCH_SIZE
        # name shown (the file-equivalent) -> (field, digest planned), from the last scan
        self.planned: dict[str, tuple[bytes, bytes]] = {}

    # ---------------------------------------------------------------- scan

    def scan(self, now: float | None = None, keep: Container[str] | None = None) -> TenantScan:
        """Count and classify the fields; under the lock (a real cleanup) record first-seen times
        of values not seen before. Raise TenantUnavailable."""
        import redis

        moment = int(time.time() if now is None else now)
        record = self.store.record_seen or self.renewal is not None
        try:
            rows = self.scripts["list"](keys=[self.key, self.seen_key], args=[moment, "1" if record else "0"])
            if not rows and not self.client.exists(self.key):
                raise TenantUnavailable(f"instance hash {text_of(self.key)} is gone")
        except redis.RedisError as error:
            unless_lost(error, self.store.address)
            raise TenantUnavailable(f"cannot read {text_of(self.key)}: {self.store.reason(error)}") from None
        listed = self._listed(rows, moment)

        def creds_of(names: Set[str]) -> Creds:
            return self._read_creds(names)

        try:
            return scan_listing(listed, now, keep, creds_of)
        except redis.RedisError as error:
            unless_lost(error, self.store.address)
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
        with held_lock(
            self.client,
            self.scripts,
            self.lock_key,
            wait_seconds=wait_seconds,
            ttl_ms=self.store.lock_ttl_ms,
            reason=self.store.reason,
        ) as renewal:
            self.renewal = renewal
            try:
                yield
            finally:
                self.renewal = None

    def lock_is_held(self) -> bool:
        """Whether a run (another one, if we hold none) holds the tenant lock."""
        import redis

        try:
            return self.renewal is None and bool(self.client.exists(self.lock_key))
        except redis.RedisError:
            return False

    # ---------------------------------------------------------------- checked delete

    def changed_many(self, deletions: Sequence[Deletion]) -> list[KeyOutcome]:
        """`changed` of each deletion, asked in one Lua call. Raise StoreUnavailable if the server
        is gone."""
        import redis

        fields = [self.planned.get(deletion.entry.name) for deletion in deletions]
        asked = [field for field, _digest in filter(None, fields)]
        try:
            digests = iter(self.scripts["digests"](keys=[self.key], args=asked) if asked else [])
        except redis.RedisError as error:
            unless_lost(error, self.store.address)
            failure = OSError(errno.EIO, f"Redis: {self.store.reason(error)}")
            return [failure if field else NOT_SCANNED for field in fields]
        outcomes: list[KeyOutcome] = []
        for field in fields:
            if field is None:
                outcomes.append(NOT_SCANNED)
                continue
            current = next(digests)
            if not current:
                outcomes.append(FileNotFoundError(errno.ENOENT, "gone"))
            else:
                outcomes.append(None if current == field[1] else "modified since the plan")
        return outcomes

    def delete_many(self, deletions: Sequence[Deletion]) -> list[KeyOutcome]:
        """Compare-and-delete the fields in one Lua call, only while this run holds the tenant
        lock: a run that lost it deletes nothing more. Raise StoreUnavailable if the server is
        gone."""
        import redis

        fields = [self.planned.get(deletion.entry.name) for deletion in deletions]
        renewal = self.renewal
        if renewal is None or renewal.lost:
            lost = OSError(errno.ENOLCK, f"{self.lock_key} is not held; nothing more deleted")
            return [lost] * len(deletions)
        args: list[bytes | str] = [renewal.token]
        for field, deletion in zip(fields, deletions, strict=True):
            if field is not None:
                args += [field[0], field[1], wire_name(deletion.unit)]
        try:
            codes = self.scripts["delete"](
                keys=[self.key, self.seen_key, wire_name(self.lock_key)], args=args
            )
        except redis.RedisError as error:
            unless_lost(error, self.store.address)
            failure = OSError(errno.EIO, f"Redis: {self.store.reason(error)}")
            return [failure if field else NOT_SCANNED for field in fields]
        if codes == lua.LOCK_LOST:
            renewal.lost = True
            lost = OSError(errno.ENOLCK, f"{self.lock_key} was lost; nothing more deleted")
            return [lost] * len(deletions)
        done = iter(codes)
        return [_DELETE_OUTCOMES[next(done)] if field else NOT_SCANNED for field in fields]


_DELETE_OUTCOMES: dict[int, KeyOutcome] = {
    lua.GONE: FileNotFoundError(errno.ENOENT, "gone"),
    lua.CHANGED: "modified since the plan",
    lua.HELD: "a key of its unit was modified since the plan",
    lua.DELETED: None,
}
