-- uses: library
-- ARGV[2] user, [3] this daemon, [4] its client address ('' if unknown),
-- [5] the call grace in ms: the user is ours now. Any earlier session ends
-- here, its match held; a held match is the user's again. {the daemon
-- that had it, its partner (if that match ended), ms until its message
-- budget is full again, the peer and role of the match taken back (or
-- false, false), then the rooms it was in}
local user, me = ARGV[2], ARGV[3]
local previous = redis.call('GET', K.presence(user))
local ended = {previous, false}
if previous then
  for _, room in ipairs(redis.call('SMEMBERS', K.user_rooms(user))) do
    ended[#ended + 1] = room
  end
  ended[2] = end_session(user, tonumber(ARGV[5]))
  redis.call('SREM', K.node_users(previous), user)
end
redis.call('SET', K.presence(user), me)
if ARGV[4] ~= '' then redis.call('SET', K.address(user), ARGV[4]) end
redis.call('SADD', K.node_users(me), user)
table.insert(ended, 3, redis.call('PTTL', K.budget(user)))
redis.call('DEL', K.budget(user))
local resumed = {false, false}
if redis.call('ZREM', K.held(), user) == 1 then
  resumed = redis.call('HMGET', K.match(user), 'peer', 'role')
end
table.insert(ended, 4, resumed[1])
table.insert(ended, 5, resumed[2])
return ended
