-- mtl bench (lua/mtl/bench.lua): options, errors, and a whole run of the
-- protocol on a small file in the benchmark's CSV format; the JSON line has
-- every key torch_ref.py prints. Speed is never asserted here.
local mtl = require "mtl"
local bench = require "mtl.bench"
local json = require "cjson"
local check = require "helpers.check"
local shell = require "helpers.shell"

-- n rows in SPEC.md's format (section 1.2), from a fixed LCG
local function write_csv(path, n, seed)
  local f = assert(io.open(path, "w"))
  f:write("is_click,is_pay,user_id,item_id,trigger_id,c1,c2,c3,c4,c5,c6,c7,c8,c9,c10,tags,d1,d2,d3,d4,d5,d6,d7,d8\n")
  local state = seed
  local function rnd(k)
    state = (state * 1103515245 + 12345) % 2147483648
    return state % k
  end
  local cards = { 5, 10, 20, 50, 100, 200, 500, 1000, 5000, 10000 }
  for _ = 1, n do
    local click = rnd(4) == 0 and 1 or 0
    local pay = click == 1 and rnd(3) == 0 and 1 or 0
    local row = { click, pay, rnd(100000), rnd(200000), rnd(200000) }
    for _, c in ipairs(cards) do row[#row + 1] = rnd(c) end
    local tags = {}
    for t = 1, 1 + rnd(8) do tags[t] = rnd(10000) end
    row[#row + 1] = table.concat(tags, "|")
    for _ = 1, 8 do row[#row + 1] = string.format("%.6g", rnd(100000) / 1000 - 20) end
    f:write(table.concat(row, ","), "\n")
  end
  f:close()
end

local TORCH_KEYS = {
  "model", "preset", "batch", "threads", "epochs", "seed", "env", "train_rows", "test_rows",
  "load_train_seconds", "load_test_seconds", "read_csv_train_seconds", "dense_params", "embedding_params",
  "warmup_seconds", "train_seconds", "train_examples_per_s", "train_loss_last_epoch", "infer_seconds",
  "infer_examples_per_s", "auc_click", "auc_cvr", "auc_ctcvr", "logloss_click", "logloss_ctcvr", "peak_rss_mib",
}

describe("mtl bench", function()
  it("parses torch_ref.py's flags and checks them", function()
    local o = bench.parse { "--model", "mmoe", "--batch", "256", "--threads=2", "--preset", "paper", "--train-rows", "10" }
    assert.are.equal("mmoe", o.model)
    assert.are.equal(256, o.batch)
    assert.are.equal(2, o.threads)
    assert.are.equal("paper", o.preset)
    assert.are.equal(10, o.train_rows)
    assert.are.equal(20, o.warmup)
    assert.are.equal(5, o.infer_warmup)
    check.assert_error("model ple is not defined for preset paper", bench.parse, { "--model", "ple", "--preset", "paper" })
    -- the models with benchmark settings (bench.spec in their file): the SPEC's five
    assert.are.same({ "dbmtl", "esmm", "mmoe", "ple", "shared_bottom" }, bench.models("spec"))
    assert.are.same({ "mmoe", "shared_bottom" }, bench.models("paper"))
    check.assert_error("unknown model 'x' (expected dbmtl, esmm, mmoe, ple, shared_bottom)", bench.parse, { "--model", "x" })
    check.assert_error("--model is required", bench.parse, { "--batch", "3" })
    check.assert_error("--batch must be a non-negative integer, got 'x'", bench.parse, { "--model", "mmoe", "--batch", "x" })
    check.assert_error("unknown option '--bogus'", bench.parse, { "--model", "mmoe", "--bogus", "1" })
    check.assert_error("option '--seed' needs a value", bench.parse, { "--model", "mmoe", "--seed" })
    assert.are.equal("fp32", bench.parse({ "--model", "mmoe" }).precision)
    assert.are.equal("bf16", bench.parse({ "--model", "mmoe", "--precision", "bf16" }).precision)
    check.assert_error("--precision must be fp32 or bf16, got 'fp16'", bench.parse, { "--model", "mmoe", "--precision", "fp16" })
  end)

  it("builds each model at SPEC.md's sizes (dense parameter counts of sections 3 and 6.2)", function()
    local counts = { shared_bottom = 109186, mmoe = 388682, ple = 298952, esmm = 201730, dbmtl = 111298 }
    for name, want in pairs(counts) do
      local m = bench.build(bench.parse { "--model", name })
      local n = 0
      for _, p in ipairs(m:parameters()) do n = n + p:numel() end
      assert.are.equal(want, n, name)
    end
    for name, want in pairs { shared_bottom = 9187, mmoe = 9650 } do
      local m = bench.build(bench.parse { "--model", name, "--preset", "paper" })
      local n = 0
      for _, p in ipairs(m:parameters()) do n = n + p:numel() end
      assert.are.equal(want, n, name .. " paper")
    end
  end)

  it("runs the protocol on a small file and prints torch_ref.py's keys as its last line #slow", function()
    local dir = shell.tmpdir()
    write_csv(dir .. "/train.csv", 700, 7)
    write_csv(dir .. "/test.csv", 300, 8)
    local function run(extra)
      return shell.run(string.format("%s %s --model mmoe --batch 64 --warmup 3 --infer-warmup 2 --train %s --test %s %s 2>&1",
        shell.quote(shell.launcher), shell.quote(shell.root .. "/bench/bench.lua"),
        shell.quote(dir .. "/train.csv"), shell.quote(dir .. "/test.csv"), extra))
    end
    local out, out16 = run(""), run("--precision bf16")
    shell.run("rm -rf " .. shell.quote(dir))
    local last = out:match("([^\n]+)\n?$")
    local ok, info = pcall(json.decode, last)
    assert(ok and type(info) == "table", "no JSON last line in:\n" .. out)
    for _, k in ipairs(TORCH_KEYS) do assert(info[k] ~= nil, "missing key " .. k) end
    assert.are.equal(700, info.train_rows)
    assert.are.equal(300, info.test_rows)
    assert.are.equal(388682, info.dense_params)
    assert.are.equal(8430160, info.embedding_params)
    assert.is_true(info.step_gflops > 0 and info.auc_click > 0 and info.auc_click < 1)
    assert.is_true(info.peak_rss_mib > 0)
    -- one epoch of 11 steps: 2*(232*1024 + 4*256*128 + 2*232*4 + 2*(128*64 + 64)) FLOPs per row, x3
    assert.are.equal(3 * 2 * (232 * 1024 + 4 * 256 * 128 + 2 * 232 * 4 + 2 * (128 * 64 + 64)) * 64, info.flops_per_step)
    assert.are.equal("fp32", info.precision)
    -- --precision bf16: inference in bf16 where the CPU has it (said on stderr), the same keys, training as FP32's
    local available, status = mtl.bf16_status()
    local info16 = json.decode(out16:match("([^\n]+)\n?$"))
    for _, k in ipairs(TORCH_KEYS) do assert(info16[k] ~= nil, "missing key " .. k) end
    assert.are.equal(available and "bf16" or "fp32", info16.precision)
    assert.truthy(out16:find("mtl: inference precision " .. status, 1, true), out16)
    assert.are.equal(info.train_loss_last_epoch, info16.train_loss_last_epoch)
    assert.is_true(math.abs(info.auc_click - info16.auc_click) < 0.01)
  end)

  it("runs under mpirun: each rank its rows, rank 0 prints, the communication per step in the JSON #slow", function()
    local mpirun = require "dist.mpirun"
    local dir = shell.tmpdir()
    write_csv(dir .. "/train.csv", 700, 7)
    write_csv(dir .. "/test.csv", 300, 8)
    local args = string.format("bench --model mmoe --batch 64 --warmup 3 --infer-warmup 2 --train %s --test %s --quiet",
      shell.quote(dir .. "/train.csv"), shell.quote(dir .. "/test.csv"))
    local status, stdout, stderr = mpirun.run(2, args)
    local one = shell.run(string.format("%s %s", shell.quote(shell.launcher), args))
    shell.run("rm -rf " .. shell.quote(dir))
    assert(status == 0, stderr)
    local lines = {}
    for line in stdout:gmatch("[^\n]+") do lines[#lines + 1] = line end
    assert.are.equal(1, #lines, stdout) -- rank 0's JSON only
    local info, single = json.decode(lines[1]), json.decode(one:match("([^\n]+)\n?$"))
    assert.are.equal(2, info.ranks)
    assert.are.equal(700, info.train_rows) -- every rank's rows
    assert.are.equal(300, info.test_rows)
    -- one allreduce_many a step: the 388,682 dense gradients, the loss, 16 has-a-gradient flags (int64)
    assert.are.equal(4 * (388682 + 1) + 8 * 16, info.dense_bytes_per_step)
    assert.is_true(info.sparse_bytes_per_step > 0 and info.comm_percent_of_step > 0)
    -- the global batch's training: the loss of one process up to float summation order
    assert.is_true(math.abs(info.train_loss_last_epoch - single.train_loss_last_epoch) < 1e-3,
      info.train_loss_last_epoch .. " vs " .. single.train_loss_last_epoch)
  end)

  it("runs the embedding benchmark: every setting, a row per table, on 1 and 2 threads #slow", function()
    for _, threads in ipairs { 1, 2 } do
      local out = shell.run(string.format("%s %s 2 10 1e5 emb:uniform,emb:zipf,full:uniform,full:zipf %d 2>&1",
        shell.quote(shell.launcher), shell.quote(shell.root .. "/bench/embedding_bench.lua"), threads))
      assert.is_truthy(out:find(("dim 16, %d thread"):format(threads), 1, true), out)
      for _, st in ipairs { "emb:uniform", "emb:zipf", "full:uniform", "full:zipf" } do
        local block = out:match("\n" .. st:gsub("%p", "%%%0") .. " [^\n]*\n[^\n]*\n(10%^5[^\n]*)")
        assert(block, "no 10^5 row for " .. st .. " in:\n" .. out)
        local ids, touched, step, ratio = block:match("^10%^5%s+(%d+)%s+(%d+)%s+([%d.]+) %b()%s+([%d.]+)")
        assert(ids, "cannot read the row: " .. block)
        ids, touched = tonumber(ids), tonumber(touched)
        assert.is_true(touched > 0 and touched <= ids, block)
        assert.is_true(tonumber(step) > 0, block)
        assert.are.equal(1, tonumber(ratio)) -- the 10^5 table against itself
        local lookups, rows_s = block:match("([%d.e+]+)%s+([%d.e+]+)%s+[%d.]+$")
        assert.is_true(tonumber(lookups) > 0 and tonumber(rows_s) > 0, block)
      end
      -- emb:uniform draws 5,000 ids, full:uniform 1,024 x 5, full:zipf 2,048 x 5
      assert.is_truthy(out:find("\n10%^5%s+5000%s"), out)
      assert.is_truthy(out:find("\n10%^5%s+5120%s"), out)
      assert.is_truthy(out:find("\n10%^5%s+10240%s"), out)
    end
  end)

  it("runs the dynamic-table benchmark on a small table", function()
    local out = shell.run(string.format("%s %s 20000 5 2>&1", shell.quote(shell.launcher),
      shell.quote(shell.root .. "/bench/dynamic_bench.lua")))
    -- 4 batches of 5,120 new ids reach 20,480 >= 20,000
    local admitted, batches = out:match("growth: (%d+) ids admitted in (%d+) batches of 5120 new ids")
    assert(admitted, out)
    assert.are.equal(20480, tonumber(admitted))
    assert.are.equal(4, tonumber(batches))
    local held, train_ms, eval_ms = out:match("resolution %((%d+) ids held%): lookup of 5120 ids, training ([%d.]+) ms .- eval ([%d.]+) ms")
    assert(held, out)
    assert.are.equal(20480, tonumber(held))
    assert.is_true(tonumber(train_ms) > 0 and tonumber(eval_ms) > 0, out)
  end)
end)

-- the module loads without touching the global namespace
assert(mtl and not rawget(_G, "bench"))
