-- uses: library streams
-- ARGV[2] room, [3] the client's offset, [4] its epoch, [5] messages kept
-- per room, [6] a fresh epoch (the stream begins again if its epoch is of
-- another era: see streams.lua): {epoch, last offset} ({'', 0} for no
-- stream), then -- only if
-- the client may have all it missed (see replayable) -- the lowest and
-- highest time of the messages after its offset: the range of the
-- history the daemon reads next (a plain ZRANGEBYSCORE: a message's way
-- through Lua costs ten times its way out of Redis). A missing time (the
-- message trimmed, or kept before times were) answers without a range.
local room, from, size = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[5])
local epoch = current_epoch(K.room_offset(room), K.room_epoch(room), ARGV[6], false)
if not epoch then return {'', 0} end
local last = tonumber(redis.call('GET', K.room_offset(room)) or '0')
local reply = {epoch, last}
if not replayable(from, ARGV[4], epoch, last, size) then return reply end
local times, low, high, lowest, highest = K.room_times(room)
for first = from + 1, last, 1000 do
  local offsets = {}
  for offset = first, math.min(first + 999, last) do offsets[#offsets + 1] = offset end
  for _, time in ipairs(redis.call('HMGET', times, unpack(offsets))) do
    if not time then return reply end
    local at = tonumber(time)
    if not lowest or at < lowest then low, lowest = time, at end
    if not highest or at > highest then high, highest = time, at end
  end
end
return {epoch, last, low, high}
