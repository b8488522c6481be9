-- ARGV[2] this daemon, [3] the heartbeat's life in ms, [4] and [5] its
-- connections and rooms, [6] the primary's era. 0 when the heartbeat had
-- lapsed: other daemons may have reaped our sessions; or when this daemon
-- has not told this primary who is here (it is of another era: a failover
-- may have lost that), and so must resync -- until then its users are
-- not paired with (pair.lua).
local node = K.node(ARGV[2])
local was = redis.call('GET', node)
if was and was ~= ARGV[6] then
  redis.call('PEXPIRE', node, ARGV[3])
  return 0
end
redis.call('SET', node, ARGV[6], 'PX', ARGV[3])
redis.call('SADD', K.nodes(), ARGV[2])
redis.call('HSET', K.node_stats(ARGV[2]), 'connections', ARGV[4], 'rooms', ARGV[5])
redis.call('PEXPIRE', K.node_stats(ARGV[2]), ARGV[3])
return was and 1 or 0
