-- mtl.shard_state: the checkpoints of row-sharded tables (mtl.shard;
-- docs/distributed.md, "Row-sharded tables"): each rank's shard, and loading
-- shards written at any number of ranks N at this run's M (each rank keeps
-- the rows it owns now: key mod M), or assembled into whole tables.
local mtl = require "mtl"
local ffi = require "ffi"
local shard = require "mtl.shard"

local dist = mtl.dist
local format = string.format
local floor = math.floor
local owner_of = shard.owner_of

local i64p = ffi.typeof("int64_t *")
local f32p = ffi.typeof("float *")
local function ptr(t, ct) return ffi.cast(ct, t:data_ptr()) end

local M = {}

-- ---- checkpoints ------------------------------------------------------------------------
-- The position of table t among optimizer o's parameters (groups in order), or nil.
function M.param_index(o, t)
  local j = 0
  for _, g in ipairs(o.groups or {}) do
    for _, p in ipairs(g.params) do
      j = j + 1
      if rawequal(p, t) then return j end
    end
  end
  return nil
end

-- This rank's shard of a checkpoint: {format, rank, size, tables = {[name] =
-- {kind, dim, n, table = the shard's state_dict, optim = {[i] = optimizer i's
-- state of it}}}}.
function M.state(list, optimizers)
  local out = { format = "mtl-shard-1", rank = dist.rank(), size = dist.size(), tables = {} }
  for _, st in ipairs(list) do
    local e = { kind = st.kind, dim = st.dim, n = st.n, table = st.shard:state_dict(), optim = {} }
    for i, o in ipairs(optimizers) do
      local j = M.param_index(o, st.shard)
      if j then e.optim[i] = o:state_dict().params[j] end
    end
    out.tables[st.name] = e
  end
  return out
end

-- The [rows, dim] tensors of an entry (a table's state or an optimizer's
-- state of it), contiguous, by field name.
local function row_tensors(e)
  local out = {}
  for k, v in pairs(e) do
    if type(v) == "userdata" and v.dim and v:dim() == 2 then out[k] = v:contiguous() end
  end
  return out
end

-- Copies rows of src's [rows, dim] fields into dst's fields of the same name:
-- pairs_list = {{src row, dst row}, ...} (0-based).
local function copy_rows(src, dst, pairs_list, dim)
  local sp = {}
  for k, t in pairs(row_tensors(src)) do sp[k] = ptr(t, f32p) end
  for k, t in pairs(dst) do
    local s = sp[k]
    if s then
      local d = ptr(t, f32p)
      for _, pr in ipairs(pairs_list) do ffi.copy(d + pr[2] * dim, s + pr[1] * dim, 4 * dim) end
    end
  end
end

