-- ARGV[2] a ban's id, [3] the post that tells every daemon it is lifted.
-- The ban, or false when none of that id is in force.
local ban = redis.call('GET', K.ban(ARGV[2]))
if not ban then return false end
redis.call('DEL', K.ban(ARGV[2]))
redis.call('ZREM', K.bans(), ARGV[2])
redis.call('PUBLISH', K.rooms_channel(), ARGV[3])
return ban
