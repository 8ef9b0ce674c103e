"""mysql-baileys' table in MySQL or MariaDB as a store (SPEC §10).

mysql-baileys (src/Mysql/index.ts, `useMySQLAuthState`) keeps every session's Baileys keys in one
table, `auth(session, id, value)` by default: row id `creds` for the creds and `<type>-<id>` for
a key (Baileys' ids unescaped: `sender-key-<group>::<user>::<device>`), the value the JSON text
`JSON.stringify(value, BufferJSON.replacer)`. A tenant is a session; a key is named as the file
useMultiFileAuthState would write for it (stores/key_names.py), so it is classified exactly as
in a folder; the row itself is what is deleted.

The table keeps no time per row, so a key's age is the time since wa-sessions first saw its
current value: the table `wa_sessions_seen(auth_table, session, id, digest, first_seen)`, created
and written only under the tenant lock (a real cleanup), read by every other command when it
exists. Lengths and SHA-1 digests are computed by the server (values never cross the network),
and the listing is streamed. A key never seen has age 0.

Deletion is compare-and-delete: `DELETE … WHERE session = ? AND (id, SHA1(value)) IN (…) AND
IS_USED_LOCK(<tenant lock>) <=> <our lock connection>` — a row rewritten since the plan stays,
and nothing is deleted once the lock is lost. The tenant lock is `GET_LOCK` on a connection of
its own; the server frees it when that connection dies with its holder.
"""

from __future__ import annotations

import contextlib
import errno
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
from wa_sessions.results import DiskUsage
from wa_sessions.rules import Deletion
from wa_sessions.scan import TenantScan, scan_listing
from wa_sessions.store_url import MySQLAddress, parse_mysql_url
from wa_sessions.stores import Tenant, TenantUnavailable
from wa_sessions.stores import mysql_wire as sql
from wa_sessions.stores.key_names import Planned, chosen_tenants, key_listing, planned_key

if TYPE_CHECKING:
    import pymysql

# Rows per batched delete.
_BATCH = 500


class MySQLKeys:
    """One session's rows, with its seen record and its lock."""

    def __init__(self, store: MySQLStore, tenant: Tenant):
        self.store = store
        self.connection = store.connection
        self.session = tenant.name
        self.table = store.address.table
        self.lock_name = sql.lock_name(store.address.database, tenant.name)
        self.lock_id: int | None = None  # our lock connection's id while the lock is held
        self.planned: Planned = {}

    def _run(self, statement: str, arguments: Sequence[Any] = ()) -> Any:
        with self.connection.cursor() as cursor:
            cursor.execute(statement.format(table=self.table), arguments)
            return cursor.fetchall()

    # ---------------------------------------------------------------- scan

    def scan(self, now: float | None = None, keep: Container[str] | None = None) -> TenantScan:
        """Count and classify the rows; under the lock (a real cleanup) record first-seen times of
        values not seen before. Raise TenantUnavailable."""
        import pymysql

        moment = int(time.time() if now is None else now)
        try:
            rows = sql.list_rows(self.connection, self.table, self.session, self.store.seen_table_exists())
            if not rows:
                raise TenantUnavailable(f"session {self.session!r} has no rows any more")
            if self.lock_id is not None:
                self.store.create_seen_table()
                rows = sql.record_seen(self.connection, self.table, self.session, rows, moment)
            listed, self.planned = key_listing(rows, moment)

            def creds_of(names: Set[str]) -> Creds:
                return self._read_creds(names)

            return scan_listing(listed, now, keep, creds_of)
        except pymysql.MySQLError as error:
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
        """Hold `GET_LOCK('wa-sessions:<db>:<session>')` on a connection of its own (freed by the
        server if that connection dies). Raise LockBusy when another run holds it, LockUnsafe when
        the server cannot be asked."""
        import pymysql

        holder, lock_id = sql.take_lock(self.store.address, self.lock_name, wait_seconds)
        self.lock_id = lock_id
        try:
            yield
        finally:
            self.lock_id = None
            with (
                contextlib.suppress(pymysql.MySQLError),
                contextlib.closing(holder),
                holder.cursor() as cursor,
            ):
                cursor.execute(sql.RELEASE_LOCK, (self.lock_name,))

    def lock_is_held(self) -> bool:
        """Whether a run (another one, if we hold none) holds the tenant lock."""
        import pymysql

        try:
            holder = self._run(sql.LOCK_HOLDER, (self.lock_name,))[0][0]
        except pymysql.MySQLError:
            return False
        return holder is not None and holder != self.lock_id

    def recover(self, company: str, history: LazyHistory) -> list[str]:
        """Nothing to put back: a row is deleted by one statement, never half."""
        return []

    # ---------------------------------------------------------------- checked delete

    def changed(self, deletion: Deletion) -> str | None:
        """Why the row's value is no longer the one planned (its digest differs), or None. Raise
        FileNotFoundError if it is gone, OSError if the server cannot be asked."""
        import pymysql

        row_id, digest = planned_key(self.planned, deletion.entry.name)
        try:
            found = self._run(sql.CURRENT_DIGEST, (self.session, row_id))
        except pymysql.MySQLError as error:
            raise OSError(errno.EIO, f"MySQL: {self.store.reason(error)}") from None
        if not found:
            raise FileNotFoundError(errno.ENOENT, "gone")
        return None if found[0][0].encode() == digest else "modified since the plan"

    def delete_unless_changed(self, deletion: Deletion) -> str | None:
        """Delete the row if its value is still the one planned; else keep it and return why. Raise
        FileNotFoundError if it is gone, OSError if it cannot be deleted (the server is gone, or
        the tenant lock was lost)."""
        outcome = self.delete_many_unless_changed([deletion])[0]
        if isinstance(outcome, OSError):
            raise outcome
        return outcome

    def delete_many_unless_changed(self, deletions: Sequence[Deletion]) -> list[str | OSError | None]:
        """Delete the rows still as planned in one statement per batch of `_BATCH`; per deletion,
        None (deleted), why it was kept, or the error (FileNotFoundError: gone)."""
        outcomes: list[str | OSError | None] = []
        for start in range(0, len(deletions), _BATCH):
            outcomes += self._delete_batch(
                [planned_key(self.planned, d.entry.name) for d in deletions[start : start + _BATCH]]
            )
        return outcomes

    def _delete_batch(self, planned: list[tuple[bytes, bytes]]) -> list[str | OSError | None]:
        """One DELETE for the batch. All deleted: done. Else the rows left tell kept from gone; for
        more than one row, the rows there before the DELETE tell gone from deleted."""
        import pymysql

        if self.lock_id is None:
            return [OSError(errno.ENOLCK, "the tenant lock is not held; nothing deleted")] * len(planned)
        ids = [row_id for row_id, _ in planned]
        pairs = [value for row_id, digest in planned for value in (row_id, digest.decode())]
        try:
            before = self._digests(ids) if len(ids) > 1 else None
            with self.connection.cursor() as cursor:
                cursor.execute(
                    sql.DELETE_PLANNED.format(table=self.table, pairs=sql.placeholders(len(planned), 2)),
                    (self.session, *pairs, self.lock_name, self.lock_id),
                )
                deleted = cursor.rowcount
            after = {} if deleted == len(ids) else self._digests(ids)
            gone = [row_id for row_id in ids if row_id not in after]
            if deleted and gone and self.store.seen_table_exists():
                self._run(
                    sql.FORGET.format(ids=sql.placeholders(len(gone))), (self.table, self.session, *gone)
                )
        except pymysql.MySQLError as error:
            return [OSError(errno.EIO, f"MySQL: {self.store.reason(error)}")] * len(planned)
        return [
            sql.outcome(row_id, digest, before, after, deleted, self.lock_name) for row_id, digest in planned
        ]

    def _digests(self, ids: Sequence[bytes]) -> dict[bytes, bytes]:
        """The current digest of each of these rows still there."""
        found = self._run(
            sql.REMAINING.format(table="{table}", ids=sql.placeholders(len(ids))), (self.session, *ids)
        )
        return {bytes(row_id): digest.encode() for row_id, digest in found}


