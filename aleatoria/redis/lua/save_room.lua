-- uses: library streams
-- Number a room message, keep it, and tell every daemon, in one step: so
-- that all of them hear a stream's messages in the order of its offsets.
-- ARGV[2] room, [3] its time (ns, the history's score), [4] [5] [6] what
-- is kept: head .. offset .. middle .. epoch .. tail, [7] history size,
-- [8] ttl, [9] a fresh epoch, [10] what the post begins with ('': tell
-- nobody), [11] what it ends with: head .. offset .. ' ' .. epoch .. end.
-- {offset, epoch, live daemons not listening}
local room, size, ttl = ARGV[2], tonumber(ARGV[7]), ARGV[8]
local history, counter, epochs, times = room_keys(room)
local offset, epoch = next_place(counter, epochs, ARGV[9])
redis.call('ZADD', history, ARGV[3], ARGV[4] .. offset .. ARGV[5] .. epoch .. ARGV[6])
redis.call('ZREMRANGEBYRANK', history, 0, -(size + 1))
-- each kept offset's time, for a replay to read only the gap's time range
if offset == 1 then redis.call('DEL', times) end
redis.call('HSET', times, offset, ARGV[3])
redis.call('HDEL', times, offset - size)
for _, key in ipairs({history, counter, epochs, times}) do redis.call('EXPIRE', key, ttl) end
written(ttl, {'room:' .. room})
local missed = 0
if ARGV[10] ~= '' then
  missed = deaf()
  redis.call('PUBLISH', K.rooms_channel(), ARGV[10] .. offset .. ' ' .. epoch .. ARGV[11])
end
return {offset, epoch, missed}
