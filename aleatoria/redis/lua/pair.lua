-- uses: library
-- ARGV[2] requester, [3] the peer it skips (or ''), [4] a random number,
-- [5] the primary's era: a user whose daemon has not told this primary its
-- calls since a failover may be in a call the failover lost, and waits.
-- {'fresh' | 'current' | 'none', peer, role, the peer of the match that ended}
-- Two users either of whom blocks the other are never paired.
local requester, skipped = ARGV[2], ARGV[3]
local ended = false
local current = redis.call('HMGET', K.match(requester), 'peer', 'role')
if current[1] then
  if current[1] ~= skipped and (present(current[1]) or held(current[1])) then
    return {'current', current[1], current[2], false}
  end
  -- a skip, or a partner whose daemon died (not held): that match is over
  ended = end_match(requester)
end

-- user, if it fits: paired now; a member of the pool whose daemon is gone leaves it
local function paired(user)
  if user == requester or user == skipped or blocked(requester, user) then return false end
  if alive(user) and redis.call('GET', K.node(redis.call('GET', K.presence(user))))
      == ARGV[5] then
    redis.call('SREM', K.pool(), requester, user)
    redis.call('SREM', K.waiting(), requester, user)
    local at = string.format('%d', now_ms())
    redis.call('HSET', K.match(requester), 'peer', user, 'role', 'impolite', 'at', at)
    redis.call('HSET', K.match(user), 'peer', requester, 'role', 'polite', 'at', at)
    return true
  elseif not present(user) then
    redis.call('SREM', K.pool(), user)
  end
  return false
end

-- SRANDMEMBER returns a small set whole and in a fixed order: start the
-- scan at a random offset from the caller (ARGV[4]).
for _ = 1, 16 do
  local sample = redis.call('SRANDMEMBER', K.pool(), 4)
  for i = 1, #sample do
    local user = sample[(tonumber(ARGV[4]) + i) % #sample + 1]
    if paired(user) then return {'fresh', user, 'impolite', ended} end
  end
  if #sample < 4 then return {'none', false, false, ended} end
end
-- 64 samples and no fit (the requester blocked much of the pool, or it of
-- the requester): a pool of up to 1 000 is read whole, so that nobody who
-- fits is missed there.
if redis.call('SCARD', K.pool()) <= 1000 then
  for _, user in ipairs(redis.call('SMEMBERS', K.pool())) do
    if paired(user) then return {'fresh', user, 'impolite', ended} end
  end
end
return {'none', false, false, ended}
