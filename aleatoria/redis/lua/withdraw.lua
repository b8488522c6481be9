-- uses: library
-- ARGV[2] user: unavailable.
pool_exit(ARGV[2])
redis.call('SREM', K.waiting(), ARGV[2])
redis.call('DEL', K.seat(ARGV[2]))
