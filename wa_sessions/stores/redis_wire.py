"""What wa-sessions keeps and runs in an Evolution API Redis: the Lua scripts (list with digests,
digest, compare-and-delete, lock renewal and release), how a value is read, and the checked
connection (errors name host:port, never the password).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from wa_sessions.errors import StoreUnavailable
from wa_sessions.store_url import RedisAddress

if TYPE_CHECKING:
    import redis

EXTRA_HINT = "pip install 'wa-sessions[redis]'"

# KEYS: instance hash, seen hash. ARGV: now (epoch seconds), "1" to record what is not yet seen.
# Returns field, length, digest, first seen ("" when never seen with this value), per field.
LIST_SCRIPT = """
local fields = redis.call('HGETALL', KEYS[1])
local record = ARGV[2] == '1'
local known = {}
local seen = redis.call('HGETALL', KEYS[2])
for i = 1, #seen, 2 do known[seen[i]] = seen[i + 1] end
local out = {}
local present = {}
for i = 1, #fields, 2 do
  local field, value = fields[i], fields[i + 1]
  local digest = redis.sha1hex(value)
  local first = ''
  local entry = known[field]
  if entry then
    local was, since = string.match(entry, '^(%x+) (%d+)$')
    if was == digest then first = since end
  end
  if first == '' and record then
    first = ARGV[1]
    redis.call('HSET', KEYS[2], field, digest .. ' ' .. first)
  end
  present[field] = true
  out[#out + 1] = field
  out[#out + 1] = #value
  out[#out + 1] = digest
  out[#out + 1] = first
end
if record then
  for field in pairs(known) do
    if not present[field] then redis.call('HDEL', KEYS[2], field) end
  end
end
return out
"""

# KEYS: instance hash. ARGV: field. The digest of its value, or false when it is gone.
DIGEST_SCRIPT = """
local value = redis.call('HGET', KEYS[1], ARGV[1])
if not value then return false end
return redis.sha1hex(value)
"""

# KEYS: instance hash, seen hash. ARGV: field, planned digest.
# 0: gone; 1: changed since the plan, kept; 2: deleted (and its seen record dropped).
DELETE_SCRIPT = """
local value = redis.call('HGET', KEYS[1], ARGV[1])
if not value then return 0 end
if redis.sha1hex(value) ~= ARGV[2] then return 1 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 2
"""

# KEYS: lock. ARGV: token, ttl ms. 1 when still ours (and renewed), 0 when lost.
RENEW_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# KEYS: lock. ARGV: token. Deletes the lock only if it is still ours.
RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


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


class LockRenewal:
    """A thread renewing a held lock (`renew`: the renewal script) every third of its time to
    live; `lost` once the lock was found not ours any more."""

    def __init__(self, renew: Callable[..., Any], lock_key: str, token: str, ttl_ms: int):
        self.renew, self.lock_key, self.token, self.ttl_ms = renew, lock_key, token, ttl_ms
        self.stop = threading.Event()
        self.lost = False
        self.thread = threading.Thread(target=self._run, name="wa-sessions-lock-renewal", daemon=True)

    def _run(self) -> None:
        import redis

        while not self.stop.wait(self.ttl_ms / 3000):
            try:
                renewed = self.renew(keys=[self.lock_key], args=[self.token, self.ttl_ms])
            except redis.RedisError:
                continue  # the server may be back before the lock expires
            if not renewed:
                self.lost = True
                return
