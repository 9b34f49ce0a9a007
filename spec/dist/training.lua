-- Shared by the distributed-training specs (spec/dist/*_spec.lua): a small
-- two-task data set (spec/cli/tiny.lua's rows), configs of the five models
-- over it, and comparisons of checkpoints.
local tiny = require "cli.tiny"
local mtl = require "mtl"

local M = {}

-- The five models at small sizes; pay is masked by click (a task space)
-- where the model takes masks, so the loss denominators differ per rank.
M.MODELS = {
  shared_bottom = [[name = "shared_bottom", bottom = {8}, tower = {4},
    tasks = { {name = "click", label = "is_click"}, {name = "pay", label = "is_pay", mask = "is_click"} }]],
  mmoe = [[name = "mmoe", experts = 3, expert = {8}, tower = {4},
    tasks = { {name = "click", label = "is_click"}, {name = "pay", label = "is_pay", mask = "is_click"} }]],
  ple = [[name = "ple", levels = 2, specific = 1, shared = 1, expert = {8}, tower = {4},
    tasks = { {name = "click", label = "is_click"}, {name = "pay", label = "is_pay", mask = "is_click"} }]],
  esmm = [[name = "esmm", tower = {8, 4}, ctr = {name = "ctr", label = "is_click"}, cvr = {name = "cvr", label = "is_pay"}]],
  dbmtl = [[name = "dbmtl", bottom = {8}, tower = {4},
    tasks = { {name = "click", label = "is_click", relation = {4}},
              {name = "pay", label = "is_pay", relations = {"click"}, mask = "is_click"} }]],
}
M.NAMES = { "shared_bottom", "mmoe", "ple", "esmm", "dbmtl" }

-- Writes dir/train.csv (rows), dir/test.csv and dir/<model>.lua for every
-- model: a fixed table (user), a hashed one (item), two z-scored numbers.
-- opts: rows (1210), batch (25), epochs (2), shuffle (0), train (extra
-- Lua source in the train table), raw (numbers as they are: no z-score, so
-- nothing is fitted before training).
function M.write(dir, opts)
  opts = opts or {}
  tiny.write_data(dir .. "/train.csv", opts.rows or 1210, 21)
  tiny.write_data(dir .. "/test.csv", 300, 22)
  local norm = opts.raw and "" or ', normalize = "zscore"'
  for name, model in pairs(M.MODELS) do
    local f = assert(io.open(dir .. "/" .. name .. ".lua", "w"))
    f:write(string.format([[
return {
  data = { train = %q, eval = %q, batch_size = %d, shuffle_buffer = %d,
]] .. tiny.COLUMNS .. [[

  features = { {name = "user", type = "id", column = "user", num_buckets = 20, dim = 4},
               {name = "item", type = "id", column = "item", hash_bucket_size = 16, dim = 4},
               {name = "a", type = "raw", column = "a"%s},
               {name = "b", type = "raw", column = "b"%s} },
  model = { %s },
  optimizer = { dense = { name = "adam", lr = 0.01 }, sparse = { name = "adam", lr = 0.01 } },
  train = { epochs = %d, log_every = 1000, seed = 3, threads = 1 %s },
  eval = { gauc = { group = "user", reduction = "mean" } },
  model_dir = %q,
}
]], dir .. "/train.csv", dir .. "/test.csv", opts.batch or 25, opts.shuffle or 0, norm, norm, model, opts.epochs or 2,
      opts.train or "", dir .. "/" .. name .. "-run"))
    f:close()
  end
end

-- Every tensor of a run checkpoint (model, tables, optimizers) by path.
function M.tensors(path)
  local out = {}
  local function walk(v, p)
    if type(v) == "table" then
      for k, x in pairs(v) do walk(x, p .. "." .. tostring(k)) end
    elseif type(v) == "userdata" then
      out[p] = v
    end
  end
  local st = mtl.load(path)
  walk(st.model, "model")
  walk(st.features.tables, "tables")
  walk(st.optimizers, "optimizers")
  return out, st
end

-- The largest difference between two checkpoints' float tensors, relative
-- to each tensor's largest magnitude: max |a - b| / max |a|; and its tensor.
function M.max_relative_difference(path_a, path_b)
  local A, B = M.tensors(path_a), M.tensors(path_b)
  local worst, which, n = 0, nil, 0
  for k, a in pairs(A) do
    local b = B[k] or error(k .. " is missing from " .. path_b)
    if table.concat(a:shape(), "x") ~= table.concat(b:shape(), "x") then error(k .. ": the shapes differ") end
    if a:dtype() == "float32" and a:numel() > 0 then
      n = n + 1
      local scale = math.max(mtl.max(mtl.abs(a)):item(), 1e-30)
      local d = mtl.max(mtl.abs(a - b)):item() / scale
      if d > worst then worst, which = d, k end
    elseif a:checksum() ~= b:checksum() then
      error(k .. " differs")
    end
  end
  for k in pairs(B) do
    if not A[k] then error(k .. " is missing from " .. path_a) end
  end
  return worst, which, n
end

-- The latest complete checkpoint of a run directory.
function M.last_checkpoint(run_dir)
  local all = mtl.checkpoint.list(run_dir .. "/checkpoints")
  return all[#all]
end

return M
