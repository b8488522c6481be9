-- ARGV[2] a ban's id, [3] now (Unix ms), [4] the post that tells every
-- daemon it is lifted. The ban, or false when none of that id is in force.
local ends = redis.call('ZSCORE', K.bans(), ARGV[2])
local ban = redis.call('GET', K.ban(ARGV[2]))
if not (ends and ban and tonumber(ends) > tonumber(ARGV[3])) then return false end
redis.call('DEL', K.ban(ARGV[2]))
redis.call('ZREM', K.bans(), ARGV[2])
redis.call('PUBLISH', K.rooms_channel(), ARGV[4])
return ban
