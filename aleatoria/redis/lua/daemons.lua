-- uses: library
-- Each live daemon's load as of its last heartbeat: {node, connections, rooms, ...}
local found = {}
for _, node in ipairs(redis.call('SMEMBERS', K.nodes())) do
  if live(node) then
    local load = redis.call('HMGET', K.node_stats(node), 'connections', 'rooms')
    found[#found + 1] = node
    found[#found + 1] = tonumber(load[1]) or 0
    found[#found + 1] = tonumber(load[2]) or 0
  end
end
return found
