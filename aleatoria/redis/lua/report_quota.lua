-- ARGV[2] user, [3] reports it may file an hour: 0, and one more counted;
-- or, when it filed as many, the ms until its hour is over.
local key = K.reports_filed(ARGV[2])
local count = tonumber(redis.call('GET', key) or '0')
if count >= tonumber(ARGV[3]) then return math.max(redis.call('PTTL', key), 1) end
redis.call('INCR', key)
if count == 0 then redis.call('PEXPIRE', key, 3600000) end
return 0
