-- Sessions and matchmaking: which daemons live, which users are where,
-- and ending a match or a session.

-- A daemon is live while its heartbeat lasts; it hears posts only while its
-- pub/sub connection is subscribed (the kernel closes that one the moment
-- the process dies, kill -9 included).
local function live(node)
  return redis.call('EXISTS', K.node(node)) == 1
end

local function listening(node)
  return redis.call('PUBSUB', 'NUMSUB', K.node_channel(node))[2] > 0
end

-- present: its daemon lives; alive: and hears what is posted to it.
local function present(user)
  local node = redis.call('GET', K.presence(user))
  return node and live(node)
end

local function alive(user)
  local node = redis.call('GET', K.presence(user))
  return node and live(node) and listening(node)
end

-- there while the two users' last match ended less than --rematch-after ago
local function met_key(a, b)
  if a > b then return K.met(b, a) end
  return K.met(a, b)
end

local function end_match(user)
  local peer, rematch = unpack(redis.call('HMGET', K.match(user), 'peer', 'rematch'))
  if not peer then return false end
  if rematch and tonumber(rematch) > 0 then redis.call('SET', met_key(user, peer), 1, 'PX', rematch) end
  redis.call('DEL', K.match(user), K.match(peer))
  for _, side in ipairs({user, peer}) do
    if redis.call('SREM', K.waiting(), side) == 1 then redis.call('SADD', K.pool(), side) end
  end
  return peer
end

local function end_session(user)
  local rooms = K.user_rooms(user)
  for _, room in ipairs(redis.call('SMEMBERS', rooms)) do
    local members = K.room_members(room)
    redis.call('SREM', members, user)
    if redis.call('SCARD', members) == 0 then redis.call('ZREM', K.rooms(), room) end
    redis.call('ZREM', K.room_live(room), user)
  end
  redis.call('DEL', rooms)
  redis.call('SREM', K.pool(), user)
  redis.call('SREM', K.waiting(), user)
  return end_match(user)
end

-- whether either of the two users blocks the other
local function blocked(a, b)
  return redis.call('SISMEMBER', K.blocks(a), b) == 1
    or redis.call('SISMEMBER', K.blocks(b), a) == 1
end
