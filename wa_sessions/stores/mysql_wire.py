"""What wa-sessions sends to a mysql-baileys database: the SQL (listing with lengths and digests
computed by the server, the seen table, compare-and-delete single and batched, the lock), and
the checked connection (errors name host:port, never the password).

Row ids are read as bytes (`CAST(id AS BINARY)`) and passed back as bytes, so a comparison is
binary — exactly the row listed, whatever the column's charset and collation. `{table}` is the
auth table's name, checked by store_url (letters, digits, `_`, `$`, `-`), always in backticks.
"""

from __future__ import annotations

import errno
import hashlib
from typing import TYPE_CHECKING, Any

from wa_sessions.errors import StoreUnavailable, UsageError
from wa_sessions.locks import LockBusy, LockUnsafe
from wa_sessions.store_url import MySQLAddress
from wa_sessions.stores.key_names import KeyRow

if TYPE_CHECKING:
    import pymysql

EXTRA_HINT = "pip install 'wa-sessions[mysql]'"
SEEN_TABLE = "wa_sessions_seen"
LOCK_PREFIX = "wa-sessions:"
# MySQL refuses a lock name longer than 64 characters.
LOCK_NAME_MAX = 64

TENANTS = "SELECT DISTINCT session FROM `{table}`"
# The digest of a NULL value (mysql-baileys writes none, a hand-made row may have one) is ''.
DIGEST = "COALESCE(SHA1(value), '')"
LIST = f"SELECT CAST(id AS BINARY), COALESCE(LENGTH(value), 0), {DIGEST} FROM `{{table}}` WHERE session = %s"
# The same, with the first sight of each row's current value (NULL: never seen with this value).
LIST_SEEN = (
    f"SELECT CAST(a.id AS BINARY), COALESCE(LENGTH(a.value), 0), {DIGEST.replace('value', 'a.value')},"
    f" s.first_seen FROM `{{table}}` a LEFT JOIN `{SEEN_TABLE}` s ON s.auth_table = %s"
    f" AND s.session = %s AND s.id = CAST(a.id AS BINARY) AND s.digest = {DIGEST.replace('value', 'a.value')}"
    " WHERE a.session = %s"
)
CREDS = "SELECT SUBSTRING(CAST(value AS BINARY), 1, %s) FROM `{table}` WHERE session = %s AND id = 'creds'"
CURRENT_DIGEST = f"SELECT {DIGEST} FROM `{{table}}` WHERE session = %s AND id = %s"
SEEN_EXISTS = "SELECT 1 FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = %s"
CREATE_SEEN = (
    f"CREATE TABLE IF NOT EXISTS `{SEEN_TABLE}` (auth_table VARCHAR(64) NOT NULL,"
    " session VARBINARY(255) NOT NULL, id VARBINARY(255) NOT NULL, digest CHAR(40) NOT NULL,"
    " first_seen BIGINT NOT NULL, PRIMARY KEY (auth_table, session, id)) ENGINE=InnoDB"
)
RECORD_SEEN = (
    f"INSERT INTO `{SEEN_TABLE}` (auth_table, session, id, digest, first_seen) VALUES (%s, %s, %s, %s, %s)"
    " ON DUPLICATE KEY UPDATE digest = VALUES(digest), first_seen = VALUES(first_seen)"
)
SEEN_IDS = f"SELECT id FROM `{SEEN_TABLE}` WHERE auth_table = %s AND session = %s"
FORGET = f"DELETE FROM `{SEEN_TABLE}` WHERE auth_table = %s AND session = %s AND id IN ({{ids}})"
# Compare-and-delete, for one key or many: only rows whose value is still the one planned, and
# only while the tenant lock is still held by our lock connection (its id is the last argument).
DELETE_PLANNED = (
    f"DELETE FROM `{{table}}` WHERE session = %s AND (id, {DIGEST}) IN ({{pairs}})"
    " AND IS_USED_LOCK(%s) <=> %s"
)
# What is left of those rows (to tell a changed one from a gone one).
REMAINING = f"SELECT CAST(id AS BINARY), {DIGEST} FROM `{{table}}` WHERE session = %s AND id IN ({{ids}})"
TABLE_SIZE = (
    "SELECT COALESCE(data_length, 0) + COALESCE(index_length, 0) FROM information_schema.tables"
    " WHERE table_schema = DATABASE() AND table_name = %s"
)
GET_LOCK = "SELECT GET_LOCK(%s, %s), CONNECTION_ID()"
RELEASE_LOCK = "SELECT RELEASE_LOCK(%s)"
LOCK_HOLDER = "SELECT IS_USED_LOCK(%s)"

# Rows per statement recording first sights.
RECORD_BATCH = 500

# Server errors with a reason of their own (MySQL / MariaDB error numbers).
ACCESS_DENIED = 1045
DATABASE_DENIED = 1044
UNKNOWN_DATABASE = 1049
NO_SUCH_TABLE = 1146


def placeholders(count: int, width: int = 1) -> str:
    """`%s, %s` (width 1) or `(%s, %s), (%s, %s)` (width 2) for `count` items."""
    one = "%s" if width == 1 else "(" + ", ".join(["%s"] * width) + ")"
    return ", ".join([one] * count)


def lock_name(database: str, session: str) -> str:
    """The GET_LOCK name of a tenant: `wa-sessions:<db>:<session>`, or its SHA-1 when longer than
    MySQL allows."""
    name = f"{LOCK_PREFIX}{database}:{session}"
    if len(name) <= LOCK_NAME_MAX:
        return name
    return LOCK_PREFIX + hashlib.sha1(f"{database}:{session}".encode("utf-8", "surrogateescape")).hexdigest()


