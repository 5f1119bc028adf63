"""The Lua scripts behind budgets and rate limits: each decision is one atomic Redis call.

A script sees and changes all of its keys at once, so two gateway processes
charging the same budget can never both take its last place, and a refused
request changes nothing.

Each rule is written once, as a Lua function over a slice of KEYS and ARGV
(`_CHARGE_FN`, `_GCRA_FN`); `CHARGE_DISTINCT` and `GCRA` call one of them over
all their keys, and `ADMIT_CHARGE_READ` runs a request's whole first round
trip: the DPoP replay check, the rate limit, the budget charges and the read
of the children's cache entries.

Every key is passed as KEYS (Redis Cluster can route the call). The numbers a
rule needs (limits, TTLs, now) travel packed in one comma-separated argument per
rule (a "spec", read by `nums`): a call's arguments are few, and a spec that does
not change between requests is built and encoded once by the gateway.
"""

from __future__ import annotations

__all__ = ["ADMIT_CHARGE_READ", "CHARGE_DISTINCT", "GCRA"]

_NUMS_FN = """
-- A spec: comma-separated numbers, as a table.
local function nums(s)
  local t = {}
  for v in string.gmatch(s, '[^,]+') do t[#t + 1] = tonumber(v) end
  return t
end
"""

_CHARGE_FN = """
-- Count one child in several windows of distinct children, all or nothing.
-- The charge's keys are KEYS[k0 + 1 ...]; `child` is the hashed child; `p` its spec:
-- p[1]: the windows `w`; p[2]: 1 when it has a baseline key; p[3i], p[3i+1], p[3i+2]:
-- window i's limit, warning threshold and TTL in seconds.
-- KEYS[k0+3i-2]: window i's set of hashed children; KEYS[k0+3i-1]: its "warned" flag;
-- KEYS[k0+3i]: its "exceeded" flag.
-- Reply: {accepted, used_1, added_1, mark_1, used_2, ...}. `used` is the window's
-- count after the charge (as it stands, when refused); `added` is 1 when the child
-- was new to the window; `mark` is 1 when this charge first reached the window's
-- warning threshold (accepted) or when this window has no room for the child (refused),
-- and 2 when, refused, this is the window's first refusal in its bucket (its
-- "exceeded" flag was not yet set): the one refusal per window that alerts.
--
-- Optional (based), one more key: the organisation's baseline, a hash of the current
-- hour, its count so far, the mean count of its earlier active hours (an exponentially
-- weighted mean), how many such hours there were, and whether this hour has alerted.
-- Its numbers follow the windows' in the spec: the hour's number, the index of the
-- organisation-hour window, the alert ratio, the floor, the mean's weight, the hours of
-- history needed before alerting, and the hash's TTL. An accepted charge then appends
-- {unusual, mean * 100}: unusual is 1 when the hour's count first passes both the floor
-- and ratio times the mean.
local function charge(k0, child, p)
  local windows, based = p[1], p[2] == 1
  local reply = {1}
  local fresh = {}
  local refused = false
  for i = 1, windows do
    local set = KEYS[k0 + 3 * i - 2]
    local used = redis.call('SCARD', set)
    fresh[i] = redis.call('SISMEMBER', set, child) == 0
    local full = fresh[i] and used + 1 > p[3 * i]
    if full then refused = true end
    reply[3 * i - 1] = used
    reply[3 * i] = 0
    reply[3 * i + 1] = full and 1 or 0
  end
  if refused then
    reply[1] = 0
    for i = 1, windows do
      if reply[3 * i + 1] == 1
          and redis.call('SET', KEYS[k0 + 3 * i], 1, 'NX', 'EX', p[3 * i + 2]) then
        reply[3 * i + 1] = 2
      end
    end
    return reply
  end
  for i = 1, windows do
    if fresh[i] then
      local set = KEYS[k0 + 3 * i - 2]
      local ttl = p[3 * i + 2]
      redis.call('SADD', set, child)
      redis.call('EXPIRE', set, ttl)
      local used = reply[3 * i - 1] + 1
      reply[3 * i - 1] = used
      reply[3 * i] = 1
      if used >= p[3 * i + 1]
          and redis.call('SET', KEYS[k0 + 3 * i - 1], 1, 'NX', 'EX', ttl) then
        reply[3 * i + 1] = 1
      end
    end
  end
  if based then
    local base = KEYS[k0 + 3 * windows + 1]
    local a = 3 * windows + 3
    local hour, w = p[a], p[a + 1]
    local ratio, floor, alpha = p[a + 2], p[a + 3], p[a + 4]
    local need, ttl = p[a + 5], p[a + 6]
    local s = redis.call('HMGET', base, 'hour', 'used', 'mean', 'hours', 'alerted')
    local last, used, mean = tonumber(s[1]), tonumber(s[2]) or 0, tonumber(s[3])
    local hours, alerted = tonumber(s[4]) or 0, tonumber(s[5]) or 0
    if last ~= nil and hour > last then
      if used > 0 then
        if mean == nil then mean = used else mean = mean + alpha * (used - mean) end
        hours = hours + 1
      end
      alerted = 0
    end
    local now_used = reply[3 * w - 1]
    local unusual = 0
    if mean ~= nil and hours >= need and alerted == 0 and now_used >= floor
        and now_used > ratio * mean then
      alerted = 1
      unusual = 1
    end
    redis.call('HSET', base, 'hour', hour, 'used', now_used, 'hours', hours, 'alerted', alerted)
    if mean ~= nil then redis.call('HSET', base, 'mean', mean) end
    redis.call('EXPIRE', base, ttl)
    reply[#reply + 1] = unusual
    reply[#reply + 1] = math.floor((mean or 0) * 100 + 0.5)
  end
  return reply
end
"""

