-- uses: library
-- After an outage: ARGV[2] this daemon, [3] JSON {user: [rooms]} of the
-- users connected here now (the one document a script reads), [4] the
-- heartbeat's life in ms (renewed first, so that no daemon reaps what this
-- one is restoring), [5] after an outage, JSON {user: [partner, role]} of
-- the users here in a call ('' otherwise). Sessions that ended meanwhile
-- are ended; the users still here are ours again (unless another daemon
-- claimed them: those are returned, their connections here are stale), and
-- their calls are as they were told: a failover may have lost a pairing,
-- and left both users in the pool for a third to be paired with. [6] the
-- primary's era, which marks this daemon as having told it (heartbeat.lua).
local me, here = ARGV[2], cjson.decode(ARGV[3])
local calls = ARGV[5] ~= '' and cjson.decode(ARGV[5]) or {}
local mine = K.node_users(me)
redis.call('SET', K.node(me), ARGV[6], 'PX', ARGV[4])
redis.call('SADD', K.nodes(), me)
for _, user in ipairs(redis.call('SMEMBERS', mine)) do
  if here[user] == nil then
    redis.call('SREM', mine, user)
    if redis.call('GET', K.presence(user)) == me then
      redis.call('DEL', K.presence(user))
      end_session(user)
    end
  end
end
local stale = {}
for user, rooms in pairs(here) do
  local owner = redis.call('GET', K.presence(user))
  if owner and owner ~= me and live(owner) then
    stale[#stale + 1] = user
  else
    redis.call('SET', K.presence(user), me)
    redis.call('SADD', mine, user)
    local call = calls[user]
    if call then
      redis.call('HSET', K.match(user), 'peer', call[1], 'role', call[2])
      redis.call('SREM', K.pool(), user)
      redis.call('SREM', K.waiting(), user)
    end
    for _, room in ipairs(rooms) do
      redis.call('SADD', K.room_members(room), user)
      redis.call('SADD', K.user_rooms(user), room)
      redis.call('ZADD', K.rooms(), 0, room)
      redis.call('ZADD', K.room_live(room), 0, user)
    end
  end
end
return stale
