"""
The Lua scripts of the Redis store and of the peers: every step that
touches more than one key runs as one script, atomic, in one round trip.

The scripts after L{LIBRARY} take the key prefix as ARGV[1] and build their
keys from it: they touch keys that depend on what they read (a user's
rooms, a match's peer), which a Redis Cluster would refuse. Aleatoria needs
one Redis or Valkey primary (with replicas and failover if you like).
"""

SAVE_ROOM_MESSAGE = """
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(tonumber(ARGV[3]) + 1))
redis.call('EXPIRE', KEYS[1], ARGV[4])
"""

SAVE_DIRECT_MESSAGE = """
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1)
redis.call('EXPIRE', KEYS[1], ARGV[3])
"""

JOIN = """
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[3], 0, ARGV[2])
"""

LEAVE = """
redis.call('SREM', KEYS[1], ARGV[1])
redis.call('SREM', KEYS[2], ARGV[2])
if redis.call('SCARD', KEYS[1]) == 0 then redis.call('ZREM', KEYS[3], ARGV[2]) end
"""

LIBRARY = """
local P = ARGV[1]
local POOL = P .. 'available:webrtc'
local WAITING = P .. 'available:waiting'

-- A daemon is live while its heartbeat lasts; it hears posts only while its
-- pub/sub connection is subscribed (the kernel closes that one the moment
-- the process dies, kill -9 included).
local function live(node)
  return redis.call('EXISTS', P .. 'node:' .. node) == 1
end

local function listening(node)
  return redis.call('PUBSUB', 'NUMSUB', P .. 'aleatoria:node:' .. node)[2] > 0
end

-- present: its daemon lives; alive: and hears what is posted to it.
local function present(user)
  local node = redis.call('GET', P .. 'presence:' .. user)
  return node and live(node)
end

local function alive(user)
  local node = redis.call('GET', P .. 'presence:' .. user)
  return node and live(node) and listening(node)
end

local function end_match(user)
  local peer = redis.call('HGET', P .. 'match:' .. user, 'peer')
  if not peer then return false end
  redis.call('DEL', P .. 'match:' .. user, P .. 'match:' .. peer)
  for _, side in ipairs({user, peer}) do
    if redis.call('SREM', WAITING, side) == 1 then redis.call('SADD', POOL, side) end
  end
  return peer
end

-- The rooms that have members, by name (for the server API's listing).
local ROOMS = P .. 'rooms'

local function end_session(user)
  local rooms = P .. 'user:rooms:' .. user
  for _, room in ipairs(redis.call('SMEMBERS', rooms)) do
    local members = P .. 'room:members:' .. room
    redis.call('SREM', members, user)
    if redis.call('SCARD', members) == 0 then redis.call('ZREM', ROOMS, room) end
  end
  redis.call('DEL', rooms)
  redis.call('SREM', POOL, user)
  redis.call('SREM', WAITING, user)
  return end_match(user)
end
"""

CLAIM = LIBRARY + """
local user, me = ARGV[2], ARGV[3]
local previous = redis.call('GET', P .. 'presence:' .. user)
local ended = {previous, false}
if previous then
  for _, room in ipairs(redis.call('SMEMBERS', P .. 'user:rooms:' .. user)) do
    ended[#ended + 1] = room
  end
  ended[2] = end_session(user)
  redis.call('SREM', P .. 'node:' .. previous .. ':users', user)
end
redis.call('SET', P .. 'presence:' .. user, me)
redis.call('SADD', P .. 'node:' .. me .. ':users', user)
table.insert(ended, 3, redis.call('PTTL', P .. 'budget:' .. user))
redis.call('DEL', P .. 'budget:' .. user)
return ended
"""

RELEASE = LIBRARY + """
local user, me, rested_in = ARGV[2], ARGV[3], tonumber(ARGV[4])
if redis.call('GET', P .. 'presence:' .. user) ~= me then return false end
if rested_in > 0 then
  redis.call('SET', P .. 'budget:' .. user, 1, 'PX', rested_in)
end
redis.call('DEL', P .. 'presence:' .. user)
redis.call('SREM', P .. 'node:' .. me .. ':users', user)
return end_session(user)
"""

OFFER = LIBRARY + """
local user = ARGV[2]
if redis.call('EXISTS', P .. 'match:' .. user) == 1 then
  redis.call('SADD', WAITING, user)
else
  redis.call('SADD', POOL, user)
end
"""

