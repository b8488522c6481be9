-- uses: library
-- ARGV[2] user, [3] this daemon, [4] its client address ('' if unknown):
-- the user is ours now. Any earlier session
-- ends here. {the daemon that had it, its partner (ended), ms until its
-- message budget is full again, then the rooms it was in}
local user, me = ARGV[2], ARGV[3]
local previous = redis.call('GET', K.presence(user))
local ended = {previous, false}
if previous then
  for _, room in ipairs(redis.call('SMEMBERS', K.user_rooms(user))) do
    ended[#ended + 1] = room
  end
  ended[2] = end_session(user)
  redis.call('SREM', K.node_users(previous), user)
end
redis.call('SET', K.presence(user), me)
if ARGV[4] ~= '' then redis.call('SET', K.address(user), ARGV[4]) end
redis.call('SADD', K.node_users(me), user)
table.insert(ended, 3, redis.call('PTTL', K.budget(user)))
redis.call('DEL', K.budget(user))
return ended
