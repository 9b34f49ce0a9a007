-- mtl.parallel: data-parallel training over mtl.dist's ranks (docs/distributed.md).
--
-- The training loop (mtl.train), evaluation (Ranker:evaluate), prediction
-- (mtl.predict) and the benchmark (mtl.bench) call it at fixed points; one
-- process is the N = 1 case of the same calls (every collective returns its
-- input), so a run without mpirun gives the same bits as before.
--
--   local P = parallel.new{model = ranker, tables = F:embedding_tables(), optimizers = opts}
--   reader options: partition = parallel.train_partition(B), batch_size = parallel.local_rows(B)
--   per step:  local global = P:begin_step(step, counts)      -- before forward
--              P:prefetch(ids)                                 -- sharded tables' rows into their views
--              ... forward ...
--              local sums = P:backward(rows, function()        -- backward, then P:reduce
--                return loss * P:scales(counts, global)[k] end)
--              ... optimizer steps ...
--   P:check(step, full)                                        -- the ranks' state is the same
--   parallel.map_batches(next_batch, fn, empty, consume)      -- scoring, in file order
--
-- What is split: the data (each rank reads its own rows of every global
-- batch) and the work on it. What is replicated: the dense parameters and
-- their optimizer state (gradients summed with one bucketed allreduce per
-- step), and the small embedding tables (sparse gradients allgathered, the
-- same lazy update on every rank); a large, row-sharded table (mtl.shard) has its
-- rows split over the ranks: P:prefetch before the forward, the gradients to
-- the owners in P:reduce, each rank's rows in its checkpoint shard.
-- parallel.plan says per table which, and why.
local mtl = require "mtl"
local ffi = require "ffi"
local sys = require "mtl.sys"
local shard = require "mtl.shard"
local shard_state = require "mtl.shard_state"

local dist = mtl.dist
local format = string.format

local parallel = {}

function parallel.rank() return dist.rank() end

-- ---- the data split -----------------------------------------------------------------
-- Rows of rank r in a global batch of B rows: [floor(r B / N), floor((r + 1) B / N)).
function parallel.local_rows(B, rank, size)
  rank, size = rank or dist.rank(), size or dist.size()
  return math.floor((rank + 1) * B / size) - math.floor(rank * B / size)
end

-- The reader partition of training: rank r reads its rows of every global
-- batch of B rows (read with batch_size = local_rows(B): one batch per global
-- batch). A B below the number of ranks would leave ranks without rows.
function parallel.train_partition(B)
  local size = dist.size()
  if B < size then
    error(format("mtl.parallel: data.batch_size %d is smaller than the number of ranks (%d): every rank needs rows", B, size), 0)
  end
  return { index = dist.rank(), count = size, block = B }
end

-- The reader partition of scoring (evaluation, prediction): rank r reads
-- batches of B rows, batch k N + r of the file's batches of B, so that each
-- row is scored in the same batch as in one process (the same bits).
function parallel.score_partition(B)
  return { index = dist.rank(), count = dist.size(), block = dist.size() * B }
end

-- The shuffle seed of rank r in an epoch: rank 0's is the single-process
-- seed, the others' are apart from it by multiples of 2^32.
function parallel.shuffle_seed(seed, epoch)
  return seed * 1000003 + epoch + dist.rank() * 2 ^ 32
end

-- ---- the planner ----------------------------------------------------------------------
parallel.SHARD_MIN_MIB = 256
local SLOTS = { adam = 2, adagrad = 1, sgd = 0 }

