-- ARGV[2] id: 1 if the report was kept (it is gone now), else 0.
local report = K.report(ARGV[2])
local place = redis.call('HGET', report, 'place')
if not place then return 0 end
redis.call('DEL', report)
redis.call('ZREM', K.reports(), place)
return 1