class MySQLStore:
    """The sessions of one mysql-baileys table."""

    def __init__(
        self, settings: Settings, address: MySQLAddress, connection: pymysql.connections.Connection[Any]
    ):
        self.settings = settings
        self.address = address
        self.connection = connection
        self._seen_exists = False

    def reason(self, error: Exception) -> str:
        return sql.reason_of(error, self.address)

    def seen_table_exists(self) -> bool:
        """Whether `wa_sessions_seen` exists (once found, it is not asked again)."""
        if not self._seen_exists:
            with self.connection.cursor() as cursor:
                cursor.execute(sql.SEEN_EXISTS, (sql.SEEN_TABLE,))
                self._seen_exists = cursor.fetchone() is not None
        return self._seen_exists

    def create_seen_table(self) -> None:
        if not self.seen_table_exists():
            with self.connection.cursor() as cursor:
                cursor.execute(sql.CREATE_SEEN)
            self._seen_exists = True

    def tenants(self, companies: Sequence[str]) -> list[Tenant]:
        """The sessions (distinct `session` values), or those named. Raise UsageError for a name
        with no rows or a missing table, StoreUnavailable if the server cannot be asked."""
        import pymysql

        try:
            with self.connection.cursor() as cursor:
                cursor.execute(sql.TENANTS.format(table=self.address.table))
                sessions = sorted({str(session) for (session,) in cursor.fetchall() if session})
        except pymysql.MySQLError as error:
            if sql.error_code(error) == sql.NO_SUCH_TABLE:
                raise UsageError(f"no table {self.address.table!r} in {self.address.shown}") from None
            raise StoreUnavailable(
                f"cannot list sessions on {self.address.server}: {self.reason(error)}"
            ) from None
        where = f"{self.address.database}.{self.address.table}"
        tenants = [Tenant(session, session, Path(where, session)) for session in sessions]
        shown = self.address.shown
        return chosen_tenants(tenants, companies, lambda company: f"no session {company!r} in {shown}")

    @contextlib.contextmanager
    def open(self, tenant: Tenant) -> Iterator[MySQLKeys]:
        yield MySQLKeys(self, tenant)

    def table_bytes(self) -> int | None:
        """The auth table's size on the server (data and indexes), if it says."""
        import pymysql

        try:
            with self.connection.cursor() as cursor:
                cursor.execute(sql.TABLE_SIZE, (self.address.table,))
                found = cursor.fetchone()
        except pymysql.MySQLError:
            return None
        return None if found is None else int(found[0])

    def disk(self) -> DiskUsage | None:
        """No filesystem of ours: the keys live in the server's table (see `table_bytes`)."""
        return None


@contextlib.contextmanager
def open_mysql_store(settings: Settings) -> Iterator[MySQLStore]:
    """The mysql-baileys table of `settings.store` as a store. Raise UsageError for a bad URL or a
    missing database, StoreUnavailable when the server cannot be used."""
    assert settings.store is not None
    try:
        address = parse_mysql_url(settings.store)
    except ValueError as error:
        raise UsageError(f"store: {error}") from None
    connection = sql.connect(address)
    try:
        yield MySQLStore(settings, address, connection)
    finally:
        with contextlib.suppress(Exception):
            connection.close()
