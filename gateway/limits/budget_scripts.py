"""The Lua scripts behind budgets and rate limits: each decision is one atomic Redis call.

A script sees and changes all of its keys at once, so two gateway processes
charging the same budget can never both take its last place, and a refused
request changes nothing.
"""

from __future__ import annotations

__all__ = ["CHARGE_DISTINCT", "GCRA"]

CHARGE_DISTINCT = """
-- Count one child in several windows of distinct children, all or nothing.
-- KEYS[3i-2]: window i's set of hashed children; KEYS[3i-1]: its "warned" flag;
-- KEYS[3i]: its "exceeded" flag.
-- ARGV[1]: the hashed child; ARGV[3i-1], ARGV[3i], ARGV[3i+1]: window i's limit,
-- warning threshold and TTL in seconds.
-- Reply: {accepted, used_1, added_1, mark_1, used_2, ...}. `used` is the window's
-- count after the charge (as it stands, when refused); `added` is 1 when the child
-- was new to the window; `mark` is 1 when this charge first reached the window's
-- warning threshold (accepted) or when this window has no room for the child (refused),
-- and 2 when, refused, this is the window's first refusal in its bucket (its
-- "exceeded" flag was not yet set): the one refusal per window that alerts.
--
-- Optional, an odd last key: the organisation's baseline, a hash of the current hour,
-- its count so far, the mean count of its earlier active hours (an exponentially
-- weighted mean), how many such hours there were, and whether this hour has alerted.
-- Its ARGV follow the windows': the hour's number, the index of the organisation-hour
-- window, the alert ratio, the floor, the mean's weight, the hours of history needed
-- before alerting, and the hash's TTL. An accepted charge then appends {unusual,
-- mean * 100}: unusual is 1 when the hour's count first passes both the floor and
-- ratio times the mean.
local child = ARGV[1]
local reply = {1}
local fresh = {}
local refused = false
local windows = math.floor(#KEYS / 3)
for i = 1, windows do
  local set = KEYS[3 * i - 2]
  local used = redis.call('SCARD', set)
  fresh[i] = redis.call('SISMEMBER', set, child) == 0
  local full = fresh[i] and used + 1 > tonumber(ARGV[3 * i - 1])
  if full then refused = true end
  reply[3 * i - 1] = used
  reply[3 * i] = 0
  reply[3 * i + 1] = full and 1 or 0
end
if refused then
  reply[1] = 0
  for i = 1, windows do
    if reply[3 * i + 1] == 1
        and redis.call('SET', KEYS[3 * i], 1, 'NX', 'EX', tonumber(ARGV[3 * i + 1])) then
      reply[3 * i + 1] = 2
    end
  end
  return reply
end
for i = 1, windows do
  if fresh[i] then
    local set = KEYS[3 * i - 2]
    local ttl = tonumber(ARGV[3 * i + 1])
    redis.call('SADD', set, child)
    redis.call('EXPIRE', set, ttl)
    local used = reply[3 * i - 1] + 1
    reply[3 * i - 1] = used
    reply[3 * i] = 1
    if used >= tonumber(ARGV[3 * i])
        and redis.call('SET', KEYS[3 * i - 1], 1, 'NX', 'EX', ttl) then
      reply[3 * i + 1] = 1
    end
  end
end
if #KEYS > 3 * windows then
  local base = KEYS[#KEYS]
  local a = 3 * windows + 2
  local hour, w = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  local ratio, floor, alpha = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
  local need, ttl = tonumber(ARGV[a + 5]), tonumber(ARGV[a + 6])
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
"""

GCRA = """
-- Generic cell rate algorithm over several keys: a request passes only if every
-- key allows it, and only a passing request moves any key's theoretical arrival
-- time (TAT, in ms).
-- KEYS[i]: key i's TAT. ARGV[1]: now (integer ms); ARGV[2i], ARGV[2i+1]: key i's
-- emission interval (integer ms) and burst (requests that may arrive at once).
-- Reply: 0 when the request passes, else the ms to wait before it would.
local now = tonumber(ARGV[1])
local wait = 0
local tats = {}
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i])
  local burst = tonumber(ARGV[2 * i + 1])
  local tat = tonumber(redis.call('GET', KEYS[i])) or now
  if tat < now then tat = now end
  tats[i] = tat + interval
  local over = tats[i] - now - burst * interval
  if over > wait then wait = over end
end
if wait > 0 then return math.ceil(wait) end
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], tats[i], 'PX', tats[i] - now)
end
return 0
"""
