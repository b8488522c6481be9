-- uses: library
-- Clean up after daemons that died without a word (never this one, ARGV[2];
-- their users' matches held for ARGV[3] ms):
-- for each of their users, {user, live partner or '', rooms...}, for the
-- partners and the rooms' members to hear of it. Only a live daemon reaps:
-- if this one's heartbeat lapsed too, Redis or the daemon stalled, and the
-- others may be as alive as it is.
local reaped = {}
if not live(ARGV[2]) then return reaped end
for _, node in ipairs(redis.call('SMEMBERS', K.nodes())) do
  if node ~= ARGV[2] and not live(node) then
    local users = K.node_users(node)
    for _, user in ipairs(redis.call('SMEMBERS', users)) do
      if redis.call('GET', K.presence(user)) == node then
        redis.call('DEL', K.presence(user))
        local entry = {user, ''}
        for _, room in ipairs(redis.call('SMEMBERS', K.user_rooms(user))) do
          entry[#entry + 1] = room
        end
        local peer = end_session(user, tonumber(ARGV[3]))
        if peer and present(peer) then entry[2] = peer end
        reaped[#reaped + 1] = entry
      end
    end
    redis.call('DEL', users)
    redis.call('SREM', K.nodes(), node)
  end
end
return reaped
