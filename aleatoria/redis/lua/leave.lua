-- ARGV[2] user, [3] room: the user is no member any more.
local user, room = ARGV[2], ARGV[3]
redis.call('SREM', K.room_members(room), user)
redis.call('SREM', K.user_rooms(user), room)
if redis.call('SCARD', K.room_members(room)) == 0 then redis.call('ZREM', K.rooms(), room) end
redis.call('ZREM', K.room_live(room), user)