-- The placement of a table before it is built, from its options (mtl.Embedding's):
-- "sharded" when its rows with their optimizer state, rows x dim x 4 bytes x
-- (1 + the optimizer's state tensors), exceed `shard_min_mib` MiB (default
-- parallel.SHARD_MIN_MIB; a dynamic table by its initial_capacity), else
-- "replicated"; `placement` ("sharded" | "replicated") overrides the size.
-- One rank always replicates. Returns the placement and the reason.
function parallel.choose(opts, how)
  how = how or {}
  local size = how.size or dist.size()
  local rows = opts.num_buckets or opts.hash_bucket_size or opts.initial_capacity or 1024
  local slots = SLOTS[how.optimizer or "adam"] or 2
  local mib = rows * opts.dim * 4 * (1 + slots) / 2 ^ 20
  local limit = how.shard_min_mib or parallel.SHARD_MIN_MIB
  local what = format("%s%d rows x %d, %.1f MiB with %s state", opts.kind == "dynamic" and "dynamic, " or "",
                      rows, opts.dim, mib, how.optimizer or "adam")
  if size == 1 then return "replicated", what .. ": one rank" end
  if how.placement == "sharded" or how.placement == "replicated" then
    return how.placement, format("%s: %s = \"%s\"", what, how.placement_from or "placement", how.placement)
  elseif how.placement ~= nil then
    error(format("mtl.parallel: placement must be \"sharded\" or \"replicated\", got %s", tostring(how.placement)), 0)
  end
  if mib > limit then return "sharded", format("%s > shard_min_mib %g", what, limit) end
  return "replicated", format("%s <= shard_min_mib %g", what, limit)
end

-- A table as the plan places it: an mtl.Embedding (replicated) or an
-- mtl.shard table (sharded; its view is what the model looks rows up in).
function parallel.embedding(opts, name, how)
  local placement, reason = parallel.choose(opts, how)
  local t = placement == "sharded" and shard.new(opts, name) or mtl.Embedding(opts)
  parallel.reasons[t] = reason
  return t
end

-- Why the planner placed a table as it did (parallel.embedding), by table.
parallel.reasons = setmetatable({}, { __mode = "k" })

-- Whether t is a row-sharded table (mtl.shard).
function parallel.is_sharded(t) return getmetatable(t) == shard.Sharded end

-- One entry per distinct table: {name =, table =, placement =, reason =}:
-- "sharded" for mtl.shard tables, "replicated" for mtl.Embedding ones.
function parallel.plan(tables, size)
  size = size or dist.size()
  local out = {}
  for i, e in ipairs(tables) do
    local t = e.table
    if parallel.is_sharded(t) then
      local rows = t.kind == "dynamic" and format("a dynamic table (%d ids on this rank now)", t.shard:rows())
        or format("%d rows x %d", t.n, t.dim)
      out[i] = { name = e.name, table = t, placement = "sharded",
                 reason = format("%s: sharded by row over %d ranks (owner = %s mod %d)", parallel.reasons[t] or rows,
                                 size, t.kind == "hashed" and "bucket" or "id", size) }
    else
      local mib = t:capacity() * t:dim() * 4 / 2 ^ 20
      local what = t:kind() == "dynamic" and format("a dynamic table (%d rows now)", t:rows())
        or format("%d rows x %d", t:capacity(), t:dim())
      out[i] = { name = e.name, table = t, placement = "replicated",
                 reason = parallel.reasons[t] and format("%s: replicated on all %d ranks", parallel.reasons[t], size)
                   or format("%s, %.1f MiB of weights: replicated on all %d ranks", what, mib, size) }
    end
  end
  return out
end

-- ---- numbers across ranks ---------------------------------------------------------------
-- Every rank's doubles, exactly (their bits travel as int64): a list per rank.
local f64 = ffi.typeof("double[1]")
local i64 = ffi.typeof("int64_t[1]")
function parallel.gather_numbers(list)
  local n = #list
  local bits = mtl.zeros({ n }, "int64")
  local p = ffi.cast("int64_t *", bits:data_ptr())
  for i = 1, n do
    local d = f64(list[i])
    p[i - 1] = ffi.cast("int64_t *", d)[0]
  end
  local all, counts = dist.allgather(bits)
  local q = ffi.cast("int64_t *", all:data_ptr())
  local out, k = {}, 0
  for r = 1, #counts do
    local mine = {}
    for i = 1, counts[r] do
      local b = i64(q[k])
      mine[i] = ffi.cast("double *", b)[0]
      k = k + 1
    end
    out[r] = mine
  end
  return out
end

-- The sum over the ranks of each number, in rank order (exact at N = 1).
function parallel.sum_numbers(list)
  local all = parallel.gather_numbers(list)
  local sums = {}
  for i = 1, #list do
    local s = all[1][i]
    for r = 2, #all do s = s + all[r][i] end
    sums[i] = s
  end
  return sums
end

-- ---- scoring in file order ------------------------------------------------------------------
-- Runs fn on this rank's batches (next_batch() returns the next one or nil)
-- and calls consume(parts) on every rank for every batch of every rank, in
-- file order (with score_partition: batch k N + r of rank r). fn(batch)
-- returns a list of tensors, rows first; `empty` is that list with no rows
-- (for a rank whose batches ran out). One allgather per tensor per round of
-- N batches. before(batch or nil), when given, runs first in every round on
-- every rank (a sharded table's prefetch).
function parallel.map_batches(next_batch, fn, empty, consume, before)
  while true do
    local batch = next_batch()
    if before then before(batch) end
    local mine = batch and fn(batch) or empty
    local gathered, counts = {}, {}
    for i, t in ipairs(mine) do gathered[i], counts[i] = dist.allgather(t) end
    local offsets, any = {}, false
    for i = 1, #mine do offsets[i] = 0 end
    for r = 1, dist.size() do
      if counts[1][r] > 0 then
        local parts = {}
        for i = 1, #mine do parts[i] = gathered[i]:narrow(1, offsets[i] + 1, counts[i][r]) end
        consume(parts)
        any = true
      end
      for i = 1, #mine do offsets[i] = offsets[i] + counts[i][r] end
    end
    if not any then return end
  end
end

-- ---- data-parallel training -------------------------------------------------------------------
-- The dense gradients' allreduce buckets. Small ones are faster in a step:
-- a tensor of at least this size goes as it is (no packing), the small ones
-- are packed into buffers that stay in cache. bench/dist_step.lua, SPEC MMoE
-- at 2 ranks, the allreduce's median in a step: 4 MiB 1.39-1.54 ms, 256 KiB
-- 0.83-1.02 ms (the same call out of a step, on warm data: 0.39-0.5 ms at any
-- size; docs/distributed.md, "Measured (training)").
parallel.BUCKET_BYTES = 256 * 1024

local DataParallel = {}
DataParallel.__index = DataParallel
parallel.DataParallel = DataParallel

-- opts: model (an nn module: its parameters and buffers), tables (a list of
-- {name =, table =}, the distinct embedding tables), optimizers (a list),
-- check_every (steps between state checks, default 100; 0: only at
-- checkpoints), bucket_bytes (allreduce buckets, default parallel.BUCKET_BYTES).
function parallel.new(opts)
  local self = setmetatable({ rank = dist.rank(), size = dist.size() }, DataParallel)
  self.named_params = opts.model:named_parameters()
  self.params = {}
  for i, np in ipairs(self.named_params) do self.params[i] = np[2] end
  self.buffers = {}
  for _, nb in ipairs(opts.model:named_buffers()) do
    if nb[2]:dtype() == "float32" then self.buffers[#self.buffers + 1] = nb end
  end
  self.optimizers = opts.optimizers or {}
  self.check_every = opts.check_every or 100
  self.bucket_bytes = opts.bucket_bytes or parallel.BUCKET_BYTES
  self.plan = parallel.plan(opts.tables or {}, self.size)
  self.replicated, self.sharded = {}, {}
  for _, p in ipairs(self.plan) do
    if p.placement == "replicated" then
      self.replicated[#self.replicated + 1] = p
      if p.table:kind() == "dynamic" then dist.share_sightings(p.table) end
    else
      self.sharded[#self.sharded + 1] = p.table
    end
  end
  self.stats = { steps = 0, seconds = 0, dense_seconds = 0, dense_bytes = 0, sparse_bytes = 0, shard_bytes = 0 }
  return self
end

-- Before a step's forward: names the step in fault messages, sums the
-- ranks' counts (rows and loss denominators; int64, exact) and gives every
-- rank rank 0's random stream (so dropout draws, dynamic tables' new rows
-- and a checkpoint's saved stream are the same on all ranks). counts: a list
-- of whole numbers. Returns the global counts.
function DataParallel:begin_step(step, counts)
  dist.set_context(format("step %d", step))
  local n, v = #counts, {}
  for i = 1, n do v[i] = counts[i] end
  local state = mtl.rand_state() -- 4 x 16 hex digits, sent as 8 halves of 32 bits
  for i = 1, 4 do
    local hi, lo = tonumber(state[i]:sub(1, 8), 16), tonumber(state[i]:sub(9, 16), 16)
    v[n + 2 * i - 1], v[n + 2 * i] = self.rank == 0 and hi or 0, self.rank == 0 and lo or 0
  end
  local g = dist.allreduce(mtl.tensor(v, "int64"), "sum"):values()
  for i = 1, 4 do state[i] = format("%08x%08x", g[n + 2 * i - 1], g[n + 2 * i]) end
  mtl.rand_state(state)
  local global = {}
  for i = 1, n do global[i] = g[i] end
  return global
end

-- Each loss term's share of the global loss: a task's mean over its rows (or
-- its in-space rows) on this rank becomes part of the mean over all ranks'
-- rows when multiplied by local count / global count. counts and global as
-- begin_step's (rows first, then one denominator per loss term). Returns
-- {rows = share of a row mean, [i] = share of loss term i}; 1 where the local
-- count is the global one (one rank), so nothing changes there.
function DataParallel:scales(counts, global)
  local function share(l, g) return (g == 0 or l == g) and 1 or l / g end
  local s = { rows = share(counts[1], global[1]) }
  for i = 2, #counts do s[i - 1] = share(counts[i], global[i]) end
  return s
end

local function zeros_like(p) return mtl.zeros(p:shape()) end

-- After backward: the dense gradients summed over the ranks (one bucketed
-- allreduce, ordered: every rank gets the same bits), with the float32
-- buffers averaged and `sums` (a list of numbers: this rank's shares of the
-- loss values) summed in the same call; then the tables' sparse gradients
-- (P:exchange_sparse). A parameter no rank has a gradient for keeps none.
-- Returns the summed numbers.
function DataParallel:reduce(sums)
  local t0 = sys.now()
  local list, flags = {}, {}
  for i, p in ipairs(self.params) do
    local g = p.grad
    flags[i] = g and 1 or 0
    if not g then
      p:backward(zeros_like(p)) -- a leaf's backward seed becomes its gradient
      g = p.grad
    end
    list[i] = g
  end
  local n = #list
  for _, nb in ipairs(self.buffers) do
    local b = nb[2]
    if self.size > 1 then b:copy(b * (1 / self.size)) end -- averaged: each rank's share
    list[#list + 1] = b
  end
  local sum_t = mtl.tensor(#sums > 0 and sums or { 0 })
  list[#list + 1] = sum_t
  local flag_t = mtl.tensor(#flags > 0 and flags or { 0 }, "int64")
  list[#list + 1] = flag_t
  dist.allreduce_many(list, { op = "sum", bucket_bytes = self.bucket_bytes })
  local f = flag_t:values()
  for i = 1, n do
    if f[i] == 0 then self.params[i]:zero_grad() end
  end
  local bytes = 0
  for _, t in ipairs(list) do bytes = bytes + 4 * t:numel() * (t:dtype() == "int64" and 2 or 1) end
  self.stats.dense_bytes = self.stats.dense_bytes + bytes
  self.stats.dense_seconds = self.stats.dense_seconds + sys.now() - t0
  self:exchange_sparse()
  if #self.sharded > 0 then self.stats.shard_bytes = self.stats.shard_bytes + shard.push_grads(self.sharded) end
  self.stats.steps = self.stats.steps + 1
  self.stats.seconds = self.stats.seconds + sys.now() - t0
  return #sums > 0 and sum_t:values() or {}
end

-- A step's backward and reduction, after the forward: zeroes the
-- optimizers' gradients, and when this rank has rows runs backward of
-- loss_fn() — which returns the loss (this rank's share, scaled) and a list
-- of n further numbers to sum over the ranks (per-task losses, say) — then
-- reduce. A rank without rows adds zeros. Returns the global sums {loss, ...}.
function DataParallel:backward(rows, loss_fn, n)
  for _, o in ipairs(self.optimizers) do o:zero_grad() end
  local sums = { 0 }
  for i = 1, n or 0 do sums[i + 1] = 0 end
  if rows > 0 then
    local loss, extra = loss_fn()
    loss:backward()
    sums[1] = loss:item()
    for i, v in ipairs(extra or {}) do sums[i + 1] = v end
  end
  return self:reduce(sums)
end

-- Before a forward (training, evaluation or prediction alike): the rows of
-- this rank's ids of every sharded table from their owners, into the tables'
-- views (mtl.shard.prefetch: one alltoallv of ids, one of rows). ids: {[table
-- or name] = list of int64 tensors}, the ids the forward will look up in each
-- sharded table (a table missing: none). Every rank calls it, with or without rows.
function DataParallel:prefetch(ids)
  if #self.sharded == 0 then return end
  local list = {}
  for k, st in ipairs(self.sharded) do list[k] = ids[st] or ids[st.name] or {} end
  self.stats.shard_bytes = self.stats.shard_bytes + shard.prefetch(self.sharded, list)
end

-- The replicated tables' sparse gradients: every rank's (ids, rows) of every
-- table in two allgathers (ids with a count per table, then the rows), and
-- each table's gradient replaced by all ranks' entries in rank order (equal
-- ids summed in that order), so every rank applies the same lazy update.
function DataParallel:exchange_sparse()
  local tables = self.replicated
  local T = #tables
  -- one rank: every rank's entries are this rank's, in this order already
  -- (the allgather is the identity), so the copies are skipped
  if T == 0 or self.size == 1 then return end
  local head, ids_list, vals_list = {}, {}, {}
  for k, p in ipairs(tables) do
    local ids, vals = p.table:grad()
    head[k] = ids and ids:numel() or 0
    if ids then
      ids_list[#ids_list + 1] = ids
      vals_list[#vals_list + 1] = vals:reshape(vals:numel())
    end
  end
  table.insert(ids_list, 1, mtl.tensor(head, "int64"))
  local all_ids, id_counts = dist.allgather(mtl.concat(ids_list, 1))
  local all_vals, val_counts = dist.allgather(#vals_list > 0 and mtl.concat(vals_list, 1) or mtl.zeros(0))
  self.stats.sparse_bytes = self.stats.sparse_bytes + 8 * all_ids:numel() + 4 * all_vals:numel()
  for _, p in ipairs(tables) do p.table:zero_grad() end
  local io, vo = 0, 0
  for r = 1, #id_counts do -- rank r's entries of each table, added in rank order
    local counts = all_ids:narrow(1, io + 1, T):values()
    local ip, vp = io + T, vo
    for k, p in ipairs(tables) do
      local c, dim = counts[k], p.table:dim()
      if c > 0 then
        p.table:add_grad(all_ids:narrow(1, ip + 1, c), all_vals:narrow(1, vp + 1, c * dim):reshape(c, dim))
        ip, vp = ip + c, vp + c * dim
      end
    end
    io, vo = io + id_counts[r], vo + val_counts[r]
  end
end

-- ---- the ranks agree ------------------------------------------------------------------------------
-- Named checksums of the replicated state: dense parameters, float buffers,
-- optimizer steps and the state of dense parameters; with `full` also every
-- replicated table (rows, clock, optimizer state).
function DataParallel:checksums(full)
  local names, sums = {}, {}
  local function add(name, v)
    names[#names + 1] = name
    sums[#sums + 1] = type(v) == "number" and v or v:checksum()
  end
  for _, np in ipairs(self.named_params) do add("parameter " .. np[1], np[2]) end
  for _, nb in ipairs(self.buffers) do add("buffer " .. nb[1], nb[2]) end
  for i, o in ipairs(self.optimizers) do
    add(format("optimizer %d steps", i), o.steps)
    local own = {} -- a sharded table's rows differ by rank: not compared
    for _, st in ipairs(self.sharded) do
      local j = shard_state.param_index(o, st.shard)
      if j then own[j] = true end
    end
    for j, st in ipairs(o:state()) do
      if not own[j] and (st.kind == "tensor" or full) then
        local keys = {}
        for k, v in pairs(st) do if type(v) ~= "string" then keys[#keys + 1] = k end end
        table.sort(keys)
        for _, k in ipairs(keys) do add(format("optimizer %d state '%s' of parameter %d", i, k, j), st[k]) end
      end
    end
  end
  if full then
    for _, p in ipairs(self.replicated) do
      local t = p.table
      if t:kind() == "dynamic" then
        local ids, vectors = t:export()
        add("table " .. p.name .. " ids", ids)
        add("table " .. p.name .. " rows", vectors)
        add("table " .. p.name .. " clock", t:steps())
      else
        add("table " .. p.name, t:weight())
      end
    end
  end
  return names, sums
end

-- Checks that every rank holds the same replicated state (checksums
-- gathered and compared with rank 0's); every rank raises the same error,
-- naming the step and the first difference, when they do not.
function DataParallel:check(step, full)
  local names, sums = self:checksums(full)
  local all = parallel.gather_numbers(sums)
  for r = 2, #all do
    for i = 1, math.max(#all[1], #all[r]) do
      if all[r][i] ~= all[1][i] then
        error(format("mtl.parallel: the ranks' replicated state differs at step %d: rank %d's %s differs from rank 0's "
          .. "(dense state is checked every train.check_every = %d steps, tables too at checkpoints)",
          step, r - 1, names[i] or format("entry %d", i), self.check_every), 0)
      end
    end
  end
  return #sums
end

-- Whether the periodic check is due after `step`.
function DataParallel:check_due(step)
  return self.check_every > 0 and step % self.check_every == 0
end

-- ---- checkpoints ------------------------------------------------------------------------------------
-- This rank's shard of the checkpoint (its rows of the sharded tables with
-- their optimizer state and a dynamic table's ids, counters and clock:
-- mtl.shard_state.state), or nil when no table is sharded. A checkpoint writes it
-- as step-N.rank-R.ckpt on every rank (Run:save_checkpoint) and lists those
-- files in its manifest.
function DataParallel:shard_state()
  if #self.sharded == 0 then return nil end
  return shard_state.state(self.sharded, self.optimizers)
end

-- Loads the sharded tables from a checkpoint's shards: `shards` is this
-- rank's shard (what shard_state returned, written at the same number of
-- ranks), or {size = N, load = function(r) return shard r's state end} for a
-- checkpoint of any N (each rank reads every shard in turn and keeps the rows
-- it owns now: key mod this run's size). list: the sharded tables to load
-- (default: all).
function DataParallel:load_shard_state(shards, list)
  if shards == nil then return end
  shard_state.load_state(list or self.sharded, self.optimizers, shards)
end

-- Communication so far: {steps, seconds (in reduce), dense_seconds (its
-- dense part), dense_bytes, sparse_bytes, shard_bytes} (payload bytes this
-- rank sent: dense values allreduced, sparse ids and rows gathered, sharded
-- tables' ids, rows and gradients).
function DataParallel:communication() return self.stats end

return parallel
