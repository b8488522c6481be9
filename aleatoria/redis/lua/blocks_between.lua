-- uses: library
-- ARGV[2], [3] two users: 1 if either blocks the other, else 0.
if blocked(ARGV[2], ARGV[3]) then return 1 end
return 0
