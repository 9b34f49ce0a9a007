-- Reading benchmark: SPEC.md §4 step 1 (the load step) with mtl's C reader.
--
--   build/mtl bench/read_bench.lua [train.csv] [--repeat N] [--stream BIGFILE]
--   (--repeat 0 skips the load step: streaming only)
--
-- Load = parse every column of the 200,000-row train file, tags into flat ids
-- + offsets, z-score of d1..d8 with the file's mean and population std
-- computed in double; the tensors are ready when it ends. Prints seconds and
-- rows/s (best and median of N runs). With --stream, it also streams BIGFILE
-- in batches of 1024 (file order) and prints the reader's peak buffer bytes
-- and the process's peak RSS, to show memory is bounded by the chunk size.
-- Data: /usr/bin/python3 bench/gen_synth.py --rows 200000 --seed 1 \
--         --out /tmp/mtlbench/train.csv --oracle /tmp/mtlbench/train_oracle.csv
local mtl = require "mtl"
local now = require("mtl.sys").now

local function peak_rss_mb()
  for line in io.lines("/proc/self/status") do
    local kb = line:match("^VmHWM:%s+(%d+)")
    if kb then return tonumber(kb) / 1024 end
  end
end

local path, reps, stream = "/tmp/mtlbench/train.csv", 5, nil
local i = 1
while arg[i] do
  if arg[i] == "--repeat" then reps = tonumber(arg[i + 1]); i = i + 2
  elseif arg[i] == "--stream" then stream = arg[i + 1]; i = i + 2
  else path = arg[i]; i = i + 1 end
end

-- The benchmark's schema (SPEC.md §1.2).
local columns = { { name = "is_click", type = "float" }, { name = "is_pay", type = "float" } }
for _, name in ipairs { "user_id", "item_id", "trigger_id" } do
  columns[#columns + 1] = { name = name, type = "int64" }
end
for k = 1, 10 do columns[#columns + 1] = { name = "c" .. k, type = "int64" } end
columns[#columns + 1] = { name = "tags", type = "multi", separator = "|" }
local dense = {}
for k = 1, 8 do
  columns[#columns + 1] = { name = "d" .. k, type = "float", group = "dense" }
  dense[k] = "d" .. k
end

mtl.set_num_threads(1)
if reps > 0 then -- --repeat 0: streaming only
  local times, cpu, result = {}, {}, nil
  for r = 1, reps do
    result = nil
    collectgarbage()
    local t0, c0 = now(), os.clock()
    result = mtl.data.read_all { files = path, header = true, columns = columns, standardize = dense }
    times[r], cpu[r] = now() - t0, os.clock() - c0
  end
  table.sort(times)
  table.sort(cpu)
  local n = result.size
  print(string.format("mtl read_all %s: %d rows, %d tag ids", path, n, result.columns.tags.ids:numel()))
  print(string.format("  load seconds: best %.4f  median %.4f  (%d runs); CPU seconds: best %.4f",
    times[1], times[math.ceil(#times / 2)], #times, cpu[1]))
  print(string.format("  rows/s: %.0f (best)", n / times[1]))
  for _, name in ipairs(dense) do
    local s = result.stats[name]
    print(string.format("  %s mean %.6g std %.6g", name, s.mean, s.std))
  end
  print(string.format("  peak RSS %.1f MB", peak_rss_mb()))
end

if stream then
  collectgarbage()
  local rss0 = peak_rss_mb()
  local reader = mtl.data.csv { files = stream, header = true, columns = columns, batch_size = 1024 }
  local t0, rows, batches = now(), 0, 0
  for batch in reader:batches() do
    rows = rows + batch.size
    batches = batches + 1
  end
  local dt = now() - t0
  local f = io.open(stream, "rb")
  local bytes = f:seek("end")
  f:close()
  print(string.format("stream %s (%.0f MB): %d rows in %d batches, %.3f s, %.0f rows/s",
    stream, bytes / 2 ^ 20, rows, batches, dt, rows / dt))
  print(string.format("  reader peak buffers %.2f MB; process peak RSS %.1f MB (was %.1f MB before streaming)",
    reader:peak_bytes() / 2 ^ 20, peak_rss_mb(), rss0))
end
