-- uses: library
-- ARGV[2] user, [3] whom it blocks, [4] how many it may block at most
-- ('': no limit). Their match, if any, ends in the same step.
-- {added 1/0, refused as one too many 1/0, match ended 1/0}
local user, other, most = ARGV[2], ARGV[3], tonumber(ARGV[4])
local key = K.blocks(user)
local added = 0
if redis.call('SISMEMBER', key, other) == 0 then
  if most and redis.call('SCARD', key) >= most then return {0, 1, 0} end
  redis.call('SADD', key, other)
  added = 1
end
if redis.call('HGET', K.match(user), 'peer') == other then
  end_match(user)
  return {added, 0, 1}
end
return {added, 0, 0}
