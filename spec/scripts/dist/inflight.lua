-- Several ordered allreduces in flight, progressed with h:test() by ranks
-- that are out of step (spec/dist/inflight_spec.lua): each request has
-- several buckets, a later request is tested before an earlier one, and the
-- ranks' delays differ from round to round. Prints "r<rank> sums <...>".
local mtl = require "mtl"
local dist = mtl.dist
local rank, size = dist.rank(), dist.size()

local function busy(n) local x = 0 for i = 1, n do x = x + math.sin(i) end return x end

local sums = {}
for round = 1, 60 do
  local a, b = {}, {}
  for i = 1, 5 do a[i] = mtl.full({ 7000 * i }, rank + 1) end
  for i = 1, 3 do b[i] = mtl.full({ 9000 * i }, 10 * (rank + 1)) end
  local ha = dist.iallreduce_many(a, { bucket_bytes = 50000 })
  busy(((round + rank) % 5) * 3000)
  local hb = dist.iallreduce_many(b, { bucket_bytes = 40000 })
  while not hb:test() do busy((rank + 1) * 50) end -- the later request first
  while not ha:test() do end
  sums[#sums + 1] = a[5]:get(7000 * 5) + b[3]:get(1)
  local c = dist.allreduce(mtl.full({ 3 }, rank)) -- a blocking collective after them
  sums[#sums] = sums[#sums] + c:get(3)
end
io.write(string.format("r%d sums %s\n", rank, table.concat(sums, " ")))
