-- uses: library
-- ARGV[2] user, [3] peer: 1 if they were matched (and are no more), else 0.
if redis.call('HGET', K.match(ARGV[2]), 'peer') ~= ARGV[3] then return 0 end
end_match(ARGV[2])
return 1
