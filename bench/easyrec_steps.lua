-- An EasyRec sample config as shipped (its batch size, e.g. 4096 for
-- mmoe_on_taobao) trained for a number of steps on rows generated in its
-- schema (mtl.synth.rows), with a log line every 10 steps (examples/s and
-- GFLOP/s): the run docs/performance.md measures page faults on.
--
--   /usr/bin/time -v build/mtl bench/easyrec_steps.lua [CONFIG [steps 40 [DIR]]]
--
-- CONFIG: an EasyRec pipeline.config (default: $MTL_HOME/spec/fixtures/easyrec/
-- samples/mmoe_on_taobao.config);
-- DIR (default /tmp/mtl_easyrec_steps) keeps the generated rows between runs:
-- 200,000 training rows and 4,096 test rows.
local config = require "mtl.config"
local easyrec = require "mtl.config.easyrec"
local synth = require "mtl.synth"
local train = require "mtl.train"
local sys = require "mtl.sys"

local path = arg[1] or (os.getenv("MTL_HOME") or ".") .. "/spec/fixtures/easyrec/samples/mmoe_on_taobao.config"
local steps = tonumber(arg[2] or 40)
local dir = arg[3] or "/tmp/mtl_easyrec_steps"
sys.mkdir_p(dir)
local raw = easyrec.load(path)
if not sys.exists(dir .. "/train.csv") then
  synth.rows(raw, { path = dir .. "/train.csv", rows = 200000, seed = 1 })
  synth.rows(raw, { path = dir .. "/test.csv", rows = 4096, seed = 2 })
end
local cfg = config.load(path, { "data.train=" .. dir .. "/train.csv", "data.eval=" .. dir .. "/test.csv",
  "train.steps=" .. steps, "train.log_every=10", "train.eval_every=100000", "train.checkpoint_every=false",
  "model_dir=" .. dir .. "/run" })
if sys.exists(dir .. "/run") then sys.remove_tree(dir .. "/run") end
print(string.format("%s: batch %d, %d steps", path, cfg.data.batch_size, steps))
train.new(cfg, {}):fit()
