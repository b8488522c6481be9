-- uses: library
-- End the held matches whose grace is over (at most ARGV[2] of them), on
-- whichever daemon sweeps first: {user, former partner, ...}.
local lapsed = {}
local due = redis.call('ZRANGEBYSCORE', K.held(), '-inf', now_ms(), 'LIMIT', 0, tonumber(ARGV[2]))
for _, user in ipairs(due) do
  redis.call('ZREM', K.held(), user)
  local peer = end_match(user)
  if peer then
    lapsed[#lapsed + 1] = user
    lapsed[#lapsed + 1] = peer
  end
end
return lapsed
