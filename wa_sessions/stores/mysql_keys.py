"""One mysql-baileys session's rows, opened (stores/mysql.py has the store and the layout): its
scan with seen records, its `GET_LOCK`, and its compare-and-delete, one row or a batch per
statement (stores.BatchedKeys). A server that goes away mid-run stops the run (StoreUnavailable).
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
from wa_sessions.rules import Deletion
from wa_sessions.scan import TenantScan, scan_listing
from wa_sessions.stores import KeyOutcome, Tenant, TenantUnavailable
from wa_sessions.stores import mysql_wire as sql
from wa_sessions.stores.key_names import NOT_SCANNED, OneKeyOfABatch, Planned, key_listing

if TYPE_CHECKING:
    from wa_sessions.stores.mysql import MySQLStore

# Rows checked, and compare-and-deleted, per statement.
BATCH_SIZE = 500


class MySQLKeys(OneKeyOfABatch):
    """One session's rows, with its seen record and its lock."""

    def __init__(self, store: MySQLStore, tenant: Tenant):
        self.store = store
        self.connection = store.connection
        self.session = tenant.name
        self.table = store.address.table
        self.lock_name = sql.lock_name(store.address.database, tenant.name)
        self.lock_id: int | None = None  # our lock connection's id while the lock is held
        self.batch_size = BATCH_SIZE
        self.planned: Planned = {}
        self.deleted: list[bytes] = []  # ids deleted under the lock, whose seen rows go at release

    def _run(self, statement: str, arguments: Sequence[Any] = ()) -> Any:
        with self.connection.cursor() as cursor:
            cursor.execute(statement.format(table=self.table), arguments)
            return cursor.fetchall()

    # ---------------------------------------------------------------- scan

    def scan(self, now: float | None = None, keep: Container[str] | None = None) -> TenantScan:
        """Count and classify the rows; under the lock (a real cleanup) record first-seen times of
        values not seen before (also without it in a real run: every tenant it looks at, SPEC §10).
        Raise TenantUnavailable, StoreUnavailable if the server is gone."""
        import pymysql

        moment = int(time.time() if now is None else now)
        try:
            rows = sql.list_rows(self.connection, self.table, self.session, self.store.seen_table_exists())
            if not rows:
                raise TenantUnavailable(f"session {self.session!r} has no rows any more")
            if self.lock_id is not None or self.store.record_seen:
                self.store.create_seen_table()
                rows = sql.record_seen(self.connection, self.table, self.session, rows, moment)
            listed, self.planned = key_listing(rows, moment)

            def creds_of(names: Set[str]) -> Creds:
                return self._read_creds(names)

            return scan_listing(listed, now, keep, creds_of)
        except pymysql.MySQLError as error:
            sql.unless_lost(error, self.store.address)
            raise TenantUnavailable(
                f"cannot read session {self.session!r}: {self.store.reason(error)}"
            ) from None

    def _read_creds(self, names: Set[str]) -> Creds:
        if layout.CREDS_FILE not in names or self.planned[layout.CREDS_FILE][0] != b"creds":
            return Creds("missing")
        found = self._run(sql.CREDS, (CREDS_MAX_BYTES, self.session))
        if not found or found[0][0] is None:  # gone since the listing, or NULL
            return Creds("missing")
        return parse_creds(bytes(found[0][0]), layout.CREDS_FILE)

    # ---------------------------------------------------------------- lock

    @contextlib.contextmanager
    def lock(self, wait_seconds: float) -> Iterator[None]:
        """Hold `GET_LOCK('wa-sessions:<db>:<session>')` on the store's lock connection (freed by
        the server when that connection dies with its holder). Raise LockBusy when another run
        holds it, LockUnsafe when the server cannot be asked. On release, forget the seen rows of
        the keys deleted."""
        import pymysql

        self.lock_id = self.store.locks.take(self.lock_name, wait_seconds)
        try:
            yield
        finally:
            self.lock_id = None
            with contextlib.suppress(pymysql.MySQLError), self.connection.cursor() as cursor:
                sql.forget_seen(cursor, self.table, self.session, self.deleted)
            self.deleted = []
            self.store.locks.release(self.lock_name)

    def lock_is_held(self) -> bool:
        """Whether a run (another one, if we hold none) holds the tenant lock."""
        import pymysql

        try:
            holder = self._run(sql.LOCK_HOLDER, (self.lock_name,))[0][0]
        except pymysql.MySQLError:
            return False
        return holder is not None and holder != self.lock_id

    # ---------------------------------------------------------------- checked delete

    def changed_many(self, deletions: Sequence[Deletion]) -> list[KeyOutcome]:
        """`changed` of each deletion, asked in one SELECT. Raise StoreUnavailable if the server
        is gone."""
        import pymysql

        keys = [self.planned.get(deletion.entry.name) for deletion in deletions]
        asked = [key[0] for key in keys if key is not None]
        try:
            current = self._digests(asked) if asked else {}
        except pymysql.MySQLError as error:
            sql.unless_lost(error, self.store.address)
            failure = OSError(errno.EIO, f"MySQL: {self.store.reason(error)}")
            return [failure if key else NOT_SCANNED for key in keys]
        outcomes: list[KeyOutcome] = []
        for key in keys:
            if key is None:
                outcomes.append(NOT_SCANNED)
            elif key[0] not in current:
                outcomes.append(FileNotFoundError(errno.ENOENT, "gone"))
            else:
                outcomes.append(None if current[key[0]] == key[1] else "modified since the plan")
        return outcomes

    def delete_many(self, deletions: Sequence[Deletion]) -> list[KeyOutcome]:
        """Compare-and-delete the rows in one statement, only while this run holds the tenant
        lock: a run that lost it deletes nothing more; a row whose unit had a row rewritten before
        it in the batch stays (SPEC §2). Raise StoreUnavailable if the server is gone."""
        import pymysql

        keys = [self.planned.get(deletion.entry.name) for deletion in deletions]
        planned = [
            (key[0], key[1], deletion.unit) for key, deletion in zip(keys, deletions, strict=True) if key
        ]
        if self.lock_id is None:
            lost = OSError(errno.ENOLCK, "the tenant lock is not held; nothing deleted")
            return [lost] * len(deletions)
        try:
            done = iter(self._delete_batch(planned, self.lock_id) if planned else [])
        except pymysql.MySQLError as error:
            sql.unless_lost(error, self.store.address)
            failure = OSError(errno.EIO, f"MySQL: {self.store.reason(error)}")
            return [failure if key else NOT_SCANNED for key in keys]
        return [next(done) if key else NOT_SCANNED for key in keys]

    def _delete_batch(self, planned: list[tuple[bytes, bytes, str]], lock_id: int) -> list[KeyOutcome]:
        """One DELETE for the batch; when it did not delete every row, one SELECT of what is left
        tells kept from gone."""
        statement, arguments = sql.delete_statement(
            self.table, self.session, planned, self.lock_name, lock_id
        )
        with self.connection.cursor() as cursor:
            cursor.execute(statement, arguments)
            deleted = cursor.rowcount
        ids = [row_id for row_id, _, _ in planned]
        after = {} if deleted == len(ids) else self._digests(ids)
        self.deleted += [row_id for row_id in ids if row_id not in after] if deleted else []
        return outcomes(planned, after, deleted, self.lock_name)

    def _digests(self, ids: Sequence[bytes]) -> dict[bytes, bytes]:
        """The current digest of each of these rows still there."""
        found = self._run(
            sql.REMAINING.format(table="{table}", ids=sql.placeholders(len(ids))), (self.session, *ids)
        )
        return {bytes(row_id): digest.encode() for row_id, digest in found}


HELD = "a key of its unit was modified since the plan"


def outcomes(
    planned: Sequence[tuple[bytes, bytes, str]], after: dict[bytes, bytes], deleted: int, lock: str
) -> list[KeyOutcome]:
    """What became of each row (id, digest planned, unit) of a compare-and-delete that deleted
    `deleted` rows, given the batch's rows (id -> digest) left `after` it: None (deleted), why it
    was kept, or the error (FileNotFoundError: gone). A row missing after is ours unless the
    statement deleted none (one deleted by Baileys in the same instant counts as ours: it is gone
    either way). A row left as planned: kept with its unit if a row before it in its unit was
    rewritten, else the lock was lost."""
    changed_units = set()
    result: list[KeyOutcome] = []
    for row_id, digest, unit in planned:
        if row_id not in after:
            result.append(None if deleted else FileNotFoundError(errno.ENOENT, "gone"))
        elif after[row_id] != digest:
            result.append("modified since the plan")
            changed_units.add(unit)
        elif unit and unit in changed_units:
            result.append(HELD)
        else:
            result.append(OSError(errno.ENOLCK, f"lock {lock} was lost; nothing more deleted"))
    return result
