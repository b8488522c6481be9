-- ARGV[2] a ban's id, [3] the ban, [4] when it ends and [5] now (Unix ms),
-- [6] the post that tells every daemon. The ban is kept until it ends, and
-- the index of bans until the last one does.
local ends = tonumber(ARGV[4])
local now = tonumber(ARGV[5])
redis.call('SET', K.ban(ARGV[2]), ARGV[3], 'PX', math.max(1, ends - now))
redis.call('ZADD', K.bans(), ends, ARGV[2])
redis.call('ZREMRANGEBYSCORE', K.bans(), '-inf', now)
local last = redis.call('ZRANGE', K.bans(), -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', K.bans(), math.max(ends, tonumber(last[2])))
redis.call('PUBLISH', K.rooms_channel(), ARGV[6])
return 1
