-- The ordered allreduce on values whose float sum depends on the order:
-- rank r adds randn(n) * 10^r (seed 100 + r). spec/dist/ordered_spec.lua
-- runs it twice and compares with the sum in rank order computed in one
-- process. Output lines: "r<rank> <key> <values...>".
local mtl = require "mtl"
local dist = mtl.dist
local rank = dist.rank()
local n = tonumber(arg[1]) or 257

local function data()
  mtl.seed(100 + rank)
  return mtl.randn(n) * 10 ^ rank
end

-- 16 values a line
local function say(key, t)
  local parts = {}
  for i, v in ipairs(t:totable()) do
    parts[#parts + 1] = string.format("%.17g", v)
    if #parts == 16 or i == n then
      io.write(string.format("r%d %s %s\n", rank, key, table.concat(parts, " ")))
      io.stdout:flush()
      parts = {}
    end
  end
end

say("ordered", dist.allreduce(data(), "sum")) -- the default algorithm
say("mpi", dist.allreduce(data(), "sum", "mpi"))
local a, b = data():narrow(1, 1, 100), data():narrow(1, 101, n - 100)
dist.allreduce_many({ a:clone(), b:clone() }) -- warm-up of a second shape
local parts = { a:clone(), b:clone() }
dist.allreduce_many(parts, { bucket_bytes = 256 })
say("many", mtl.concat(parts, 1))
