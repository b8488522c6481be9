-- uses: library streams
-- ARGV[2] the post, for every daemon. The number of live daemons that are
-- not listening, and so miss it.
local missed = deaf()
redis.call('PUBLISH', K.rooms_channel(), ARGV[2])
return missed
