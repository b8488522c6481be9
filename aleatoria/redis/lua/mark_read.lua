-- uses: library streams
-- ARGV[2] user, [3] partner, [4] read up to this offset (of the user's
-- inbox). The unread count left: the partner's messages after the offset
-- (never more than it was), from the index of their offsets. Messages
-- kept before that index was have none: they count read only once read
-- up to the conversation's last message.
local user, partner = ARGV[2], ARGV[3]
local conversations, unread = K.inbox_conversations(user), K.inbox_unread(user)
local before = tonumber(redis.call('HGET', unread, partner) or '0')
if before == 0 then return 0 end
local heard, count = K.inbox_incoming(user, partner), before
if redis.call('EXISTS', heard) == 1 then
  redis.call('ZREMRANGEBYSCORE', heard, '-inf', ARGV[4])
  count = redis.call('ZCARD', heard)
elseif tonumber(ARGV[4]) >= tonumber(redis.call('ZSCORE', conversations, partner) or '0') then
  count = 0
end
if count >= before then return before end
if count == 0 then redis.call('HDEL', unread, partner)
else redis.call('HSET', unread, partner, count) end
return count
