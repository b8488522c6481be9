-- ARGV[2] how many, [3] the place after which to read ('': the newest).
-- The reports, newest first; places of reports that expired leave the index.
local limit, index = tonumber(ARGV[2]), K.reports()
local high = ARGV[3] == '' and '+' or '(' .. ARGV[3]
local found = {}
while #found < limit do
  local places = redis.call('ZREVRANGEBYLEX', index, high, '-', 'LIMIT', 0, limit - #found)
  if #places == 0 then break end
  for _, place in ipairs(places) do
    local report = redis.call('HGET', K.report(string.match(place, '|(%x+)$')), 'report')
    if report then found[#found + 1] = report else redis.call('ZREM', index, place) end
  end
  high = '(' .. places[#places]
end
return found
