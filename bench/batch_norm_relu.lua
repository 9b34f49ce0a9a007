-- mtl.batch_norm with activation "relu" (one pass forward, one backward)
-- against batch_norm then mtl.relu, forward + backward of x [4096, 256] in
-- training mode (EasyRec's dense -> BN -> relu layers at batch 4096),
-- alternating, 300 each, 1 thread:
--   build/mtl bench/batch_norm_relu.lua
-- 2026-12-07, idle machine: fused median 1.97 ms (min 1.43), plain 3.21 (2.22).
local mtl = require "mtl"
local sys = require "mtl.sys"
mtl.set_num_threads(1)
mtl.seed(1)
local x = mtl.randn(4096, 256):requires_grad(true)
local w, b = mtl.ones(256):requires_grad(true), mtl.zeros(256):requires_grad(true)
local rm, rv = mtl.zeros(256), mtl.ones(256)
local g = mtl.randn(4096, 256)
local function fused() local y = mtl.batch_norm(x, w, b, rm, rv, true, 0.1, 1e-5, "relu"); y:backward(g) end
local function plain() local y = mtl.relu(mtl.batch_norm(x, w, b, rm, rv, true, 0.1, 1e-5)); y:backward(g) end
local t = { fused = {}, plain = {} }
for i = 1, 300 do
  for name, f in pairs({ fused = fused, plain = plain }) do
    x:zero_grad(); w:zero_grad(); b:zero_grad()
    local t0 = sys.now(); f(); t[name][#t[name] + 1] = sys.now() - t0
  end
  if i % 50 == 0 then collectgarbage() end
end
for name, l in pairs(t) do table.sort(l); print(name, string.format("median %.3f ms  min %.3f", l[150] * 1e3, l[1] * 1e3)) end
