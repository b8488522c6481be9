-- ARGV[2] user, [3] room: the user is a member; a live one if it has a
-- session (its presence).
local user, room = ARGV[2], ARGV[3]
redis.call('SADD', K.room_members(room), user)
redis.call('SADD', K.user_rooms(user), room)
redis.call('ZADD', K.rooms(), 0, room)
if redis.call('EXISTS', K.presence(user)) == 1 then redis.call('ZADD', K.room_live(room), 0, user) end
