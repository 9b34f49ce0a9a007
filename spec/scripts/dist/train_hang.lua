-- Trains CONFIG (spec/dist/train_faults_spec.lua) with a progress object that
-- makes rank CULPRIT hang after step STEP (a stuck rank, as a deadlock or a
-- stalled disk would leave it): the other ranks must stop the run.
--   mtl train_hang.lua CONFIG CULPRIT STEP
local mtl = require "mtl"
local train = require "mtl.train"

local cfg = dofile(arg[1])
local culprit, at = tonumber(arg[2]), tonumber(arg[3])
cfg.model_dir = nil
local progress = {}
for _, m in ipairs { "start", "log", "eval", "message", "finish" } do progress[m] = function() end end
function progress.step(_, run)
  if mtl.dist.rank() == culprit and run.step == at then os.execute("sleep 60") end
end
train.new(cfg, { progress = progress }):fit()
print("finished")
