-- uses: library streams
-- ARGV[2] user, [3] the client's offset, [4] its epoch, [5] messages kept
-- per inbox, [6] a fresh epoch (see room_since.lua): {epoch, last offset},
-- then 1 if the client may have all it
-- missed (see replayable): the daemon reads the messages after its offset
-- itself (see room_since.lua).
local user = ARGV[2]
local epoch = current_epoch(K.inbox_offset(user), K.inbox_epoch(user), ARGV[6], false)
if not epoch then return {'', 0} end
local last = tonumber(redis.call('GET', K.inbox_offset(user)) or '0')
if not replayable(tonumber(ARGV[3]), ARGV[4], epoch, last, tonumber(ARGV[5])) then
  return {epoch, last}
end
return {epoch, last, 1}
