-- mmoe_on_taobao as shipped (batch 4096) on generated rows: page faults and GFLOP/s
local config = require "mtl.config"
local easyrec = require "mtl.config.easyrec"
local synth = require "mtl.synth"
local train = require "mtl.train"
local path = (os.getenv("MTL_HOME") or ".") .. "/spec/fixtures/easyrec/samples/mmoe_on_taobao.config"
local d = "/tmp/pf/data"
local steps = tonumber(arg[1] or 40)
os.execute("mkdir -p " .. d)
local raw = easyrec.load(path)
local f = io.open(d .. "/train.csv")
if not f then
  -- synth.rows fails past ~100k rows here (synth_rows.lua:86, a nil user): 10 files of 20k
  for i = 1, 10 do synth.rows(raw, { path = d .. "/part" .. i .. ".csv", rows = 20000, seed = i }) end
  os.execute("cat " .. d .. "/part*.csv > " .. d .. "/train.csv; rm " .. d .. "/part*.csv")
  synth.rows(raw, { path = d .. "/test.csv", rows = 4096, seed = 2 }) else f:close() end
local cfg = config.load(path, { "data.train=" .. d .. "/train.csv", "data.eval=" .. d .. "/test.csv",
  "train.steps=" .. steps, "train.log_every=10", "train.eval_every=100000", "train.checkpoint_every=false", "model_dir=/tmp/pf/run" })
os.execute("rm -rf /tmp/pf/run")
print("batch", cfg.data.batch_size)
train.new(cfg, {}):fit()
