-- ARGV[2] this daemon, [3] the heartbeat's life in ms, [4] and [5] its
-- connections and rooms. 0 when the heartbeat had lapsed: other daemons
-- may have reaped our sessions.
local node = K.node(ARGV[2])
local was = redis.call('SET', node, '1', 'PX', ARGV[3], 'GET')
redis.call('SADD', K.nodes(), ARGV[2])
redis.call('HSET', K.node_stats(ARGV[2]), 'connections', ARGV[4], 'rooms', ARGV[5])
redis.call('PEXPIRE', K.node_stats(ARGV[2]), ARGV[3])
return was and 1 or 0
