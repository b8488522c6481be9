-- ARGV[2] user: available -- in the pool, or once its match ends.
local user = ARGV[2]
if redis.call('EXISTS', K.match(user)) == 1 then
  redis.call('SADD', K.waiting(), user)
else
  redis.call('SADD', K.pool(), user)
end