-- A fixed or hashed table's rows of the old shards (N = how.size, state r from
-- how.load(r)) that this rank owns now, with their optimizer state.
local function reshard_rows(st, name, how)
  local to, me, dim = st.size, st.rank, st.dim
  local L = math.max(st.local_n, 1)
  local tstate = { weight = mtl.zeros(L, dim) }
  local ostate = {}
  for r = 0, how.size - 1 do
    local old = how.load(r).tables[name] or error(format("mtl.shard: shard %d of the checkpoint has no table %s", r, name), 0)
    if old.n ~= st.n or old.dim ~= dim then
      error(format("mtl.shard: table %s: the checkpoint's has %s rows x %d, this one %d x %d", name, tostring(old.n), old.dim, st.n, dim), 0)
    end
    local moves = {} -- {old local row, new local row}
    local old_n = shard.local_rows(st.n, r, how.size)
    for i = 0, old_n - 1 do
      local key = r + i * how.size
      if key % to == me then moves[#moves + 1] = { i, floor(key / to) } end
    end
    copy_rows(old.table, tstate, moves, dim)
    for i, e in pairs(old.optim) do
      if not ostate[i] then
        ostate[i] = {}
        for k, v in pairs(e) do
          ostate[i][k] = (type(v) == "userdata" and v.dim and v:dim() == 2) and mtl.zeros(L, dim) or v
        end
      end
      local rows = {}
      for k, v in pairs(ostate[i]) do if type(v) == "userdata" and v.dim and v:dim() == 2 then rows[k] = v end end
      copy_rows(e, rows, moves, dim)
    end
    collectgarbage()
  end
  tstate.kind, tstate.dim = st.whole and st.kind or "fixed", dim
  return tstate, ostate
end

-- A dynamic table's ids (and their rows, counters, optimizer state) of the
-- old shards that this rank owns now.
local function reshard_ids(st, name, how)
  local to, me = st.size, st.rank
  local keep_ids, keep = {}, {}
  local parts = { ids = {}, weight = {}, last_seen = {}, pending_ids = {}, pending_counts = {}, pending_seen = {} }
  local oparts, ofirst = {}, {}
  local first
  for r = 0, how.size - 1 do
    local old = how.load(r).tables[name] or error(format("mtl.shard: shard %d of the checkpoint has no table %s", r, name), 0)
    local t = old.table
    first = first or t
    local function mine(ids)
      local idx = {}
      local p = ptr(ids:contiguous(), i64p)
      for i = 0, ids:numel() - 1 do if owner_of(p[i], to) == me then idx[#idx + 1] = i end end
      return idx
    end
    local function take(tensor, idx)
      if #idx == 0 then return nil end
      local list = {}
      for n, i in ipairs(idx) do list[n] = i + 1 end
      return tensor:index_select(1, mtl.tensor(list, "int64"))
    end
    local idx = mine(t.ids)
    for _, k in ipairs({ "ids", "weight", "last_seen" }) do parts[k][#parts[k] + 1] = t[k] and take(t[k], idx) end
    if t.pending_ids then
      local pidx = mine(t.pending_ids)
      for _, k in ipairs({ "pending_ids", "pending_counts", "pending_seen" }) do parts[k][#parts[k] + 1] = take(t[k], pidx) end
    end
    for i, e in pairs(old.optim) do
      ofirst[i] = ofirst[i] or e
      oparts[i] = oparts[i] or {}
      local oidx = mine(e.ids)
      for k, v in pairs(e) do
        if type(v) == "userdata" then
          oparts[i][k] = oparts[i][k] or {}
          oparts[i][k][#oparts[i][k] + 1] = take(v, oidx)
        end
      end
    end
    collectgarbage()
  end
  local function join(list, like)
    if #list == 0 then
      local shape = like:shape()
      shape[1] = 0
      return mtl.zeros(shape, like:dtype())
    end
    return #list == 1 and list[1] or mtl.concat(list, 1)
  end
  local tstate = {}
  for k, v in pairs(first) do tstate[k] = v end
  for k, list in pairs(parts) do if first[k] then tstate[k] = join(list, first[k]) end end
  local ostate = {}
  for i, e in pairs(ofirst) do
    ostate[i] = {}
    for k, v in pairs(e) do ostate[i][k] = type(v) == "userdata" and join(oparts[i][k], v) or v end
  end
  return tstate, ostate
end

-- Optimizer o's state_dict without the sharded tables' state (their entries
-- {kind = "sharded"}): the replicated part of a checkpoint.
function M.replicated_optim_state(o, list)
  local sd = o:state_dict()
  for _, st in ipairs(list) do
    local j = M.param_index(o, st.shard)
    if j then sd.params[j] = { kind = "sharded" } end
  end
  return sd
end

-- Loads such a state_dict into o, keeping the sharded tables' current state.
function M.load_replicated_optim_state(o, list, sd)
  local now
  for j, e in ipairs(sd.params or {}) do
    if type(e) == "table" and e.kind == "sharded" then
      now = now or o:state_dict()
      sd.params[j] = now.params[j]
    end
  end
  o:load_state_dict(sd)
end

-- A sharded table's whole state from a checkpoint's N shards (how = {size =
-- N, load = function(r)}): the state_dict of the single-process table (its
-- kind's) and each optimizer's state of it ({[i] = entry}), for a run or a
-- model that holds it replicated.
function M.assemble(name, how)
  local first = how.load(0).tables[name] or error(format("mtl.shard: shard 0 of the checkpoint has no table %s", name), 0)
  local whole = { kind = first.kind, dim = first.dim, n = first.n, size = 1, rank = 0, local_n = first.n, whole = true }
  if first.kind == "dynamic" then return reshard_ids(whole, name, how) end
  return reshard_rows(whole, name, how)
end

-- A checkpoint written with these tables whole (replicated): each sharded
-- table of `list` found in tables_state (name -> state_dict) is loaded as
-- the shard of a 1-rank checkpoint (this rank keeps its rows, with their
-- state from opt_states[i], the optimizers' state_dicts, whose entries for
-- it become {kind = "sharded"} so that they load the rest alike).
function M.split_replicated(list, optimizers, tables_state, opt_states)
  for _, st in ipairs(list) do
    local sd = tables_state[st.name]
    if sd then
      local one = { kind = st.kind, dim = st.dim, n = st.n, table = sd, optim = {} }
      for i, o in ipairs(optimizers) do
        local j = M.param_index(o, st.shard)
        if j and opt_states[i] then
          one.optim[i] = opt_states[i].params[j]
          opt_states[i].params[j] = { kind = "sharded" }
        end
      end
      M.load_state({ st }, optimizers, { size = 1, load = function() return { tables = { [st.name] = one } } end })
      tables_state[st.name] = nil
    end
  end
end

-- A loader of a checkpoint's shards that keeps only the last one read:
-- {size = N, load = function(r)} over files path_of(r).
function M.files(n, path_of)
  local last, state
  return { size = n, load = function(r)
    if last ~= r then last, state = r, nil; collectgarbage(); state = mtl.load(path_of(r)) end
    return state
  end }
end

-- A run checkpoint's state `st`, read from `path` (…/step-N.ckpt), with its
-- sharded tables assembled whole from the shard files its manifest lists
-- (for mtl eval, predict and export, which hold every table whole). A
-- checkpoint without sharded tables is left as it is.
function M.complete(st, path)
  local dir, step = path:match("^(.*)/step%-(%d+)%.ckpt$")
  if not dir or type(st.features) ~= "table" then return st end
  local ok, manifest = pcall(mtl.checkpoint.read_manifest, dir, tonumber(step))
  if not ok or not manifest then return st end
  st.features.tables = st.features.tables or {}
  local shards = M.files(manifest.ranks, function(r) return format("%s/step-%s.rank-%d.ckpt", dir, step, r) end)
  for name, placement in pairs(manifest.tables or {}) do
    if placement == "sharded" and not st.features.tables[name] then
      st.features.tables[name] = (M.assemble(name, shards))
    end
  end
  return st
end

-- Loads the sharded tables from a checkpoint (parallel's load_shard_state):
-- `shards` is this rank's own state (same N), or {size = N, load = function(r)}.
function M.load_state(list, optimizers, shards)
  local how = shards
  if shards.format == "mtl-shard-1" then
    if shards.size ~= dist.size() or shards.rank ~= dist.rank() then
      error(format("mtl.shard: the shard is rank %d of %d, this is rank %d of %d", shards.rank, shards.size,
                   dist.rank(), dist.size()), 0)
    end
    how = { size = shards.size, load = function() return shards end, same = true }
  end
  for _, st in ipairs(list) do
    local tstate, ostate
    if how.same then
      local e = shards.tables[st.name] or error(format("mtl.shard: the shard has no table %s", st.name), 0)
      tstate, ostate = e.table, e.optim
    elseif st.kind == "dynamic" then
      tstate, ostate = reshard_ids(st, st.name, how)
    else
      tstate, ostate = reshard_rows(st, st.name, how)
    end
    st.shard:load_state_dict(tstate)
    M.load_optim_entries(optimizers, st.shard, ostate)
  end
end

-- Each optimizer's state of table t ({[i] = entry}, state_dict params entries) into it.
function M.load_optim_entries(optimizers, t, entries)
  for i, o in ipairs(optimizers) do
    local j = M.param_index(o, t)
    if j and entries[i] then
      local sd = o:state_dict()
      sd.params[j] = entries[i]
      o:load_state_dict(sd)
    end
  end
end

return M
