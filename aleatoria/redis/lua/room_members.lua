-- ARGV[2] room, [3] the page size, [4] the member after which it starts
-- ('' from the first). {members in all, then the page and the first member
-- of the next one, if any}
local live = K.room_live(ARGV[2])
local low = ARGV[4] == '' and '-' or '(' .. ARGV[4]
local page = redis.call('ZRANGEBYLEX', live, low, '+', 'LIMIT', 0, tonumber(ARGV[3]) + 1)
table.insert(page, 1, redis.call('ZCARD', live))
return page
