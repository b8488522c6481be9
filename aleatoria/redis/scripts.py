"""
The Lua scripts of the Redis store and of the peers: every step that
touches more than one key runs as one script, atomic, in one round trip.

The scripts after L{LIBRARY} take the key prefix as ARGV[1] and build their
keys from it: they touch keys that depend on what they read (a user's
rooms, a match's peer), which a Redis Cluster would refuse. Aleatoria needs
one Redis or Valkey primary (with replicas and failover if you like).
"""

JOIN = """
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[3], 0, ARGV[2])
-- the live members, by id: those with a session (KEYS[5], its presence)
if redis.call('EXISTS', KEYS[5]) == 1 then redis.call('ZADD', KEYS[4], 0, ARGV[1]) end
"""

LEAVE = """
redis.call('SREM', KEYS[1], ARGV[1])
redis.call('SREM', KEYS[2], ARGV[2])
if redis.call('SCARD', KEYS[1]) == 0 then redis.call('ZREM', KEYS[3], ARGV[2]) end
redis.call('ZREM', KEYS[4], ARGV[1])
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
    redis.call('ZREM', P .. 'room:live:' .. room, user)
  end
  redis.call('DEL', rooms)
  redis.call('SREM', POOL, user)
  redis.call('SREM', WAITING, user)
  return end_match(user)
end
"""

STREAMS = LIBRARY + """
-- Streams: a room's messages, and a user's inbox (every direct message to
-- or from the user). Each message is numbered in its stream -- "offset",
-- from 1 -- and carries the stream's "epoch", which is new whenever the
-- stream begins again (its keys expired, or were flushed).

local function with_place(envelope, offset, epoch)
  return string.sub(envelope, 1, -2) .. ',"offset":' .. offset .. ',"epoch":"' .. epoch .. '"}'
end

local function next_place(counter, epochs, fresh)
  local epoch = redis.call('GET', epochs)
  if not epoch then
    epoch = fresh
    redis.call('SET', epochs, epoch)
    redis.call('DEL', counter)
  end
  return redis.call('INCR', counter), epoch
end

-- ':' inside an id is written %3A in the keys that end with it
local function id(user)
  return (string.gsub(user, ':', '%%3A'))
end

local function inbox_keys(user)
  local i = id(user)
  return P .. 'inbox:' .. i, P .. 'inbox:offset:' .. i, P .. 'inbox:epoch:' .. i,
    P .. 'inbox:latest:' .. i, P .. 'inbox:conversations:' .. i, P .. 'inbox:unread:' .. i
end

-- The offsets, in user's inbox, of partner's messages not marked read:
-- what makes marking read cost what it marks.
local function incoming_key(user, partner)
  return P .. 'inbox:incoming:' .. id(user) .. ':' .. id(partner)
end

-- Whether a client at offset "from" of epoch "claimed" may have all it
-- missed of a stream (epoch, last offset) that keeps "size" messages: only
-- then is anything read. Offset 0 asks for all there is, of any epoch.
local function replayable(from, claimed, epoch, last, size)
  return (from == 0 or claimed == epoch) and from < last and last - from <= size
end

-- Publish post (before .. message .. after) to the daemon of user: 1 heard,
-- 0 the user is on no live daemon, -1 its daemon lives but did not hear.
local function to_owner(channels, user, post)
  local owner = redis.call('GET', P .. 'presence:' .. user)
  if not owner or not live(owner) then return 0 end
  if redis.call('PUBLISH', channels .. owner, post) == 0 then return -1 end
  return 1
end

-- The streams by their last write (ms): 'room:' .. room, 'dm:..' (a pair's
-- history key), 'inbox:' .. id(user). Past the history budget the oldest
-- are evicted (EVICT); those expired leave at every write.
local WRITTEN = P .. 'streams'

local function now_ms()
  local now = redis.call('TIME')
  return tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
end

local function written(ttl, streams)
  local ms = now_ms()
  for _, stream in ipairs(streams) do redis.call('ZADD', WRITTEN, ms, stream) end
  redis.call('ZREMRANGEBYSCORE', WRITTEN, '-inf', '(' .. (ms - tonumber(ttl) * 1000))
end

local function room_keys(room)
  return P .. 'room:messages:' .. room, P .. 'room:offset:' .. room, P .. 'room:epoch:' .. room,
    P .. 'room:times:' .. room
end
"""

