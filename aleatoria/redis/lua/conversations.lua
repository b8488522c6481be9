-- uses: library streams
-- ARGV[2] user, [3] how many, [4] before which offset (0: the newest):
-- {partner, last message, unread, ...}, the most recent first.
local _, _, _, latest, conversations, unread = inbox_keys(ARGV[2])
local high = ARGV[4] == '0' and '+inf' or '(' .. ARGV[4]
local reply = {}
for _, partner in ipairs(redis.call('ZREVRANGEBYSCORE', conversations, high, '-inf',
                                    'LIMIT', 0, ARGV[3])) do
  reply[#reply + 1] = partner
  reply[#reply + 1] = redis.call('HGET', latest, partner) or ''
  reply[#reply + 1] = tonumber(redis.call('HGET', unread, partner) or '0')
end
return reply
