-- uses: library streams
-- ARGV[2] the budget (bytes of Redis's used_memory), [3] the most streams
-- to evict. Past the budget, evict the streams written longest ago -- every
-- key of each, unlinked (freed in the background) -- until what they used
-- (MEMORY USAGE: an estimate) makes up the excess. {used_memory, less what
-- was evicted; rooms, conversations, inboxes evicted; streams left; ms
-- since the newest evicted was written}
local info = redis.call('INFO', 'memory')
local used = tonumber(string.match(info, 'used_memory:(%d+)'))
-- while Redis frees what the last eviction unlinked, what it left instead
if tonumber(string.match(info, 'lazyfree_pending_objects:(%d+)') or '0') > 0 then
  used = math.min(used, tonumber(redis.call('GET', K.streams_weight()) or used))
end
local budget = tonumber(ARGV[2])
local evicted, age = {room = 0, dm = 0, inbox = 0}, 0
if used > budget then
  local ms = now_ms()
  local oldest = redis.call('ZRANGE', K.streams(), 0, tonumber(ARGV[3]) - 1, 'WITHSCORES')
  for i = 1, #oldest, 2 do
    local stream = oldest[i]
    local kind, name = string.match(stream, '^(%a+):(.*)$')
    local keys = {P .. stream}
    if kind == 'room' then keys = {room_keys(name)}
    elseif kind == 'inbox' then keys = {inbox_keys(name)} end
    for _, key in ipairs(keys) do
      used = used - (redis.call('MEMORY', 'USAGE', key) or 0)
    end
    redis.call('ZREM', K.streams(), stream)
    if redis.call('UNLINK', unpack(keys)) > 0 then
      evicted[kind] = evicted[kind] + 1
      age = ms - tonumber(oldest[i + 1])
    end
    if used <= budget then break end
  end
  redis.call('SET', K.streams_weight(), used, 'PX', 1000)
end
return {used, evicted.room, evicted.dm, evicted.inbox, redis.call('ZCARD', K.streams()), age}
