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

Deletion is compare-and-delete (stores/mysql_keys.py): `DELETE … WHERE session = ? AND (id,
SHA1(value)) IN (…) AND IS_USED_LOCK(<tenant lock>) <=> <our lock connection>`, one statement per
batch — a row rewritten since the plan stays, our own sender key stays with a rewritten
sender-key-memory, and nothing is deleted once the lock is lost. The tenant lock and
multitenant-cleanup's run lock are `GET_LOCK` on a connection of its own; the server frees them
when that connection dies with its holder. A server that goes away mid-run stops the run
(StoreUnavailable). `scan` and `report` show the table's size where folders show free disk.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wa_sessions.config import Settings
from wa_sessions.errors import StoreUnavailable, UsageError
from wa_sessions.results import DiskUsage, StoreMemory
from wa_sessions.store_url import MySQLAddress, parse_mysql_url
from wa_sessions.stores import Tenant
from wa_sessions.stores import mysql_wire as sql
from wa_sessions.stores.key_names import chosen_tenants, text_of
from wa_sessions.stores.mysql_keys import MySQLKeys

if TYPE_CHECKING:
    import pymysql

# A run lock is named as the tenant lock of a session `run:<command>`.
RUN_LOCK_INFIX = "run:"


class MySQLStore:
    """The sessions of one mysql-baileys table."""

    def __init__(
        self,
        settings: Settings,
        address: MySQLAddress,
        connection: pymysql.connections.Connection[Any],
        *,
        record_seen: bool = False,
    ):
        self.settings = settings
        self.record_seen = record_seen
        self.address = address
        self._connection = connection
        self._pid = os.getpid()
        self._seen_exists: bool | None = None  # asked once a run
        self.locks = sql.LockHolder(address)

    @property
    def connection(self) -> pymysql.connections.Connection[Any]:
        """This process's connection: a worker forked by `--jobs` opens its own (a connection's
        socket cannot be shared; the inherited one is left alone, never closed, for the parent)."""
        if os.getpid() != self._pid:
            self._connection = sql.connect(self.address)
            self._pid = os.getpid()
        return self._connection

    def close(self) -> None:
        """Close this process's connection (a worker's inherited one is its parent's to close)."""
        self.locks.close()
        if os.getpid() == self._pid:
            with contextlib.suppress(Exception):
                self._connection.close()

    def reason(self, error: Exception) -> str:
        return sql.reason_of(error, self.address)

    def seen_table_exists(self) -> bool:
        """Whether `wa_sessions_seen` exists (asked once a run: a table another host creates
        meanwhile is read from the next run on, and `CREATE TABLE IF NOT EXISTS` makes it here)."""
        if self._seen_exists is None:
            with self.connection.cursor() as cursor:
                cursor.execute(sql.SEEN_EXISTS, (sql.SEEN_TABLE,))
                self._seen_exists = cursor.fetchone() is not None
        return self._seen_exists

    def create_seen_table(self) -> None:
        if not self.seen_table_exists():  # IF NOT EXISTS: another host may have made it meanwhile
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
                found = [
                    text_of(session) if isinstance(session, bytes) else str(session) for (session,) in cursor
                ]
                sessions = sorted({session for session in found if session})
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
        """The auth table's size on the server (data and indexes), if it says. Raise
        StoreUnavailable if the server is gone."""
        import pymysql

        try:
            with self.connection.cursor() as cursor:
                cursor.execute(sql.TABLE_SIZE, (self.address.table,))
                found = cursor.fetchone()
        except pymysql.MySQLError as error:
            sql.unless_lost(error, self.address)
            return None
        return None if found is None else int(found[0])

    def disk(self) -> DiskUsage | None:
        """No filesystem of ours: the keys live in the server's table (see `memory`)."""
        return None

    def memory(self) -> StoreMemory | None:
        """The auth table's size (what free disk and inodes are for folders; no limit to say), if
        the server says. Raise StoreUnavailable if the server is gone."""
        size = self.table_bytes()
        return None if size is None else StoreMemory(self.address.shown, size, 0, kind="table")

    @contextlib.contextmanager
    def run_lock(self, command: str) -> Iterator[None]:
        """Hold `GET_LOCK('wa-sessions:<db>:run:<command>')` on the lock connection, as tenant
        locks are held (freed by the server when its holder dies). Raise LockBusy, LockUnsafe."""
        name = sql.lock_name(self.address.database, f"{RUN_LOCK_INFIX}{command}")
        self.locks.take(name, 0)
        try:
            yield
        finally:
            self.locks.release(name)


@contextlib.contextmanager
def open_mysql_store(settings: Settings, *, record_seen: bool = False) -> Iterator[MySQLStore]:
    """The mysql-baileys table of `settings.store` as a store (`record_seen`: see
    stores.open_store). Raise UsageError for a bad URL or a
    missing database, StoreUnavailable when the server cannot be used."""
    assert settings.store is not None
    try:
        address = parse_mysql_url(settings.store)
    except ValueError as error:
        raise UsageError(f"store: {error}") from None
    store = MySQLStore(settings, address, sql.connect(address), record_seen=record_seen)
    try:
        yield store
    finally:
        store.close()
