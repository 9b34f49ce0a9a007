-- The training step of mtl bench, repeated: for profiling one step (bench/profile.sh).
--   build/mtl bench/step_loop.lua MODEL BATCH STEPS [PRESET] [THREADS] [infer] [gemm]
-- "infer" times inference batches instead (eval mode, no gradients); "gemm"
-- also times every matrix product (mtl.gemm_stats) and prints, per shape, the
-- calls and milliseconds per step and the GFLOP/s, then the products' share of
-- the step and their FLOP rate (docs/performance.md, "Profile of a step").
-- Loads as many training rows as the steps need (wrapping around), builds the
-- model and optimizers as mtl bench does, runs 20 warm-up steps, prints "timed"
-- on stderr, then runs STEPS steps and prints ms per step (wall and CPU).
local mtl = require "mtl"
local bench = require "mtl.bench"
local losses = require "mtl.losses"
local model_name, B, N = arg[1] or "mmoe", tonumber(arg[2] or 1024), tonumber(arg[3] or 100)
local preset, threads = arg[4] or "spec", tonumber(arg[5] or 1)
local infer, gemm = false, false
for i = 6, #arg do
  if arg[i] == "infer" then infer = true
  elseif arg[i] == "gemm" then gemm = true
  else error("step_loop.lua: unknown word " .. arg[i] .. " (expected infer or gemm)", 0) end
end
mtl.set_num_threads(threads)
local rows = math.min(200000, B * (N + 20))
local tr = bench.load(os.getenv("MTL_BENCH_TRAIN") or "/tmp/mtlbench/train.csv", rows, nil)
mtl.seed(0)
local model, F = bench.build(bench.parse { model = model_name, preset = preset })
local tables = {}
for _, e in ipairs(F:embedding_tables()) do tables[#tables + 1] = e.table end
local dense = mtl.optim.adam { params = model:parameters(), lr = 1e-3 }
local sparse = mtl.optim.adam { params = tables, lr = 1e-3 }
local spec = losses.default_spec(model.body)
local nb = math.floor(tr.size / B)
local function step(b)
  local batch = bench.slice(tr, (b % nb) * B, B)
  local total = losses.compute(model(batch), batch.columns, spec)
  dense:zero_grad(); sparse:zero_grad()
  total:backward()
  dense:step(); sparse:step()
  return total:item()
end
if infer then
  model:eval()
  model:set_precision("fp32") -- as mtl bench: weights packed once for the inference kernel
  step = function(b) return mtl.no_grad(function() return model(bench.slice(tr, (b % nb) * B, B)) end) end
end
for b = 0, 19 do step(b) end
io.stderr:write("timed\n")
if gemm then mtl.gemm_stats(true) end
local c0, t0 = bench.cpu_seconds(), bench.now()
for b = 20, 20 + N - 1 do step(b) end
local dt, dc = bench.now() - t0, bench.cpu_seconds() - c0
if gemm then mtl.gemm_stats(false) end
print(string.format("%s %s B=%d threads=%d: %.3f ms/step (CPU %.3f ms), %.0f ex/s, %.1f GFLOP/s", model_name, preset, B,
  threads, dt / N * 1e3, dc / N * 1e3, B * N / dt, (infer and 1 or 3) * bench.forward_flops_per_row(model) * B * N / dt / 1e9))

if gemm then
  local st, total, flops = mtl.gemm_stats(), 0, 0
  table.sort(st, function(a, b) return a.seconds > b.seconds end)
  print(string.format("%6s %6s %6s %3s %11s %9s %8s", "m", "n", "k", "op", "calls/step", "ms/step", "GFLOP/s"))
  for _, g in ipairs(st) do
    local f = 2 * g.m * g.n * g.k * g.calls
    total, flops = total + g.seconds, flops + f
    print(string.format("%6d %6d %6d %2s%s %11.2f %9.3f %8.1f", g.m, g.n, g.k, g.ta, g.tb, g.calls / N,
      g.seconds / N * 1e3, f / g.seconds / 1e9))
  end
  print(string.format("matrix products: %.3f ms of the %.3f ms step (%.1f%%), %.1f GFLOP/s", total / N * 1e3,
    dt / N * 1e3, 100 * total / dt, flops / total / 1e9))
end
