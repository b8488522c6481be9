-- ARGV[2] this daemon, leaving: the others may forget it.
redis.call('DEL', K.node(ARGV[2]), K.node_users(ARGV[2]), K.node_stats(ARGV[2]))
redis.call('SREM', K.nodes(), ARGV[2])
