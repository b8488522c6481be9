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

-- Unix milliseconds, by Redis's clock
local function now_ms()
  local now = redis.call('TIME')
  return tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
end

-- how long each side's most recent match is remembered after it ended (s)
local MEETING_KEPT = 86400

-- The pool: available:webrtc holds every available user, and a set per
-- segment the same by segment (its name with '%' and ':' escaped, so no two
-- share a key), and a set per segment and interest; a user's seat says its
-- segment and interests (JSON), kept until it withdraws.
local function segment_key(segment)
  return K.segment_pool((segment:gsub('%%', '%%25'):gsub(':', '%%3A')))
end

local function interest_key(segment, interest)
  return K.interest_pool((segment:gsub('%%', '%%25'):gsub(':', '%%3A')), interest)
end

-- the sets a user is in while available: its segment's, and its interests'
local function seat_sets(user)
  local seat = redis.call('HMGET', K.seat(user), 'segment', 'interests')
  local segment = seat[1] or 'default'
  local sets = {segment_key(segment)}
  for _, interest in ipairs(cjson.decode(seat[2] or '[]')) do
    sets[#sets + 1] = interest_key(segment, interest)
  end
  return sets
end

local function pool_enter(user)
  redis.call('SADD', K.pool(), user)
  for _, set in ipairs(seat_sets(user)) do redis.call('SADD', set, user) end
end

local function pool_exit(user)
  redis.call('SREM', K.pool(), user)
  for _, set in ipairs(seat_sets(user)) do redis.call('SREM', set, user) end
end

-- there while the two users' last match ended less than --rematch-after ago
local function met_key(a, b)
  if a > b then return K.met(b, a) end
  return K.met(a, b)
end

-- A user whose connection was lost has its match held until a deadline
-- (K.held, by score) for it to come back.
local function held(user)
  return redis.call('ZSCORE', K.held(), user) ~= false
end

local function end_match(user)
  local match = redis.call('HMGET', K.match(user), 'peer', 'at', 'rematch', 'common')
  local peer = match[1]
  if not peer then return false end
  if tonumber(match[3] or '0') > 0 then redis.call('SET', met_key(user, peer), 1, 'PX', match[3]) end
  redis.call('DEL', K.match(user), K.match(peer))
  redis.call('ZREM', K.held(), user, peer)
  local ended = string.format('%d', now_ms())
  for _, side in ipairs({user, peer}) do
    if redis.call('SREM', K.waiting(), side) == 1 then pool_enter(side) end
    local meeting = K.meeting(side)
    redis.call('HSET', meeting, 'peer', side == user and peer or user, 'at', match[2] or '0',
               'ended', ended, 'common', match[4] or '[]')
    redis.call('EXPIRE', meeting, MEETING_KEPT)
  end
  return peer
end

-- how long a user's client address is kept after its session ended (s)
local ADDRESS_KEPT = 86400

-- The session's end: out of its rooms and the pool; its match ended, or
-- held for hold_ms (its former partner, or false).
local function end_session(user, hold_ms)
  local rooms = K.user_rooms(user)
  for _, room in ipairs(redis.call('SMEMBERS', rooms)) do
    local members = K.room_members(room)
    redis.call('SREM', members, user)
    if redis.call('SCARD', members) == 0 then redis.call('ZREM', K.rooms(), room) end
    redis.call('ZREM', K.room_live(room), user)
  end
  redis.call('DEL', rooms)
  redis.call('EXPIRE', K.address(user), ADDRESS_KEPT)
  pool_exit(user)
  redis.call('SREM', K.waiting(), user)
  redis.call('DEL', K.seat(user))
  if (hold_ms or 0) > 0 and redis.call('EXISTS', K.match(user)) == 1 then
    redis.call('ZADD', K.held(), now_ms() + hold_ms, user)
    return false
  end
  return end_match(user)
end

-- whether either of the two users blocks the other
local function blocked(a, b)
  return redis.call('SISMEMBER', K.blocks(a), b) == 1
    or redis.call('SISMEMBER', K.blocks(b), a) == 1
end
