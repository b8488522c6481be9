-- uses: library
-- ARGV[2] user: the live daemon that has it, or false.
local node = redis.call('GET', K.presence(ARGV[2]))
if node and live(node) then return node end
return false
