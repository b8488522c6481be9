-- uses: library streams
-- Keep a direct message in its pair's history, number it into each party's
-- inbox (its conversations and unread counts too) and tell each party's
-- daemon its copy, in one step.
-- ARGV[2] sender ('system' has no inbox), [3] recipient, [4] [5] [6] what
-- an inbox keeps: head .. offset .. middle .. epoch .. tail, [7] history
-- size, [8] ttl, [9] a fresh epoch, [10] the pair's history key, [11]
-- what it keeps, up to the offsets: [11] .. [12] .. sender's offset ..
-- [13] .. recipient's offset .. [14] ([12] '' for 'system'), [15] what
-- the posts begin with ('': tell nobody), [16] what they end with: head ..
-- offset .. ' ' .. epoch .. ' ' .. user .. end.
-- {sender offset, epoch, recipient offset, epoch, delivery (see to_owner)},
-- or {'blocked'} -- nothing kept -- when either party blocks the other.
local sender, recipient, size, ttl = ARGV[2], ARGV[3], tonumber(ARGV[7]), ARGV[8]
if blocked(sender, recipient) then return {'blocked'} end
local reply = {0, '', 0, '', 0}

local function add(user, partner, incoming, at)
  local stream, counter, epochs, latest, conversations, unread = inbox_keys(user)
  local offset, epoch = next_place(counter, epochs, ARGV[9])
  local kept = ARGV[4] .. offset .. ARGV[5] .. epoch .. ARGV[6]
  redis.call('ZADD', stream, offset, kept)
  redis.call('ZREMRANGEBYRANK', stream, 0, -(size + 1))
  redis.call('HSET', latest, partner, kept)
  redis.call('ZADD', conversations, offset, partner)
  if incoming then
    redis.call('HINCRBY', unread, partner, 1)
    local heard = K.inbox_incoming(user, partner)
    redis.call('ZADD', heard, offset, offset)
    redis.call('ZREMRANGEBYRANK', heard, 0, -(size + 1))
    redis.call('EXPIRE', heard, ttl)
  end
  local old = redis.call('ZRANGE', conversations, 0, -(size + 1))
  if #old > 0 then
    redis.call('ZREMRANGEBYRANK', conversations, 0, -(size + 1))
    redis.call('HDEL', latest, unpack(old))
    redis.call('HDEL', unread, unpack(old))
    for _, gone in ipairs(old) do redis.call('DEL', K.inbox_incoming(user, gone)) end
  end
  for _, key in ipairs({stream, counter, epochs, latest, conversations, unread}) do
    redis.call('EXPIRE', key, ttl)
  end
  reply[at], reply[at + 1] = offset, epoch
end

local has_inbox = ARGV[12] ~= ''
if has_inbox then add(sender, recipient, false, 1) end
add(recipient, sender, true, 3)
local pair = ARGV[10]
local entry = ARGV[11] .. (has_inbox and ARGV[12] .. reply[1] or '') .. ARGV[13] .. reply[3]
  .. ARGV[14]
redis.call('RPUSH', pair, entry)
redis.call('LTRIM', pair, -size, -1)
redis.call('EXPIRE', pair, ttl)
written(ttl, {string.sub(pair, #P + 1), 'inbox:' .. id(recipient),
              has_inbox and 'inbox:' .. id(sender) or nil})
if ARGV[15] ~= '' then
  local function post(user, at)
    return ARGV[15] .. reply[at] .. ' ' .. reply[at + 1] .. ' ' .. user .. ARGV[16]
  end
  reply[5] = to_owner(recipient, post(recipient, 3))
  if has_inbox then to_owner(sender, post(sender, 1)) end
end
return reply
