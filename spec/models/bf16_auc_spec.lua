-- #slow: bf16 inference (nn.Module:set_precision "bf16", docs/performance.md)
-- scores as FP32 does: every model of the registry that serves rankings
-- (shared_bottom, esmm, mmoe, ple, dbmtl, aitm), trained for one epoch on
-- 40,000 rows of the benchmark's synthetic data (bench/gen_synth.py, SPEC.md
-- 1.1), gives test AUCs within 0.001 of FP32's on 20,000 rows of its test
-- data. Where the CPU lacks AVX512-BF16 the scores are FP32's exactly.
local mtl = require "mtl"
local train = require "mtl.train"
local sh = require "helpers.shell"

local available = mtl.bf16_status()

describe("#slow bf16 inference keeps the test AUCs", function()
  local dir
  setup(function()
    dir = sh.tmpdir()
    for _, f in ipairs { { "train", 40000, 1 }, { "test", 20000, 2 } } do
      assert(os.execute(string.format("/usr/bin/python3 bench/gen_synth.py --rows %d --seed %d --out %s/%s.csv "
        .. "--oracle %s/%s_oracle.csv >/dev/null", f[2], f[3], dir, f[1], dir, f[1])) == 0)
    end
  end)
  teardown(function() sh.rm_rf(dir) end)

  for _, name in ipairs { "shared_bottom", "esmm", "mmoe", "ple", "dbmtl", "aitm" } do
    it(name, function()
      local cfg = dofile("examples/configs/bench_common.lua")(name == "aitm" and "mmoe" or name)
      if name == "aitm" then
        cfg.model = { name = "aitm", bottom = { 256, 128 }, tower = { 128, 64 }, tasks = cfg.model.tasks }
      end
      cfg.data.train, cfg.data.eval, cfg.model_dir = dir .. "/train.csv", dir .. "/test.csv", nil
      local run = train.new(cfg, { quiet = true })
      run:fit()
      local model = run.model
      model:eval()
      local fp32 = model:evaluate(cfg.data.eval)
      assert.are.equal(available and "bf16" or "fp32", (model:set_precision("bf16")))
      local bf16 = model:evaluate(cfg.data.eval)
      model:set_precision("fp32")
      local n = 0
      for task, m in pairs(fp32) do
        if m.auc then
          n = n + 1
          local d = math.abs(bf16[task].auc - m.auc)
          assert.is_true(d <= 0.001, string.format("%s %s: AUC bf16 %.5f, fp32 %.5f", name, task, bf16[task].auc, m.auc))
          if not available then assert.are.equal(m.auc, bf16[task].auc) end
          assert.is_true(m.auc > 0.6, string.format("%s %s: AUC %.4f: the model learned nothing", name, task, m.auc))
        end
      end
      assert.is_true(n >= 2)
    end)
  end
end)
