-- ARGV[2] id, [3] the report, [4] its place in the index (sorting as
-- filed), [5] seconds it is kept, [6] the place before which reports have
-- expired: those leave the index.
local report, index = K.report(ARGV[2]), K.reports()
redis.call('HSET', report, 'place', ARGV[4], 'report', ARGV[3])
redis.call('EXPIRE', report, ARGV[5])
redis.call('ZADD', index, 0, ARGV[4])
redis.call('ZREMRANGEBYLEX', index, '-', '(' .. ARGV[6])
return 1
