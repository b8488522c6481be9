-- uses: library
-- ARGV[2] user, [3] this daemon, [4] ms until its message budget is full
-- again, [5] ms its match is held (0: ended). If ours still, its session
-- ends: the former partner of an ended match, or false.
local user, me, refills_in = ARGV[2], ARGV[3], tonumber(ARGV[4])
if redis.call('GET', K.presence(user)) ~= me then return false end
if refills_in > 0 then redis.call('SET', K.budget(user), 1, 'PX', refills_in) end
redis.call('DEL', K.presence(user))
redis.call('SREM', K.node_users(me), user)
return end_session(user, tonumber(ARGV[5]))