WITHDRAW = LIBRARY + """
redis.call('SREM', POOL, ARGV[2])
redis.call('SREM', WAITING, ARGV[2])
"""

PAIR = LIBRARY + """
local requester, skipped = ARGV[2], ARGV[3]
local ended = false
local current = redis.call('HMGET', P .. 'match:' .. requester, 'peer', 'role')
if current[1] then
  if current[1] ~= skipped and present(current[1]) then
    return {'current', current[1], current[2], false}
  end
  -- a skip, or a partner whose daemon died: that match is over
  ended = end_match(requester)
end
-- SRANDMEMBER returns a small set whole and in a fixed order: start the
-- scan at a random offset from the caller (ARGV[4]).
for attempt = 1, 16 do
  local sample = redis.call('SRANDMEMBER', POOL, 4)
  for i = 1, #sample do
    local user = sample[(tonumber(ARGV[4]) + i) % #sample + 1]
    if user ~= requester and user ~= skipped then
      if alive(user) then
        redis.call('SREM', POOL, requester, user)
        redis.call('SREM', WAITING, requester, user)
        redis.call('HSET', P .. 'match:' .. requester, 'peer', user, 'role', 'impolite')
        redis.call('HSET', P .. 'match:' .. user, 'peer', requester, 'role', 'polite')
        return {'fresh', user, 'impolite', ended}
      elseif not present(user) then
        redis.call('SREM', POOL, user)
      end
    end
  end
  if #sample < 4 then break end
end
return {'none', false, false, ended}
"""

HANG_UP = LIBRARY + """
if redis.call('HGET', P .. 'match:' .. ARGV[2], 'peer') ~= ARGV[3] then return 0 end
end_match(ARGV[2])
return 1
"""

ROOM_MEMBERS = LIBRARY + """
local members = {}
for _, user in ipairs(redis.call('SMEMBERS', P .. 'room:members:' .. ARGV[2])) do
  if alive(user) then members[#members + 1] = user end
end
return members
"""

ROOMS_PAGE = LIBRARY + """
-- ARGV[2] the page size, ARGV[3] the room after which it starts ('' from
-- the first). {rooms in all, room, members, room, members...}
local low = ARGV[3] == '' and '-' or '(' .. ARGV[3]
local page = {redis.call('ZCARD', ROOMS)}
for _, room in ipairs(redis.call('ZRANGEBYLEX', ROOMS, low, '+', 'LIMIT', 0, ARGV[2])) do
  page[#page + 1] = room
  page[#page + 1] = redis.call('SCARD', P .. 'room:members:' .. room)
end
return page
"""

WHEREABOUTS = LIBRARY + """
local node = redis.call('GET', P .. 'presence:' .. ARGV[2])
if node and live(node) then return node end
return false
"""

DAEMONS = LIBRARY + """
-- Each live daemon's load as of its last heartbeat: {node, connections, rooms, ...}
local found = {}
for _, node in ipairs(redis.call('SMEMBERS', P .. 'nodes')) do
  if live(node) then
    local load = redis.call('HMGET', P .. 'node:' .. node .. ':stats', 'connections', 'rooms')
    found[#found + 1] = node
    found[#found + 1] = tonumber(load[1]) or 0
    found[#found + 1] = tonumber(load[2]) or 0
  end
end
return found
"""

HEARTBEAT = """
-- ARGV[2] this daemon, ARGV[3] the heartbeat's life in ms, ARGV[4] and [5]
-- its connections and rooms. 0 when the heartbeat had lapsed: other daemons
-- may have reaped our sessions.
local node = ARGV[1] .. 'node:' .. ARGV[2]
local was = redis.call('SET', node, '1', 'PX', ARGV[3], 'GET')
redis.call('SADD', ARGV[1] .. 'nodes', ARGV[2])
redis.call('HSET', node .. ':stats', 'connections', ARGV[4], 'rooms', ARGV[5])
redis.call('PEXPIRE', node .. ':stats', ARGV[3])
return was and 1 or 0
"""

