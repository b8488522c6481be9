-- ARGV[2] the reader, [3] the pair's history key, [4] how many:
-- {the reader's inbox epoch, the last messages, oldest first}
local reply = {redis.call('GET', K.inbox_epoch(ARGV[2])) or ''}
for _, entry in ipairs(redis.call('LRANGE', ARGV[3], -tonumber(ARGV[4]), -1)) do
  reply[#reply + 1] = entry
end
return reply