SAVE_ROOM = STREAMS + """
-- ARGV[2] room, [3] time (ns), [4] envelope, [5] history size, [6] ttl,
-- [7] a fresh epoch, [8] the channel to announce it on ('': none), [9] and
-- [10] what goes before and after the numbered message in the post.
-- {offset, epoch, live daemons not listening}
local room = ARGV[2]
local history = P .. 'room:messages:' .. room
local counter, epochs = P .. 'room:offset:' .. room, P .. 'room:epoch:' .. room
local offset, epoch = next_place(counter, epochs, ARGV[7])
local message = with_place(ARGV[4], offset, epoch)
redis.call('ZADD', history, ARGV[3], message)
redis.call('ZREMRANGEBYRANK', history, 0, -(tonumber(ARGV[5]) + 1))
-- each kept offset's time, for a replay to read only the gap's time range
local times = P .. 'room:times:' .. room
if offset == 1 then redis.call('DEL', times) end
redis.call('HSET', times, offset, ARGV[3])
redis.call('HDEL', times, offset - tonumber(ARGV[5]))
for _, key in ipairs({history, counter, epochs, times}) do redis.call('EXPIRE', key, ARGV[6]) end
written(ARGV[6], {'room:' .. room})
local deaf = 0
if ARGV[8] ~= '' then
  for _, node in ipairs(redis.call('SMEMBERS', P .. 'nodes')) do
    if live(node) and not listening(node) then deaf = deaf + 1 end
  end
  redis.call('PUBLISH', ARGV[8], ARGV[9] .. message .. ARGV[10])
end
return {offset, epoch, deaf}
"""

SAVE_DIRECT = STREAMS + """
-- ARGV[2] sender ('system' has no inbox), [3] recipient, [4] envelope,
-- [5] history size, [6] ttl, [7] a fresh epoch, [8] the pair's history key,
-- [9] the daemons' channel prefix ('': announce nothing), [10] and [11]
-- what goes before the message in the posts to the sender and to the
-- recipient, [12] what goes after.
-- {sender offset, epoch, recipient offset, epoch, delivery (see to_owner)}
local sender, recipient, size, ttl = ARGV[2], ARGV[3], tonumber(ARGV[5]), ARGV[6]
local reply = {0, '', 0, '', 0}
local positions = {}

local function add(user, partner, incoming, at)
  local stream, counter, epochs, latest, conversations, unread = inbox_keys(user)
  local offset, epoch = next_place(counter, epochs, ARGV[7])
  local message = with_place(ARGV[4], offset, epoch)
  redis.call('ZADD', stream, offset, message)
  redis.call('ZREMRANGEBYRANK', stream, 0, -(size + 1))
  redis.call('HSET', latest, partner, message)
  redis.call('ZADD', conversations, offset, partner)
  if incoming then
    redis.call('HINCRBY', unread, partner, 1)
    local heard = incoming_key(user, partner)
    redis.call('ZADD', heard, offset, offset)
    redis.call('ZREMRANGEBYRANK', heard, 0, -(size + 1))
    redis.call('EXPIRE', heard, ttl)
  end
  local old = redis.call('ZRANGE', conversations, 0, -(size + 1))
  if #old > 0 then
    redis.call('ZREMRANGEBYRANK', conversations, 0, -(size + 1))
    redis.call('HDEL', latest, unpack(old))
    redis.call('HDEL', unread, unpack(old))
    for _, gone in ipairs(old) do redis.call('DEL', incoming_key(user, gone)) end
  end
  for _, key in ipairs({stream, counter, epochs, latest, conversations, unread}) do
    redis.call('EXPIRE', key, ttl)
  end
  reply[at], reply[at + 1] = offset, epoch
  positions[#positions + 1] = '"' .. user .. '":' .. offset
  return message
end

local to_sender = sender ~= 'system' and add(sender, recipient, false, 1)
local to_recipient = add(recipient, sender, true, 3)
local kept = string.sub(ARGV[4], 1, -2) .. ',"positions":{' .. table.concat(positions, ',') .. '}}'
redis.call('RPUSH', ARGV[8], kept)
redis.call('LTRIM', ARGV[8], -size, -1)
redis.call('EXPIRE', ARGV[8], ttl)
written(ttl, {string.sub(ARGV[8], #P + 1), 'inbox:' .. id(recipient),
              to_sender and 'inbox:' .. id(sender) or nil})
if ARGV[9] ~= '' then
  reply[5] = to_owner(ARGV[9], recipient, ARGV[11] .. to_recipient .. ARGV[12])
  if to_sender then to_owner(ARGV[9], sender, ARGV[10] .. to_sender .. ARGV[12]) end
end
return reply
"""

