-- Shared by the sweep specs: a small two-task data set (dir/train.csv) and an
-- MMoE config over it (dir/base.lua, 20 steps).
local mtl = require "mtl"

local function setup(dir)
  mtl.seed(11)
  local x = mtl.rand(1500, 3):values()
  local f = assert(io.open(dir .. "/train.csv", "w"))
  f:write("is_click,is_pay,a,b,c\n")
  for i = 1, 1500 do
    local a, b, c = x[3 * i - 2], x[3 * i - 1], x[3 * i]
    local click = (a + b > 1) and 1 or 0
    local pay = (click == 1 and c > 0.5) and 1 or 0
    f:write(string.format("%d,%d,%.4f,%.4f,%d\n", click, pay, a, b, math.floor(c * 10)))
  end
  f:close()
  local cfg = assert(io.open(dir .. "/base.lua", "w"))
  cfg:write(string.format([[
return {
  data = { train = %q, eval = %q, batch_size = 100,
           columns = { {name = "is_click", type = "float"}, {name = "is_pay", type = "float"},
                       {name = "a", type = "float"}, {name = "b", type = "float"}, {name = "c", type = "int"} },
           labels = { "is_click", "is_pay" } },
  features = { {name = "a", type = "raw", column = "a"}, {name = "b", type = "raw", column = "b"},
               {name = "c", type = "id", column = "c", num_buckets = 10, dim = 4} },
  model = { name = "mmoe", experts = 2, expert = {8}, tower = {4},
            tasks = { {name = "click", label = "is_click"}, {name = "pay", label = "is_pay", weight = 1} } },
  optimizer = { dense = { name = "adam", lr = 0.01 } },
  train = { steps = 20, log_every = 1000 },
}
]], dir .. "/train.csv", dir .. "/train.csv"))
  cfg:close()
end

return setup