REAP = LIBRARY + """
-- Clean up after daemons that died without a word (never this one, ARGV[2]):
-- for each of their users, {user, live partner or '', rooms...}, for the
-- partners and the rooms' members to hear of it. Only a live daemon reaps:
-- if this one's heartbeat lapsed too, Redis or the daemon stalled, and the
-- others may be as alive as it is.
local reaped = {}
if not live(ARGV[2]) then return reaped end
for _, node in ipairs(redis.call('SMEMBERS', P .. 'nodes')) do
  if node ~= ARGV[2] and not live(node) then
    local users = P .. 'node:' .. node .. ':users'
    for _, user in ipairs(redis.call('SMEMBERS', users)) do
      if redis.call('GET', P .. 'presence:' .. user) == node then
        redis.call('DEL', P .. 'presence:' .. user)
        local entry = {user, ''}
        for _, room in ipairs(redis.call('SMEMBERS', P .. 'user:rooms:' .. user)) do
          entry[#entry + 1] = room
        end
        local peer = end_session(user)
        if peer and present(peer) then entry[2] = peer end
        reaped[#reaped + 1] = entry
      end
    end
    redis.call('DEL', users)
    redis.call('SREM', P .. 'nodes', node)
  end
end
return reaped
"""

PUBLISH_TO_OWNER = LIBRARY + """
-- ARGV[2] a user, ARGV[3] the channel prefix, ARGV[4] the post. 1: posted
-- to the user's daemon; 0: no live daemon has the user; -1: its daemon
-- lives but nothing heard the post.
local owner = redis.call('GET', P .. 'presence:' .. ARGV[2])
if not owner or not live(owner) then return 0 end
if redis.call('PUBLISH', ARGV[3] .. owner, ARGV[4]) == 0 then return -1 end
return 1
"""

PUBLISH_TO_ALL = LIBRARY + """
-- ARGV[2] the channel, ARGV[3] the post. The number of live daemons that
-- are not listening, and so miss it.
local deaf = 0
for _, node in ipairs(redis.call('SMEMBERS', P .. 'nodes')) do
  if live(node) and not listening(node) then deaf = deaf + 1 end
end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return deaf
"""

RESYNC = LIBRARY + """
-- After an outage: ARGV[2] this daemon, ARGV[3] JSON {user: [rooms]} of the
-- users connected here now, ARGV[4] the heartbeat's life in ms (renewed
-- first, so that no daemon reaps what this one is restoring). Sessions that
-- ended meanwhile are ended; the users still here are ours again (unless
-- another daemon claimed them: those are returned, their connections here
-- are stale).
local me, here = ARGV[2], cjson.decode(ARGV[3])
local mine = P .. 'node:' .. me .. ':users'
redis.call('SET', P .. 'node:' .. me, '1', 'PX', ARGV[4])
redis.call('SADD', P .. 'nodes', me)
for _, user in ipairs(redis.call('SMEMBERS', mine)) do
  if here[user] == nil then
    redis.call('SREM', mine, user)
    if redis.call('GET', P .. 'presence:' .. user) == me then
      redis.call('DEL', P .. 'presence:' .. user)
      end_session(user)
    end
  end
end
local stale = {}
for user, rooms in pairs(here) do
  local owner = redis.call('GET', P .. 'presence:' .. user)
  if owner and owner ~= me and live(owner) then
    stale[#stale + 1] = user
  else
    redis.call('SET', P .. 'presence:' .. user, me)
    redis.call('SADD', mine, user)
    for _, room in ipairs(rooms) do
      redis.call('SADD', P .. 'room:members:' .. room, user)
      redis.call('SADD', P .. 'user:rooms:' .. user, room)
      redis.call('ZADD', ROOMS, 0, room)
    end
  end
end
return stale
"""

LEAVE_PEERS = """
redis.call('DEL', ARGV[1] .. 'node:' .. ARGV[2], ARGV[1] .. 'node:' .. ARGV[2] .. ':users',
           ARGV[1] .. 'node:' .. ARGV[2] .. ':stats')
redis.call('SREM', ARGV[1] .. 'nodes', ARGV[2])
"""

SCRIPTS = (SAVE_ROOM_MESSAGE, SAVE_DIRECT_MESSAGE, JOIN, LEAVE, CLAIM, RELEASE,
            OFFER, WITHDRAW, PAIR, HANG_UP, ROOM_MEMBERS, ROOMS_PAGE, WHEREABOUTS, DAEMONS,
            HEARTBEAT, REAP,
            PUBLISH_TO_OWNER, PUBLISH_TO_ALL, RESYNC, LEAVE_PEERS)
