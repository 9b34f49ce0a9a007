-- Trains or evaluates the models of spec/dist/equivalence_spec.lua, in one
-- process or as one rank of several (mpirun):
--   mtl train_models.lua DIR train MODEL...   DIR/<model>.lua -> DIR/<model>-n<ranks>/
--   mtl train_models.lua DIR eval MODEL...    evaluates DIR/<model>-n1's final checkpoint
-- eval prints "r<rank> <model>.<target>.<metric> <value as %.17g>" lines.
local mtl = require "mtl"
local train = require "mtl.train"
local ranker = require "mtl.ranker"

local dir, mode = arg[1], arg[2]
local rank, size = mtl.dist.rank(), mtl.dist.size()

for i = 3, #arg do
  local name = arg[i]
  local cfg = dofile(string.format("%s/%s.lua", dir, name))
  if mode == "train" then
    cfg.model_dir = string.format("%s/%s-n%d", dir, name, size)
    train.new(cfg, { quiet = true }):fit()
  else
    local all = mtl.checkpoint.list(string.format("%s/%s-n1/checkpoints", dir, name))
    local model = ranker.load(cfg, mtl.load(all[#all].path))
    local m = model:evaluate(cfg.data.eval)
    local keys = {}
    for target, res in pairs(m) do
      for metric, v in pairs(res) do
        if type(v) == "number" then keys[#keys + 1] = string.format("%s.%s.%s %.17g", name, target, metric, v) end
      end
    end
    table.sort(keys)
    for _, k in ipairs(keys) do io.write(string.format("r%d %s\n", rank, k)) end
  end
end
io.stdout:flush()
