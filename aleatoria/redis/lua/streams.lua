-- Streams: a room's messages, and a user's inbox (every direct message to
-- or from the user). Each message is numbered in its stream -- "offset",
-- from 1 -- and carries the stream's "epoch", which is new whenever the
-- stream begins again (its keys expired, or were flushed, or a failover
-- may have lost its tail). What a stream keeps, and what daemons are
-- told, is made of parts the daemon sends, the offset and epoch between
-- them: no script reads or writes JSON.
--
-- An epoch is "<era>.<random>": the era names the primary that wrote it
-- (its run and its replication history, see link.py). A stream of another
-- era was written on a primary that has since restarted or been replaced,
-- and writes it acknowledged may be gone: its offsets must not be dealt
-- out again under the same epoch, nor a replay claim to be whole. The
-- daemon sends a fresh epoch of the current era with every call that may
-- begin a stream anew.

local function era(epoch)
  return string.match(epoch, '^[^.]*%.') or ''
end

-- The stream's epoch, begun afresh (its offsets from 1 again) when it has
-- none or one of another era than the fresh one; false when it has none
-- and "create" is false. Its keys keep their time to live.
local function current_epoch(counter, epochs, fresh, create)
  local epoch = redis.call('GET', epochs)
  if epoch and era(epoch) == era(fresh) and era(epoch) ~= '' then return epoch end
  if not epoch and not create then return false end
  redis.call('SET', epochs, fresh, 'KEEPTTL')
  redis.call('DEL', counter)
  return fresh
end

local function next_place(counter, epochs, fresh)
  local epoch = current_epoch(counter, epochs, fresh, true)
  return redis.call('INCR', counter), epoch
end

-- Whether a client at offset "from" of epoch "claimed" may have all it
-- missed of a stream (epoch, last offset) that keeps "size" messages: only
-- then is anything read. Offset 0 asks for all there is, of any epoch.
local function replayable(from, claimed, epoch, last, size)
  return (from == 0 or claimed == epoch) and from < last and last - from <= size
end

-- Publish post to the daemon of user: 1 heard, 0 the user is on no live
-- daemon, -1 its daemon lives but did not hear.
local function to_owner(user, post)
  local owner = redis.call('GET', K.presence(user))
  if not owner or not live(owner) then return 0 end
  if redis.call('PUBLISH', K.node_channel(owner), post) == 0 then return -1 end
  return 1
end

-- Daemons that are not listening, and so miss what all are told: live
-- ones, and those whose heartbeat lapsed but are not reaped yet -- after an
-- outage or a failover longer than --node-ttl every daemon's has, and its
-- users are still there until it comes back (or is reaped, if dead).
local function deaf()
  local count = 0
  for _, node in ipairs(redis.call('SMEMBERS', K.nodes())) do
    if not listening(node) then count = count + 1 end
  end
  return count
end

-- The streams by their last write (ms): 'room:' .. room, 'dm:..' (a pair's
-- history key, unprefixed), 'inbox:' .. id(user). Past the history budget
-- the oldest are evicted (evict.lua); those expired leave at every write.
local function written(ttl, streams)
  local ms = now_ms()
  for _, stream in ipairs(streams) do redis.call('ZADD', K.streams(), ms, stream) end
  redis.call('ZREMRANGEBYSCORE', K.streams(), '-inf', '(' .. (ms - tonumber(ttl) * 1000))
end

local function room_keys(room)
  return K.room_messages(room), K.room_offset(room), K.room_epoch(room), K.room_times(room)
end

local function inbox_keys(user)
  return K.inbox(user), K.inbox_offset(user), K.inbox_epoch(user), K.inbox_latest(user),
    K.inbox_conversations(user), K.inbox_unread(user)
end