_GCRA_FN = """
-- Generic cell rate algorithm over several keys: a request passes only if every
-- key allows it, and only a passing request moves any key's theoretical arrival
-- time (TAT, in ms).
-- KEYS[k0+i] (i = 1..n): key i's TAT. `p`, the spec: p[1]: now (integer ms); p[2i],
-- p[2i+1]: key i's emission interval (integer ms) and burst (requests that may arrive
-- at once).
-- Reply: 0 when the request passes, else the ms to wait before it would.
local function gcra(k0, n, p)
  local now = p[1]
  local wait = 0
  local tats = {}
  for i = 1, n do
    local interval = p[2 * i]
    local burst = p[2 * i + 1]
    local tat = tonumber(redis.call('GET', KEYS[k0 + i])) or now
    if tat < now then tat = now end
    tats[i] = tat + interval
    local over = tats[i] - now - burst * interval
    if over > wait then wait = over end
  end
  if wait > 0 then return math.ceil(wait) end
  for i = 1, n do
    redis.call('SET', KEYS[k0 + i], tats[i], 'PX', tats[i] - now)
  end
  return 0
end
"""

CHARGE_DISTINCT = _NUMS_FN + _CHARGE_FN + """
-- KEYS: the windows' keys, then optionally the organisation's baseline (as the spec says).
-- ARGV[1]: the hashed child; ARGV[2]: the charge's spec.
return charge(0, ARGV[1], nums(ARGV[2]))
"""

GCRA = _NUMS_FN + _GCRA_FN + """
-- ARGV[1]: the spec (now, then each key's interval and burst).
return gcra(0, #KEYS, nums(ARGV[1]))
"""

ADMIT_CHARGE_READ = _NUMS_FN + _CHARGE_FN + _GCRA_FN + """
-- A request's first round trip, in order, each step only if the ones before passed:
--   1. the DPoP replay check: SET once-key NX EX ttl (a replayed proof moves nothing);
--   2. the rate limit (gcra);
--   3. the budget charges, one child after another (charge), stopping at a refusal;
--   4. the children's cache entries (MGET), only when every charge was accepted.
-- ARGV[1], the head: "once,ttl,limited,charges,reads": 1 when KEYS begin with the
-- once-key, its TTL in seconds, the rate limit's keys (0: no rate limit), the charges,
-- the keys to read. Then the rate limit's spec (when limited), then per charge
-- its hashed child and its spec (as `charge`'s); KEYS follow the same order, the keys
-- to read last.
-- Reply: {once, wait, charge_1, ..., charge_n, values}: once is 1 (first use), 0
-- (replayed: the reply ends there) or -1 (not asked); wait is the rate limit's (-1: not
-- asked; above 0: refused, the reply ends there); a refused charge ends the reply; values
-- is the MGET's reply.
local head = nums(ARGV[1])
local k, a = 0, 1
local reply = {-1, -1}
if head[1] == 1 then
  k = 1
  if not redis.call('SET', KEYS[1], 1, 'NX', 'EX', head[2]) then
    reply[1] = 0
    return reply
  end
  reply[1] = 1
end
local limited = head[3]
if limited > 0 then
  a = a + 1
  reply[2] = gcra(k, limited, nums(ARGV[a]))
  if reply[2] > 0 then return reply end
  k = k + limited
end
for _ = 1, head[4] do
  local spec = nums(ARGV[a + 2])
  local charged = charge(k, ARGV[a + 1], spec)
  reply[#reply + 1] = charged
  if charged[1] == 0 then return reply end
  k = k + 3 * spec[1] + spec[2]
  a = a + 2
end
local reads = head[5]
if reads > 0 then
  reply[#reply + 1] = redis.call('MGET', unpack(KEYS, k + 1, k + reads))
else
  reply[#reply + 1] = {}
end
return reply
"""
