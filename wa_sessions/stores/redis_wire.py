"""How wa-sessions talks to an Evolution API Redis: how a field is named and its value read, and
the checked connection (errors name host:port, never the password; a lost server is
StoreUnavailable). The Lua scripts are in redis_scripts.py, the lock in redis_lock.py.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from wa_sessions.errors import StoreUnavailable
from wa_sessions.store_url import RedisAddress

if TYPE_CHECKING:
    import redis

EXTRA_HINT = "pip install 'wa-sessions[redis]'"


def evolution_value(raw: bytes) -> bytes:
    """Given a field's value as Evolution API stores it, return the JSON document: a JSON string
    (Evolution stringifies twice) is unwrapped once; anything else is returned as it is."""
    if not raw.lstrip().startswith(b'"'):
        return raw
    try:
        inner = json.loads(raw)
    except (ValueError, RecursionError):
        return raw
    return inner.encode("utf-8", "surrogatepass") if isinstance(inner, str) else raw


def wire_name(name: str) -> bytes:
    """A Redis key named after an instance as sent (an instance id that is not UTF-8 is its bytes)."""
    return name.encode("utf-8", "surrogateescape")


def reason_of(error: Exception, address: RedisAddress) -> str:
    """A one-line reason for a Redis error, never holding the password."""
    import redis

    if isinstance(error, redis.AuthenticationError) or "WRONGPASS" in str(error) or "NOAUTH" in str(error):
        text = "authentication failed (wrong user or password?)"
    else:
        text = str(error) or type(error).__name__
    if address.password:
        text = text.replace(address.password, "***")
    return " ".join(text.split())


def connect(address: RedisAddress) -> redis.Redis:
    """A client of the server, checked with PING. Raise StoreUnavailable naming host:port (never
    the password) when redis-py is missing or the server cannot be reached or refuses us."""
    try:
        import redis
    except ImportError:
        raise StoreUnavailable(f"the Redis store needs redis-py: {EXTRA_HINT}") from None
    client = redis.Redis(
        host=address.host,
        port=address.port,
        db=address.db,
        username=address.username,
        password=address.password,
        ssl=address.tls,
        socket_connect_timeout=5,
        socket_timeout=30,
    )
    try:
        client.ping()
    except redis.RedisError as error:
        client.close()
        raise StoreUnavailable(f"cannot use Redis at {address.server}: {reason_of(error, address)}") from None
    return client


def unless_lost(error: Exception, address: RedisAddress) -> None:
    """Raise StoreUnavailable (the run stops: exit 1, one line naming host:port) when `error` says
    the server is gone (connection refused, reset or timed out); return otherwise."""
    import redis

    if isinstance(error, (redis.ConnectionError, redis.TimeoutError)):
        raise StoreUnavailable(f"lost Redis at {address.server}: {reason_of(error, address)}") from None
