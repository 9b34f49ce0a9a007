-- A training loop written on mtl.parallel (spec/dist/tables_spec.lua): a
-- fixed, a hashed and a dynamic table (min_count 2, ttl_steps 6: ids are
-- admitted and evicted while it runs) and a linear layer, trained on global
-- batches of 12 rows that every rank generates alike and takes its rows of.
-- Prints "r<rank> <key> <values>": the dynamic table's ids after each step,
-- and at the end every parameter and table row (%.9g). With the argument
-- "corrupt", rank 1 changes a weight after step 7 (the check at step 10 must
-- stop every rank).
local mtl = require "mtl"
local nn = require "mtl.nn"
local parallel = require "mtl.parallel"

local dist = mtl.dist
local rank, size = dist.rank(), dist.size()
local B, STEPS = 12, 40

mtl.seed(5)
local fixed = mtl.Embedding { num_buckets = 10, dim = 3 }
local hashed = mtl.Embedding { hash_bucket_size = 7, dim = 3 }
local dynamic = mtl.Embedding { kind = "dynamic", dim = 3, min_count = 2, ttl_steps = 6 }
local Model = nn.class("TablesModel")
function Model:__init() self.linear = nn.Linear(10, 1) end
function Model:forward(x) return self.linear(x) end
local model = Model()
local tables = { { name = "fixed", table = fixed }, { name = "hashed", table = hashed }, { name = "dynamic", table = dynamic } }
local dense = mtl.optim.adam { params = model:parameters(), lr = 0.05 }
local sparse = mtl.optim.adam { params = { fixed, hashed, dynamic }, lr = 0.05 }
local P = parallel.new { model = model, tables = tables, optimizers = { dense, sparse }, check_every = 5 }

-- global batch s: row i has ids (a, b, c), a number x and a label y
local function global_batch(s)
  local rows = {}
  for i = 1, B do
    local k = s * B + i
    rows[i] = { a = (k * 7) % 10, b = k * 131 % 1000, c = (k * k) % 23 + 100 * math.floor(s / 8), x = ((k * 37) % 17) / 17,
                y = (k % 3 == 0) and 1 or 0 }
  end
  return rows
end

local function column(rows, key, dtype)
  local v = {}
  for i, r in ipairs(rows) do v[i] = r[key] end
  return #v > 0 and mtl.tensor(v, dtype) or mtl.zeros({ 0 }, dtype)
end

local function say(key, values)
  io.write(string.format("r%d %s %s\n", rank, key, table.concat(values, " ")))
end

for s = 0, STEPS - 1 do
  local all = global_batch(s)
  local lo, hi = math.floor(rank * B / size), math.floor((rank + 1) * B / size)
  local mine = {}
  for i = lo + 1, hi do mine[#mine + 1] = all[i] end
  local n = #mine
  local global = P:begin_step(s + 1, { n })
  local scale = P:scales({ n }, global)
  local x = mtl.concat({ fixed:lookup(column(mine, "a", "int64")), hashed:lookup(column(mine, "b", "int64")),
                         dynamic:lookup(column(mine, "c", "int64")), column(mine, "x"):reshape(n, 1) }, 2)
  local logits = model(x):reshape(n)
  local total = P:backward(n, function()
    local loss = mtl.binary_cross_entropy_with_logits(logits, column(mine, "y"))
    return scale.rows ~= 1 and loss * scale.rows or loss
  end)[1]
  dense:step()
  sparse:step()
  if arg[1] == "corrupt" and rank == 1 and s + 1 == 7 then
    local w = model.linear.weight
    mtl.no_grad(function() w:copy(w + 1e-6) end)
  end
  if P:check_due(s + 1) then P:check(s + 1, true) end
  local ids = dynamic:export()
  say("ids" .. (s + 1), #ids:values() > 0 and ids:values() or { "-" })
  say("loss" .. (s + 1), { string.format("%.9g", total) })
end
P:check(STEPS, true)
for _, np in ipairs(model:named_parameters()) do
  local v = {}
  for i, x in ipairs(np[2]:values()) do v[i] = string.format("%.9g", x) end
  say("param." .. np[1], v)
end
for _, e in ipairs(tables) do
  local ids, vectors = e.table:export()
  local v = {}
  for i, x in ipairs(vectors:values()) do v[i] = string.format("%.9g", x) end
  say("rows." .. e.name, v)
  say("rowids." .. e.name, ids:values())
end
io.stdout:flush()
