-- Memory stays flat in a training loop: resident memory of the process
-- (/proc/self/statm) and the bytes mtl holds for tensors (mtl.memory()).
local mtl = require "mtl"

local PAGE = 4096

local function resident_bytes()
  local f = assert(io.open("/proc/self/statm"))
  local line = f:read("*l")
  f:close()
  return tonumber(line:match("^%d+%s+(%d+)")) * PAGE
end

local function full_gc()
  collectgarbage()
  collectgarbage()
end

describe("memory #slow", function()
  -- 100,000 SGD steps of a 8 -> 16 -> 1 MLP on a fixed batch of 32. After a
  -- warm-up of 20,000 steps, resident memory may grow by at most 4 MB over
  -- the remaining 80,000 steps (one leaked tensor handle, ~200 bytes, per
  -- step would add 16 MB; without sanitizers the measured growth is 0), and after a full collection mtl holds exactly as many bytes
  -- as after the warm-up. Under AddressSanitizer, tools/test.sh caps the
  -- quarantine of freed blocks at 16 MB so it fills during the warm-up.
  it("stays flat over 100,000 training steps of a small MLP", function()
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
    for _ = 2, 20000 do sgd_step() end
    full_gc()
    local rss0, held0 = resident_bytes(), mtl.memory().in_use
    local peak_in_use = 0
    local last
    for step = 20001, 100000 do
      last = sgd_step()
      if step % 1000 == 0 then peak_in_use = math.max(peak_in_use, mtl.memory().in_use) end
    end
    local loss = last:item()
    last = nil -- luacheck: ignore
    full_gc()
    local rss1, held1 = resident_bytes(), mtl.memory().in_use
    assert.is_true(loss < first / 10, string.format("loss %.4g did not fall from %.4g", loss, first))
    assert.is_true(rss1 - rss0 < 4 * 2 ^ 20,
      string.format("resident memory grew by %d bytes after warm-up", rss1 - rss0))
    assert.are.equal(held0, held1)
    -- between collections, garbage tensors never pile up beyond a few MB
    assert.is_true(peak_in_use < 16 * 2 ^ 20, string.format("peak in_use %d bytes", peak_in_use))
  end)

  -- The Lua GC sees only small handles; mtl tells it about tensor storage
  -- (heap tracking), so a loop making 4 MB garbage tensors collects them
  -- instead of holding all 1.2 GB.
  it("lets the Lua GC collect tensors whose storage is large", function()
    full_gc()
    local base = mtl.memory().in_use
    local peak = 0
    for _ = 1, 300 do
      local t = mtl.zeros(1000, 1000) + 1
      peak = math.max(peak, mtl.memory().in_use - base)
      assert.are.equal(1, t:get(1000, 1000))
    end
    assert.is_true(peak < 200 * 2 ^ 20, string.format("peak %d bytes above the baseline", peak))
    full_gc()
    assert.are.equal(base, mtl.memory().in_use)
  end)
end)