def error_code(error: Exception) -> int | None:
    code = error.args[0] if error.args else None
    return code if isinstance(code, int) else None


def reason_of(error: Exception, address: MySQLAddress) -> str:
    """A one-line reason for a PyMySQL error, never holding the password."""
    code = error_code(error)
    if code == ACCESS_DENIED:
        text = f"authentication failed for user {address.user!r} (wrong user or password?)"
    elif len(error.args) >= 2:
        text = str(error.args[1])
    else:
        text = str(error) or type(error).__name__
    if not text.strip():
        text = "connection lost"
    if address.password:
        text = text.replace(address.password, "***")
    return " ".join(text.split())


def connect(address: MySQLAddress, read_timeout: float | None = 60) -> pymysql.connections.Connection[Any]:
    """A connection to the database (autocommit, utf8mb4). Raise UsageError for a database that
    does not exist, StoreUnavailable naming
    host:port (never the password) when PyMySQL is missing or the server cannot be reached or
    refuses us."""
    try:
        import pymysql
    except ImportError:
        raise StoreUnavailable(f"the MySQL store needs PyMySQL: {EXTRA_HINT}") from None
    try:
        return pymysql.connect(
            host=address.host,
            port=address.port,
            user=address.user,
            password=address.password or "",
            database=address.database,
            charset="utf8mb4",
            autocommit=True,
            connect_timeout=5,
            read_timeout=read_timeout,
            write_timeout=60,
        )
    except pymysql.MySQLError as error:
        if error_code(error) == UNKNOWN_DATABASE:
            raise UsageError(f"no database {address.database!r} on {address.server}") from None
        raise StoreUnavailable(f"cannot use MySQL at {address.server}: {reason_of(error, address)}") from None


def take_lock(
    address: MySQLAddress, name: str, wait_seconds: float
) -> tuple[pymysql.connections.Connection[Any], int]:
    """`GET_LOCK(name)` on a connection of its own, waiting up to `wait_seconds`: return that
    connection (the lock lives as long as it does) and its id. Raise LockBusy when another
    connection holds the lock, LockUnsafe when the server cannot be asked."""
    import pymysql

    try:
        holder = connect(address, read_timeout=None)
    except (StoreUnavailable, UsageError) as error:
        raise LockUnsafe(f"cannot take lock {name}: {error}") from None
    try:
        with holder.cursor() as cursor:
            cursor.execute(GET_LOCK, (name, max(0.0, wait_seconds)))
            taken, connection_id = cursor.fetchone() or (None, None)
    except pymysql.MySQLError as error:
        holder.close()
        raise LockUnsafe(f"cannot take lock {name}: {reason_of(error, address)}") from None
    if taken != 1 or connection_id is None:
        holder.close()
        raise LockBusy(f"lock {name} is held by another run")
    return holder, int(connection_id)


def list_rows(
    connection: pymysql.connections.Connection[Any], table: str, session: str, seen: bool
) -> list[KeyRow]:
    """A session's rows (raw id, length, digest, first sight when `seen` names a seen table to
    read), streamed from the server (an unbuffered cursor): values never cross the network."""
    import pymysql.cursors

    statement = LIST_SEEN if seen else LIST
    arguments = (table, session, session) if seen else (session,)
    with connection.cursor(pymysql.cursors.SSCursor) as cursor:
        cursor.execute(statement.format(table=table), arguments)
        if seen:
            return [(bytes(i), int(n), d.encode(), None if f is None else int(f)) for i, n, d, f in cursor]
        return [(bytes(i), int(n), d.encode(), None) for i, n, d in cursor]


def record_seen(
    connection: pymysql.connections.Connection[Any], table: str, session: str, rows: list[KeyRow], moment: int
) -> list[KeyRow]:
    """Record `moment` as the first sight of every value of `rows` not seen before and forget the
    seen rows of keys that are gone. Return the rows with their first sights."""
    fresh = [(table, session, raw, digest, moment) for raw, _, digest, first in rows if first is None]
    with connection.cursor() as cursor:
        cursor.execute(SEEN_IDS, (table, session))
        gone = sorted({bytes(row_id) for (row_id,) in cursor.fetchall()} - {raw for raw, *_ in rows})
        for start in range(0, len(gone), RECORD_BATCH):
            batch = gone[start : start + RECORD_BATCH]
            cursor.execute(FORGET.format(ids=placeholders(len(batch))), (table, session, *batch))
        for start in range(0, len(fresh), RECORD_BATCH):
            cursor.executemany(RECORD_SEEN, fresh[start : start + RECORD_BATCH])
    return [(raw, size, digest, moment if first is None else first) for raw, size, digest, first in rows]


def outcome(
    row_id: bytes,
    digest: bytes,
    before: dict[bytes, bytes] | None,
    after: dict[bytes, bytes],
    deleted: int,
    lock: str,
) -> str | OSError | None:
    """What became of one row of a compare-and-delete that deleted `deleted` rows, given the
    batch's rows (id -> digest) `after` it and, for a batch of several, `before` it: None
    (deleted), why it was kept, or the error (FileNotFoundError: gone)."""
    if row_id not in after:
        was_there = deleted > 0 if before is None else row_id in before
        return None if was_there else FileNotFoundError(errno.ENOENT, "gone")
    if after[row_id] != digest:
        return "modified since the plan"
    return OSError(errno.ENOLCK, f"lock {lock} was lost; nothing more deleted")
