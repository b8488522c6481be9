-- ARGV[2] user: unavailable.
redis.call('SREM', K.pool(), ARGV[2])
redis.call('SREM', K.waiting(), ARGV[2])