EVICT = STREAMS + """
-- ARGV[2] the budget (bytes of Redis's used_memory), [3] the most streams
-- to evict. Past the budget, evict the streams written longest ago -- every
-- key of each, unlinked (freed in the background) -- until what they used
-- (MEMORY USAGE: an estimate) makes up the excess. {used_memory, less what
-- was evicted; rooms, conversations, inboxes evicted; streams left; ms
-- since the newest evicted was written}
local info = redis.call('INFO', 'memory')
local used = tonumber(string.match(info, 'used_memory:(%d+)'))
-- while Redis frees what the last eviction unlinked, what it left instead
local WEIGHT = P .. 'streams:weight'
if tonumber(string.match(info, 'lazyfree_pending_objects:(%d+)') or '0') > 0 then
  used = math.min(used, tonumber(redis.call('GET', WEIGHT) or used))
end
local budget = tonumber(ARGV[2])
local evicted, age = {room = 0, dm = 0, inbox = 0}, 0
if used > budget then
  local ms = now_ms()
  local oldest = redis.call('ZRANGE', WRITTEN, 0, tonumber(ARGV[3]) - 1, 'WITHSCORES')
  for i = 1, #oldest, 2 do
    local stream = oldest[i]
    local kind, name = string.match(stream, '^(%a+):(.*)$')
    local keys = {P .. stream}
    if kind == 'room' then keys = {room_keys(name)}
    elseif kind == 'inbox' then keys = {inbox_keys(name)} end
    for _, key in ipairs(keys) do
      used = used - (redis.call('MEMORY', 'USAGE', key) or 0)
    end
    redis.call('ZREM', WRITTEN, stream)
    if redis.call('UNLINK', unpack(keys)) > 0 then
      evicted[kind] = evicted[kind] + 1
      age = ms - tonumber(oldest[i + 1])
    end
    if used <= budget then break end
  end
  redis.call('SET', WEIGHT, used, 'PX', 1000)
end
return {used, evicted.room, evicted.dm, evicted.inbox, redis.call('ZCARD', WRITTEN), age}
"""

ROOM_SINCE = STREAMS + """
-- ARGV[2] room, [3] the client's offset, [4] its epoch, [5] messages kept
-- per room: {epoch, last offset} ({'', 0} for no stream), then -- only if
-- the client may have all it missed (see replayable) -- the lowest and
-- highest time of the messages after its offset: the range of the
-- history the daemon reads next (a plain ZRANGEBYSCORE: a message's way
-- through Lua costs ten times its way out of Redis). A missing time (the
-- message trimmed, or kept before times were) answers without a range.
local room, from, size = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[5])
local epoch = redis.call('GET', P .. 'room:epoch:' .. room)
if not epoch then return {'', 0} end
local last = tonumber(redis.call('GET', P .. 'room:offset:' .. room) or '0')
local reply = {epoch, last}
if not replayable(from, ARGV[4], epoch, last, size) then return reply end
local times, low, high, lowest, highest = P .. 'room:times:' .. room
for first = from + 1, last, 1000 do
  local offsets = {}
  for offset = first, math.min(first + 999, last) do offsets[#offsets + 1] = offset end
  for _, time in ipairs(redis.call('HMGET', times, unpack(offsets))) do
    if not time then return reply end
    local at = tonumber(time)
    if not lowest or at < lowest then low, lowest = time, at end
    if not highest or at > highest then high, highest = time, at end
  end
end
return {epoch, last, low, high}
"""

