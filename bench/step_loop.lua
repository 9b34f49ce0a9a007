-- The training step of mtl bench, repeated: for profiling one step (bench/profile.sh).
--   build/mtl bench/step_loop.lua MODEL BATCH STEPS [PRESET] [THREADS]
--   build/mtl bench/step_loop.lua MODEL BATCH STEPS PRESET THREADS infer
-- (the last word times inference batches instead: eval mode, no gradients).
-- Loads as many training rows as the steps need (wrapping around), builds the
-- model and optimizers as mtl bench does, runs 20 warm-up steps, prints "timed"
-- on stderr, then runs STEPS steps and prints ms per step (wall and CPU).
local mtl = require "mtl"
local bench = require "mtl.bench"
local losses = require "mtl.losses"
local model_name, B, N = arg[1] or "mmoe", tonumber(arg[2] or 1024), tonumber(arg[3] or 100)
local preset, threads = arg[4] or "spec", tonumber(arg[5] or 1)
local infer = arg[6] == "infer"
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
  step = function(b) return mtl.no_grad(function() return model(bench.slice(tr, (b % nb) * B, B)) end) end
end
for b = 0, 19 do step(b) end
local function cpu()
  local f = io.open("/proc/self/stat")
  local s = f:read("*a")
  f:close()
  local fields = {}
  for w in s:gmatch("%S+") do fields[#fields + 1] = w end
  return (tonumber(fields[14]) + tonumber(fields[15])) / 100
end
io.stderr:write("timed\n")
local c0, t0 = cpu(), bench.now()
for b = 20, 20 + N - 1 do step(b) end
local dt, dc = bench.now() - t0, cpu() - c0
print(string.format("%s %s B=%d threads=%d: %.3f ms/step (CPU %.3f ms), %.0f ex/s, %.1f GFLOP/s", model_name, preset, B,
  threads, dt / N * 1e3, dc / N * 1e3, B * N / dt, (infer and 1 or 3) * bench.forward_flops_per_row(model) * B * N / dt / 1e9))
