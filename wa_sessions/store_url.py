"""The `store` URL (SPEC §10): parsed, checked and shown without its password. Pure: no client.

`redis://[user:pass@]host:port/db?prefix=evolution-cache` (and `rediss://` for TLS) selects
Evolution API's Redis layout; `mysql://user:pass@host:port/database?table=auth` mysql-baileys'
table in MySQL or MariaDB.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit

REDIS_SCHEMES = ("redis", "rediss")
DEFAULT_PREFIX = "evolution-cache"
DEFAULT_REDIS_PORT = 6379
_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
MYSQL_SCHEME = "mysql"
DEFAULT_TABLE = "auth"
DEFAULT_MYSQL_PORT = 3306
# A database or table name wa-sessions can put between backticks as it is (MySQL allows more).
_SQL_NAME = re.compile(r"^[A-Za-z0-9_$][A-Za-z0-9_$-]{0,63}$")


class _Server:
    """A store's server: `server` is `host:port` (IPv6 in brackets), what messages name, never
    with the password."""

    __slots__ = ()
    host: str
    port: int

    @property
    def server(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class RedisAddress(_Server):
    """Where Evolution API keeps its auth state: the server, the database and the key prefix."""

    host: str
    port: int
    db: int = 0
    prefix: str = DEFAULT_PREFIX
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def shown(self) -> str:
        """The URL without user info: what output and messages show."""
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://{self.server}/{self.db}?prefix={self.prefix}"


@dataclass(frozen=True, slots=True)
class MySQLAddress(_Server):
    """Where mysql-baileys keeps its auth state: the server, the database and the table."""

    host: str
    port: int
    database: str
    user: str
    table: str = DEFAULT_TABLE
    password: str | None = field(default=None, repr=False)

    @property
    def shown(self) -> str:
        """The URL without user info: what output and messages show."""
        return f"mysql://{self.server}/{self.database}?table={self.table}"


def redact_store_url(url: str) -> str:
    """Given a store URL as typed, return it with the password (all user info) replaced by `***`."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        return url if "@" not in url else "<store URL with user info>"
    if "@" in rest:  # everything up to the last `@`: a password may hold an unescaped `/` or `?`
        rest = "***@" + rest.rpartition("@")[2]
    return f"{scheme}://{rest}"


def _split(url: str, schemes: tuple[str, ...], expected: str) -> tuple[SplitResult, str, int | None]:
    """Given a store URL, return its parts, host and port (None: the default). Raise ValueError
    for another scheme, a bad or missing host, or a bad port (without the password)."""
    try:
        parts = urlsplit(url)
        port = parts.port
        host = parts.hostname
    except ValueError:
        raise ValueError(f"invalid port or host in {redact_store_url(url)}") from None
    if parts.scheme not in schemes:
        raise ValueError(f"unsupported scheme in {redact_store_url(url)}: expected {expected}")
    if not host:
        raise ValueError(f"no host in {redact_store_url(url)}")
    if port == 0:
        raise ValueError(f"invalid port 0 in {redact_store_url(url)}")
    return parts, host, port


def parse_redis_url(url: str) -> RedisAddress:
    """Given a `redis://` or `rediss://` URL, return its address. Raise ValueError saying what is
    wrong, never repeating the password."""
    parts, host, port = _split(url, REDIS_SCHEMES, "redis:// or rediss://")
    path = parts.path.strip("/")
    if path and not path.isdigit():
        raise ValueError(f"invalid database {path!r} in {redact_store_url(url)}: expected a number")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"prefix"})
    if unknown:
        raise ValueError(f"unknown parameter {unknown[0]!r} in {redact_store_url(url)}: only prefix=")
    prefixes = query.get("prefix", [DEFAULT_PREFIX])
    prefix = prefixes[-1]
    if not _PREFIX.fullmatch(prefix):
        raise ValueError(f"invalid prefix {prefix!r} in {redact_store_url(url)}")
    return RedisAddress(
        host=host,
        port=port or DEFAULT_REDIS_PORT,
        db=int(path) if path else 0,
        prefix=prefix,
        tls=parts.scheme == "rediss",
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def parse_mysql_url(url: str) -> MySQLAddress:
    """Given a `mysql://user:pass@host:port/database?table=auth` URL, return its address. Raise
    ValueError saying what is wrong, never repeating the password."""
    shown = redact_store_url(url)
    parts, host, port = _split(url, (MYSQL_SCHEME,), "mysql://")
    if not parts.username:
        raise ValueError(f"no user in {shown}: expected mysql://user:password@host:port/database")
    database = unquote(parts.path.strip("/"))
    if not database:
        raise ValueError(f"no database in {shown}: expected mysql://user:password@host:port/database")
    if not _SQL_NAME.fullmatch(database):
        raise ValueError(f"invalid database name {database!r} in {shown}")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"table"})
    if unknown:
        raise ValueError(f"unknown parameter {unknown[0]!r} in {shown}: only table=")
    table = query.get("table", [DEFAULT_TABLE])[-1]
    if not _SQL_NAME.fullmatch(table):
        raise ValueError(f"invalid table name {table!r} in {shown}")
    return MySQLAddress(
        host=host,
        port=port or DEFAULT_MYSQL_PORT,
        database=database,
        user=unquote(parts.username),
        table=table,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def check_store_url(url: str) -> str:
    """Given the `store` setting, return it if it names a store this version can open. Raise
    ValueError (without the password) otherwise."""
    if not url.strip():
        raise ValueError("must not be empty (leave it unset for the folders under root)")
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme in REDIS_SCHEMES:
        parse_redis_url(url)
        return url
    if scheme == MYSQL_SCHEME:
        parse_mysql_url(url)
        return url
    raise ValueError(
        f"unsupported store {redact_store_url(url)}: expected redis://host:port/db?prefix=..."
        " or mysql://user:password@host:port/database?table=auth"
    )
