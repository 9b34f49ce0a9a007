-- mtl.linear's products on the benchmark models' layer shapes, three ways,
-- alternating in each round: OpenBLAS sgemm with bias and ReLU passes around
-- it (what a forward that records gradients runs: here x requires a gradient,
-- so the figure includes recording the node), the packed FP32 inference kernel
-- and the bf16 kernel (both: weights packed once, bias and ReLU fused); prints
-- GFLOP/s per shape (median over the rounds).
--
--   build/mtl bench/bf16_linear.lua [rounds 5] [threads 1]
local mtl = require "mtl"

local rounds, threads = tonumber(arg[1] or 5), tonumber(arg[2] or 1)
mtl.set_num_threads(threads)
local B = 1024
-- {name, x shape, w shape}: mmoe's experts (layer 1 grouped, layer 2 per expert), tower, gate
local shapes = {
  { "experts layer 1 (4 x 256, in 232)", { B, 232 }, { 4, 256, 232 } },
  { "experts layer 2 (4 x 128, in 256)", { B, 4, 256 }, { 4, 128, 256 } },
  { "shared_bottom layer 1 (in 232)", { B, 232 }, { 256, 232 } },
  { "tower (64, in 128)", { B, 128 }, { 64, 128 } },
  { "gate (4, in 232)", { B, 232 }, { 4, 232 } },
}

local function now() return require("mtl.sys").now() end
local function median(t)
  table.sort(t)
  return t[math.floor((#t + 1) / 2)]
end

local available, status = mtl.bf16_status()
print(string.format("batch %d, %d thread(s), %d rounds; %s", B, threads, rounds, status))
print(string.format("FP32 inference kernel: %s", mtl.fp32_status()))
print(string.format("%-36s %10s %10s %10s %7s %7s", "shape", "blas GF/s", "fp32 GF/s", "bf16 GF/s", "fp32/bl", "bf16/bl"))
for _, s in ipairs(shapes) do
  mtl.seed(1)
  local x, w = mtl.randn(unpack(s[2])), mtl.randn(unpack(s[3]))
  local bshape = #s[3] == 3 and { s[3][1], s[3][2] } or { s[3][1] }
  local b = mtl.randn(unpack(bshape))
  local flops = 2 * B * w:numel()
  local reps = math.max(3, math.floor(2e9 / flops))
  local rate = { blas = {}, fp32 = {}, bf16 = {} }
  local xg = x:detach():requires_grad(true)
  for _ = 1, rounds do
    for _, p in ipairs { "blas", "fp32", "bf16" } do
      mtl.bf16_unpack(w)
      mtl.fp32_unpack(w)
      if p == "bf16" then mtl.bf16_pack(w) elseif p == "fp32" then mtl.fp32_pack(w) end
      local run = p == "blas" and function() return mtl.linear(xg, w, b, "relu") end
        or function() return mtl.no_grad(mtl.linear, x, w, b, "relu") end
      run()
      collectgarbage()
      local t0 = now()
      for _ = 1, reps do run() end
      local r = rate[p]
      r[#r + 1] = flops * reps / (now() - t0) / 1e9
    end
  end
  local l, f, h = median(rate.blas), median(rate.fp32), median(rate.bf16)
  print(string.format("%-36s %10.1f %10.1f %10.1f %7.2f %7.2f", s[1], l, f, h, f / l, h / l))
end
if not available then print("(no AVX512-BF16 here: both columns are FP32)") end
