"""The Lua scripts wa-sessions runs in an Evolution API Redis. Each runs atomically on the server,
so values never cross the network and no other client's write lands half-way through one.

Seen records (`wa-sessions:seen:<id>`) map a field to `<sha1 of its value> <first seen, epoch s>`.
A compare-and-delete names the tenant lock and its token: a run whose lock expired (or was taken
by another run) deletes nothing more.
"""

from __future__ import annotations

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

# KEYS: instance hash. ARGV: fields. The digest of each field's value ("" when it is gone).
DIGESTS_SCRIPT = """
local out = {}
for i = 1, #ARGV do
  local value = redis.call('HGET', KEYS[1], ARGV[i])
  if value then out[i] = redis.sha1hex(value) else out[i] = '' end
end
return out
"""

# Codes of DELETE_SCRIPT, per field.
GONE, CHANGED, DELETED, HELD = 0, 1, 2, 3
LOCK_LOST = -1

# KEYS: instance hash, seen hash, tenant lock. ARGV: the lock's token, then per field: field,
# planned digest, unit ("" for none). Returns LOCK_LOST (nothing done) when the lock is not held
# with that token; else one code per field, in order: GONE; CHANGED (kept: its value is not the
# one planned); HELD (kept: an earlier field of its unit was changed); DELETED (and its seen
# record dropped).
DELETE_SCRIPT = """
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return -1 end
local held = {}
local out = {}
for i = 2, #ARGV, 3 do
  local field, digest, unit = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local code = 3
  if unit == '' or not held[unit] then
    local value = redis.call('HGET', KEYS[1], field)
    if not value then
      code = 0
    elseif redis.sha1hex(value) ~= digest then
      code = 1
      if unit ~= '' then held[unit] = true end
    else
      redis.call('HDEL', KEYS[1], field)
      redis.call('HDEL', KEYS[2], field)
      code = 2
    end
  end
  out[#out + 1] = code
end
return out
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

SCRIPTS = {
    "list": LIST_SCRIPT,
    "digests": DIGESTS_SCRIPT,
    "delete": DELETE_SCRIPT,
    "renew": RENEW_SCRIPT,
    "release": RELEASE_SCRIPT,
}
