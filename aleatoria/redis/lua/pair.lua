-- uses: library
-- ARGV[2] requester, [3] the peer it skips (or ''), [4] a random number,
-- [5] the primary's era: a user whose daemon has not told this primary its
-- calls since a failover may be in a call the failover lost, and waits.
-- [6] requests a user may make a minute (0: any number), [7] ms after the
-- match ends during which the two are not paired again, [8] the requester's
-- segment: only users of the same are paired, [9] its interests (JSON): one
-- who shares one is picked first, [10] '1': only such a one (else the
-- requester enters the pool with them).
-- {'fresh' | 'current' | 'none', peer, role, the peer of the match that ended,
-- the interests they share (JSON)}
-- or {'limited', ms until it may ask again}.
-- Two users either of whom blocks the other are never paired.
local requester, skipped = ARGV[2], ARGV[3]
local limit = tonumber(ARGV[6])
if limit > 0 then
  -- the requester's requests of the last minute, a sliding window
  local skips, now = K.skips(requester), now_ms()
  redis.call('ZREMRANGEBYSCORE', skips, '-inf', now - 60000)
  if redis.call('ZCARD', skips) >= limit then
    local oldest = redis.call('ZRANGE', skips, 0, 0, 'WITHSCORES')
    return {'limited', tonumber(oldest[2]) + 60000 - now}
  end
  redis.call('ZADD', skips, now, now .. ':' .. ARGV[4])
  redis.call('PEXPIRE', skips, 60000)
end
local ended = false
local current = redis.call('HMGET', K.match(requester), 'peer', 'role', 'common')
if current[1] then
  if current[1] ~= skipped and (present(current[1]) or held(current[1])) then
    return {'current', current[1], current[2], false, current[3] or '[]'}
  end
  -- a skip, or a partner whose daemon died (not held): that match is over
  ended = end_match(requester)
end
local segment, interests = ARGV[8], cjson.decode(ARGV[9])

-- which of the requester's interests user has, as JSON
local function common_with(user)
  local theirs, common = {}, {}
  for _, interest in ipairs(cjson.decode(redis.call('HGET', K.seat(user), 'interests') or '[]')) do
    theirs[interest] = true
  end
  for _, interest in ipairs(interests) do
    if theirs[interest] then common[#common + 1] = interest end
  end
  return #common > 0 and cjson.encode(common) or '[]'
end

-- user, if it fits: paired now; a member of the pool whose daemon is gone leaves it
local function paired(user)
  if user == requester or user == skipped or blocked(requester, user)
      or redis.call('EXISTS', met_key(requester, user)) == 1 then
    return false
  end
  if alive(user) and redis.call('GET', K.node(redis.call('GET', K.presence(user))))
      == ARGV[5] then
    local common = common_with(user)
    pool_exit(requester)
    pool_exit(user)
    redis.call('SREM', K.waiting(), requester, user)
    local at = string.format('%d', now_ms())
    redis.call('HSET', K.match(requester), 'peer', user, 'role', 'impolite', 'at', at,
               'rematch', ARGV[7], 'common', common)
    redis.call('HSET', K.match(user), 'peer', requester, 'role', 'polite', 'at', at,
               'rematch', ARGV[7], 'common', common)
    return common
  elseif not present(user) then
    pool_exit(user)
  end
  return false
end

-- A fitting member of pool, paired, and what the two share; or nil.
-- SRANDMEMBER returns a small set whole and in a fixed order: start the
-- scan at a random offset from the caller (ARGV[4]).
local function search(pool, rounds)
  for _ = 1, rounds do
    local sample = redis.call('SRANDMEMBER', pool, 4)
    for i = 1, #sample do
      local user = sample[(tonumber(ARGV[4]) + i) % #sample + 1]
      local common = paired(user)
      if common then return user, common end
    end
    if #sample < 4 then return nil end
  end
  -- no fit in the samples (the requester blocked much of the pool, or it
  -- of the requester): a pool of up to 1 000 is read whole, so that nobody
  -- who fits is missed there.
  if redis.call('SCARD', pool) <= 1000 then
    for _, user in ipairs(redis.call('SMEMBERS', pool)) do
      local common = paired(user)
      if common then return user, common end
    end
  end
  return nil
end

for n = 1, #interests do
  local interest = interests[(tonumber(ARGV[4]) + n) % #interests + 1]
  local user, common = search(interest_key(segment, interest), 4)
  if user then return {'fresh', user, 'impolite', ended, common} end
end
if ARGV[10] == '1' then
  -- it waits in the pool for somebody who shares an interest
  pool_exit(requester)
  redis.call('HSET', K.seat(requester), 'segment', segment, 'interests', ARGV[9])
  pool_enter(requester)
else
  local user, common = search(segment_key(segment), 16)
  if user then return {'fresh', user, 'impolite', ended, common} end
end
return {'none', false, false, ended, '[]'}