INBOX_SINCE = STREAMS + """
-- ARGV[2] user, [3] the client's offset, [4] its epoch, [5] messages kept
-- per inbox: {epoch, last offset}, then 1 if the client may have all it
-- missed (see replayable): the daemon reads the messages after its offset
-- itself (see ROOM_SINCE).
local _, counter, epochs = inbox_keys(ARGV[2])
local epoch = redis.call('GET', epochs)
if not epoch then return {'', 0} end
local last = tonumber(redis.call('GET', counter) or '0')
if not replayable(tonumber(ARGV[3]), ARGV[4], epoch, last, tonumber(ARGV[5])) then
  return {epoch, last}
end
return {epoch, last, 1}
"""

CONVERSATIONS = STREAMS + """
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
"""

MARK_READ = STREAMS + """
-- ARGV[2] user, [3] partner, [4] read up to this offset (of the user's
-- inbox). The unread count left: the partner's messages after the offset
-- (never more than it was), from the index of their offsets. Messages
-- kept before that index was have none: they count read only once read
-- up to the conversation's last message.
local user, partner = ARGV[2], ARGV[3]
local _, _, _, _, conversations, unread = inbox_keys(user)
local before = tonumber(redis.call('HGET', unread, partner) or '0')
if before == 0 then return 0 end
local heard, count = incoming_key(user, partner), before
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
"""

DIRECT_MESSAGES = STREAMS + """
-- ARGV[2] the reader, [3] the pair's history key, [4] how many:
-- {the reader's inbox epoch, the last messages, oldest first}
local _, _, epochs = inbox_keys(ARGV[2])
local reply = {redis.call('GET', epochs) or ''}
for _, entry in ipairs(redis.call('LRANGE', ARGV[3], -tonumber(ARGV[4]), -1)) do
  reply[#reply + 1] = entry
end
return reply
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

ROOM_MEMBERS = """
-- KEYS[1] a room's live members; ARGV[1] the page size, ARGV[2] the member
-- after which it starts ('' from the first). {members in all, then the
-- page and the first member of the next one, if any}
local low = ARGV[2] == '' and '-' or '(' .. ARGV[2]
local page = redis.call('ZRANGEBYLEX', KEYS[1], low, '+', 'LIMIT', 0, tonumber(ARGV[1]) + 1)
table.insert(page, 1, redis.call('ZCARD', KEYS[1]))
return page
"""

ROOMS_PAGE = LIBRARY + """
-- ARGV[2] the page size, ARGV[3] the room after which it starts ('' from
-- the first). {rooms in all, room, members, room, members...}
local low = ARGV[3] == '' and '-' or '(' .. ARGV[3]
local page = {redis.call('ZCARD', ROOMS)}
for _, room in ipairs(redis.call('ZRANGEBYLEX', ROOMS, low, '+', 'LIMIT', 0, ARGV[2])) do
  page[#page + 1] = room
  page[#page + 1] = redis.call('ZCARD', P .. 'room:live:' .. room)
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
      redis.call('ZADD', P .. 'room:live:' .. room, 0, user)
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

SCRIPTS = (SAVE_ROOM, SAVE_DIRECT, EVICT, ROOM_SINCE, INBOX_SINCE, CONVERSATIONS, MARK_READ,
           DIRECT_MESSAGES, JOIN, LEAVE, CLAIM, RELEASE, OFFER, WITHDRAW, PAIR, HANG_UP,
           ROOM_MEMBERS, ROOMS_PAGE, WHEREABOUTS, DAEMONS, HEARTBEAT, REAP, PUBLISH_TO_OWNER,
           PUBLISH_TO_ALL, RESYNC, LEAVE_PEERS)
