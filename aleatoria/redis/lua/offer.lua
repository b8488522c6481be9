-- uses: library
-- ARGV[2] user: available -- in the pool, or once its match ends; [3] its
-- segment ('': as it last said), [4] its interests (JSON).
local user = ARGV[2]
if ARGV[3] ~= '' then
  pool_exit(user)
  redis.call('HSET', K.seat(user), 'segment', ARGV[3], 'interests', ARGV[4])
end
if redis.call('EXISTS', K.match(user)) == 1 then
  redis.call('SADD', K.waiting(), user)
else
  pool_enter(user)
end
