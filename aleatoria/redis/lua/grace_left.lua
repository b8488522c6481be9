-- uses: library
-- ARGV[2] user: ms until the grace of its held match ends (0: none held).
local deadline = redis.call('ZSCORE', K.held(), ARGV[2])
if not deadline then return 0 end
return math.max(1, tonumber(deadline) - now_ms())
