-- A tiny exported model directory, for scripts that need one to load, misuse
-- or mutate (spec/scripts/misuse.lua, tools/fuzz/gen_seeds.lua): a two-task
-- MMoE over id, tag and numeric features with a ranking formula, trained for
-- 8 steps on 200 generated rows.
--   local dir, request = require("spec.helpers.tiny_model").make(work_dir)
-- dir: work_dir/model (manifest.json, config.lua, model.ckpt); request: 20
-- rows in the training schema (no header), as the serving library takes them.
local M = {}

local function write(p, s) local f = assert(io.open(p, "wb")); f:write(s); f:close() end

function M.make(work)
  local mtl = require "mtl"
  local md = work .. "/model"
  os.execute("rm -rf " .. md .. " " .. work .. "/model_run")
  local rows, req = { "is_click,is_pay,user,tags,price,a" }, {}
  mtl.seed(3)
  local x = mtl.rand(200, 4):values()
  for i = 1, 200 do
    local a, b, c, d = x[4 * i - 3], x[4 * i - 2], x[4 * i - 1], x[4 * i]
    local line = string.format("%d,%d,%d,%d|%d,%.3f,%.4f", a + b > 1 and 1 or 0, a > 0.8 and 1 or 0,
      math.floor(c * 30), math.floor(d * 9), math.floor(a * 9), 1 + d * 100, a)
    rows[#rows + 1] = line
    if i <= 20 then req[#req + 1] = line end
  end
  write(work .. "/model_train.csv", table.concat(rows, "\n") .. "\n")
  local cfg = require("mtl.config").load {
    data = { train = work .. "/model_train.csv", batch_size = 50,
             columns = { { name = "is_click", type = "float" }, { name = "is_pay", type = "float" },
                         { name = "user", type = "int" }, { name = "tags", type = "ids", separator = "|" },
                         { name = "price", type = "float" }, { name = "a", type = "float" } },
             labels = { "is_click", "is_pay" } },
    features = { { name = "user", type = "id", column = "user", num_buckets = 30, dim = 4 },
                 { name = "tags", type = "tag", column = "tags", num_buckets = 10, dim = 3 },
                 { name = "price", type = "raw", column = "price", normalize = "log1p" },
                 { name = "a", type = "raw", column = "a", normalize = "zscore" } },
    model = { name = "mmoe", experts = 2, expert = { 8 }, tower = { 4 },
              tasks = { { name = "click", label = "is_click" }, { name = "pay", label = "is_pay" } } },
    optimizer = { dense = { name = "adam", lr = 0.01 } },
    train = { steps = 8, log_every = 100, checkpoint_every = 100, seed = 1 },
    rank = { price = "price", alpha = 0.5, expression = "click * pay + log1p(price)" },
    model_dir = work .. "/model_run",
  }
  local run = require("mtl.train").new(cfg, { quiet = true, out = io.stderr })
  run:fit()
  require("mtl.export").write(run, cfg, md, { step = 8 })
  os.execute("rm -rf " .. work .. "/model_run")
  return md, table.concat(req, "\n") .. "\n"
end

return M
