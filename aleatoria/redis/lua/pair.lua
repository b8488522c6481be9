-- uses: library
-- ARGV[2] requester, [3] the peer it skips (or ''), [4] a random number.
-- {'fresh' | 'current' | 'none', peer, role, the peer of the match that ended}
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
-- SRANDMEMBER returns a small set whole and in a fixed order: start the
-- scan at a random offset from the caller (ARGV[4]).
for _ = 1, 16 do
  local sample = redis.call('SRANDMEMBER', K.pool(), 4)
  for i = 1, #sample do
    local user = sample[(tonumber(ARGV[4]) + i) % #sample + 1]
    if user ~= requester and user ~= skipped then
      if alive(user) then
        redis.call('SREM', K.pool(), requester, user)
        redis.call('SREM', K.waiting(), requester, user)
        redis.call('HSET', K.match(requester), 'peer', user, 'role', 'impolite')
        redis.call('HSET', K.match(user), 'peer', requester, 'role', 'polite')
        return {'fresh', user, 'impolite', ended}
      elseif not present(user) then
        redis.call('SREM', K.pool(), user)
      end
    end
  end
  if #sample < 4 then break end
end
return {'none', false, false, ended}
