-- Row-sharded tables in a loop written on mtl.parallel (spec/dist/sharded_spec.lua).
--
--   sharded.lua train PLACEMENT DIR   trains 30 steps with the three tables
--       "plain" (mtl.Embedding: one process, or replicated) or "sharded"
--       (mtl.shard); prints "r<rank> <key> <values>": every table's lookups
--       of fixed ids after each step (ids<step>: the dynamic table's ids held
--       on any rank), then every parameter; with DIR, writes a checkpoint there
--       (rank 0: the replicated state; every rank its shard)
--   sharded.lua badid                 rank 1 asks for an id out of range at step 7
--   sharded.lua load DIR N            at this run's number of ranks, loads DIR
--       (written by N ranks, sharded), prints the lookups, trains 2 more steps
--       and prints the lookups again
--
-- A fixed (10 rows), a hashed (7 buckets) and a dynamic table (min_count 2,
-- ttl_steps 6: ids are admitted and evicted while it runs), a linear layer;
-- global batches of 12 rows that every rank generates alike and takes its
-- rows of.
local mtl = require "mtl"
local nn = require "mtl.nn"
local parallel = require "mtl.parallel"
local shard = require "mtl.shard"
local shard_state = require "mtl.shard_state"

local dist = mtl.dist
local rank, size = dist.rank(), dist.size()
local B = 12
local mode, arg2, arg3 = arg[1], arg[2], arg[3]
local placement = mode == "train" and arg2 or "sharded"

mtl.seed(5)
local function make(opts, name)
  if placement == "sharded" then return shard.new(opts, name) end
  return mtl.Embedding(opts)
end
local specs = {
  { "fixed", { num_buckets = 10, dim = 3 } },
  { "hashed", { hash_bucket_size = 7, dim = 3 } },
  { "dynamic", { kind = "dynamic", dim = 3, min_count = 2, ttl_steps = 6 } },
}
local tables, raw = {}, {}
for i, s in ipairs(specs) do
  raw[i] = make(s[2], s[1])
  tables[i] = { name = s[1], table = raw[i] }
end
local function looked(i) return placement == "sharded" and raw[i].view or raw[i] end
local function owned(i) return placement == "sharded" and raw[i].shard or raw[i] end

local Model = nn.class("ShardedModel")
function Model:__init() self.linear = nn.Linear(10, 1) end
function Model:forward(x) return self.linear(x) end
local model = Model()
local dense = mtl.optim.adam { params = model:parameters(), lr = 0.05 }
local sparse = mtl.optim.adam { params = { owned(1), owned(2), owned(3) }, lr = 0.05 }
local P = parallel.new { model = model, tables = tables, optimizers = { dense, sparse }, check_every = 5 }

local R = dofile(arg[0]:match("^(.*/)") .. "rows.lua")
local column, say, fmt = R.column, R.say, R.fmt

local function step(s)
  local mine = R.mine(R.global_batch(s, B), rank, size)
  local n = #mine
  local a, b, c = column(mine, "a", "int64"), column(mine, "b", "int64"), column(mine, "c", "int64")
  local global = P:begin_step(s + 1, { n })
  P:prefetch { fixed = { a }, hashed = { b }, dynamic = { c } }
  local scale = P:scales({ n }, global)
  local x = mtl.concat({ looked(1):lookup(a), looked(2):lookup(b), looked(3):lookup(c), column(mine, "x"):reshape(n, 1) }, 2)
  return R.finish_step(P, model, x, mine, scale, { dense, sparse })
end

-- every table's rows of some ids (the dynamic table's default row for ids it does not hold)
local PROBE = { fixed = { 0, 3, 9 }, hashed = { 5, 131, 262, 917 }, dynamic = { 5, 300, 301, 304, 309, 312, 316, 322 } }
local function probe(label)
  for _, t in ipairs(raw) do if placement == "sharded" then t:eval() else if t.eval then t:eval() end end end
  local ids = {}
  for i, s in ipairs(specs) do ids[i] = mtl.tensor(PROBE[s[1]], "int64") end
  P:prefetch { fixed = { ids[1] }, hashed = { ids[2] }, dynamic = { ids[3] } }
  mtl.no_grad(function()
    for i, s in ipairs(specs) do say(label .. "." .. s[1], fmt(looked(i):lookup(ids[i]))) end
  end)
  for _, t in ipairs(raw) do t:train() end
end

-- the ids the dynamic table holds on any rank
local function held_ids()
  local ids = placement == "sharded" and raw[3].shard:export() or raw[3]:export()
  if placement == "sharded" then ids = mtl.core.sort_unique(dist.allgather(ids)) end
  local v = ids:values()
  for i, x in ipairs(v) do v[i] = tostring(x):gsub("LL$", "") end
  return #v > 0 and v or { "-" }
end

local function params()
  for _, np in ipairs(model:named_parameters()) do say("param." .. np[1], fmt(np[2])) end
end

if mode == "train" then
  for s = 0, 29 do
    local total = step(s)
    if P:check_due(s + 1) then P:check(s + 1, true) end
    say("ids" .. (s + 1), held_ids())
    say("loss" .. (s + 1), { string.format("%.9g", total) })
  end
  P:check(30, true)
  params()
  probe("probe")
  local dir = arg3
  if dir then
    local opt_states = {}
    for i, o in ipairs({ dense, sparse }) do opt_states[i] = shard_state.replicated_optim_state(o, P.sharded) end
    if rank == 0 then mtl.save(dir .. "/replicated.ckpt", { params = model:state_dict(), optim = opt_states }) end
    mtl.save(string.format("%s/rank-%d.ckpt", dir, rank), P:shard_state())
  end
elseif mode == "badid" then -- rank 1 (or the only rank) looks up id 10 of the 10-row fixed table at step 7
  P:begin_step(7, { 1 })
  P:prefetch { fixed = { mtl.tensor({ rank == math.min(1, size - 1) and 10 or 3 }, "int64") } }
elseif mode == "load" then
  local dir, n = arg2, tonumber(arg3)
  local rep = mtl.load(dir .. "/replicated.ckpt")
  model:load_state_dict(rep.params)
  for i, o in ipairs({ dense, sparse }) do shard_state.load_replicated_optim_state(o, P.sharded, rep.optim[i]) end
  P:load_shard_state { size = n, load = function(r) return mtl.load(string.format("%s/rank-%d.ckpt", dir, r)) end }
  probe("probe")
  for s = 30, 31 do step(s) end
  say("ids32", held_ids())
  probe("after")
end
io.stdout:flush()
