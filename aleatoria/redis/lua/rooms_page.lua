-- ARGV[2] the page size, [3] the room after which it starts ('' from the
-- first). {rooms in all, room, members, room, members...}
local low = ARGV[3] == '' and '-' or '(' .. ARGV[3]
local page = {redis.call('ZCARD', K.rooms())}
for _, room in ipairs(redis.call('ZRANGEBYLEX', K.rooms(), low, '+', 'LIMIT', 0, ARGV[2])) do
  page[#page + 1] = room
  page[#page + 1] = redis.call('ZCARD', K.room_live(room))
end
return page
