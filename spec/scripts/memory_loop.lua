-- 100,000 SGD steps of a 8 -> 16 -> 1 MLP on a fixed batch of 32, as a
-- training script would run them (a fresh process: the Lua heap holds only
-- this loop). Run by spec/memory_spec.lua; prints one line:
--   first_loss last_loss rss_after_warmup rss_at_end held_after_warmup held_at_end peak_in_use
-- (rss: resident bytes from /proc/self/statm; held: mtl.memory().in_use after a
-- full collection; peak_in_use: the largest in_use seen every 1000 steps).
local mtl = require "mtl"

local steps, warmup = tonumber(arg[1]) or 100000, tonumber(arg[2]) or 20000

local function resident_bytes()
  local f = assert(io.open("/proc/self/statm"))
  local line = f:read("*l")
  f:close()
  return tonumber(line:match("^%d+%s+(%d+)")) * 4096
end

local function full_gc()
  collectgarbage()
  collectgarbage()
end

mtl.seed(1)
local x = mtl.randn(32, 8)
local y = mtl.rand(32, 1):gt(0.5)
local w1, b1 = mtl.param(mtl.randn(16, 8) * 0.3), mtl.param(mtl.zeros(16))
local w2, b2 = mtl.param(mtl.randn(1, 16) * 0.3), mtl.param(mtl.zeros(1))
local params = { w1, b1, w2, b2 }

local function sgd_step()
  for _, p in ipairs(params) do p:zero_grad() end
  local h = mtl.relu(mtl.linear(x, w1, b1))
  local loss = mtl.bce_with_logits(mtl.linear(h, w2, b2), y)
  loss:backward()
  mtl.no_grad(function()
    for _, p in ipairs(params) do p:copy(p - p.grad * 0.1) end
  end)
  return loss
end

local first = sgd_step():item()
for _ = 2, warmup do sgd_step() end
full_gc()
local rss0, held0 = resident_bytes(), mtl.memory().in_use
local peak, last = 0, nil
for step = warmup + 1, steps do
  last = sgd_step()
  if step % 1000 == 0 then peak = math.max(peak, mtl.memory().in_use) end
end
local final = last:item()
last = nil -- luacheck: ignore
full_gc()
print(string.format("%.9g %.9g %d %d %d %d %d", first, final, rss0, resident_bytes(), held0,
  mtl.memory().in_use, peak))
