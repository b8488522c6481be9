-- ARGV[2] now (Unix ms): every ban in force, those that ended forgotten.
redis.call('ZREMRANGEBYSCORE', K.bans(), '-inf', ARGV[2])
local found = {}
for _, ban_id in ipairs(redis.call('ZRANGE', K.bans(), 0, -1)) do
  local ban = redis.call('GET', K.ban(ban_id))
  if ban then found[#found + 1] = ban end
end
return found
