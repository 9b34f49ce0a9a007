-- mtl.feature_groups: feature groups, the input layer models read
-- (docs/features.md, "Groups"), as EasyRec's feature_groups:
--
--   groups = {
--     { name = "all", features = { "user_id", "brand", ... },      -- concatenated in this order
--       sequences = { { name = "seq", query = { "brand" },          -- DIN target attention (nn.DIN)
--                       history = { "hist_brand" }, aux = {},        -- sequence features
--                       attention = { hidden = {128, 64, 32, 1}, batch_norm = true },
--                       need_query = true, transform = nil } },
--       variational_dropout = { lambda = 0.01, per_dim = false } }, -- nn.VariationalDropout
--   }
--
-- A group's x is [its features' values ; each sequence's attention output]
-- (variational dropout, when set, covers the features). Features builds this
-- module (attach) once its tables exist: F.feature_groups, F.main_group (the
-- group models read: "all", else the first), F.group_dims (their widths),
-- F.group_widths (the widths of each group's list). F:groups(batch)
-- returns {name = x} and {name = {each feature's value, then each
-- sequence's output}} (a backbone's feature lists).
local mtl = require "mtl"
local nn = require "mtl.nn"
local core = mtl.core

local groups = {}

local function fail(fmt, ...) error("mtl.features: " .. string.format(fmt, ...), 0) end

-- The ids of value k of each step of a raw sequence with k values per step:
-- 0, 1, .., k-1 repeated (the rows of its k learned vectors); every step must
-- have exactly k values.
local function projection_ids(s, steps, n_values)
  local k, S = s.raw_dim, steps:numel() - 1
  local st = steps:values()
  for i = 1, S do
    if st[i + 1] - st[i] ~= k then
      fail("feature '%s': step %d has %d values, expected %d (raw_dim)", s.name, i, st[i + 1] - st[i], k)
    end
  end
  assert(n_values == S * k)
  return mtl.arange(0, k, 1, "int64"):reshape(1, k):expand(S, k):contiguous():reshape(S * k)
end

-- The ids a sequence column's steps look up (all steps' values, flat), and
-- for a raw sequence its values (the weights of its k vectors).
function groups.step_ids(F, s, col)
  if type(col) ~= "table" or not col.steps then fail("feature '%s' needs a sequence column (type \"seq\")", s.name) end
  if s.raw_dim then
    local v = col.values or fail("feature '%s' needs a sequence of numbers (values = \"float\")", s.name)
    return projection_ids(s, col.steps, v:numel()), v
  end
  local ids = col.ids
  if s.boundaries then
    local v = col.values or fail("feature '%s' needs a sequence of numbers (values = \"float\")", s.name)
    ids = core.bucketize(v, F:boundaries(s))
  elseif not ids then
    fail("feature '%s' needs a sequence of ids (values = \"int64\" or \"string\")", s.name)
  end
  local keys = F.vocab[s.shared or s.name]
  if keys then ids = core.vocab_index(ids, keys) end
  return ids
end

-- Step embeddings [S, dim] of a sequence column, pooled over each step's values.
local function step_embeddings(F, s, col)
  local t = F.tables[s.name]
  local steps = col.steps
  local starts = steps:narrow(1, 1, steps:numel() - 1)
  local ids, weights = groups.step_ids(F, s, col)
  if weights then return t:lookup_bag(ids, starts, { combiner = "sum", weights = weights, base = 0 }) end
  return t:lookup_bag(ids, starts, { combiner = s.combiner or "sum", base = 0 })
end

-- A sequence feature's padded steps [B, L, dim], mask [B, L], and offsets.
function groups.sequence(F, s, cols)
  local col = cols[s.column] or fail("the batch has no column '%s'", s.column)
  if type(col) ~= "table" or not col.steps then fail("feature '%s' needs a sequence column (type \"seq\")", s.name) end
  local B = col.offsets:numel() - 1
  local index, mask = core.seq_pad(col.offsets, s.length or 0, s.max_len or 0)
  local L = mask:size(2)
  local S = col.steps:numel() - 1
  local padded
  if S == 0 then
    padded = mtl.zeros(B, L, s.dim)
  else
    local E = step_embeddings(F, s, col)                           -- [S, dim]
    padded = mtl.concat({ E, mtl.zeros(1, s.dim) }, 1):index_select(1, index):reshape(B, L, s.dim)
  end
  if s.length and s.raw_dim then mask = mtl.ones(B, L) end       -- EasyRec: a raw sequence is L values, zeros included
  return padded, mask, col.offsets
end

-- ---- the module ------------------------------------------------------------------------------------
local Groups = nn.class("FeatureGroups")
groups.Groups = Groups

local function feature(F, name, what)
  return F.by_name[name] or fail("%s names an unknown feature '%s'", what, tostring(name))
end

local function width(s) return s.embedded and s.dim or 1 end

-- One sequence group's DIN block (dims from its features).
local function din_block(F, g, q)
  local where = string.format("group '%s', sequence '%s'", g.name, tostring(q.name))
  local dq, dh, aux = 0, 0, {}
  for _, n in ipairs(q.query or {}) do
    local s = feature(F, n, where .. " query")
    if s.type == "sequence" then fail("%s: query feature '%s' is a sequence", where, n) end
    dq = dq + width(s)
  end
  for _, n in ipairs(q.history or {}) do
    local s = feature(F, n, where .. " history")
    if s.type ~= "sequence" then fail("%s: history feature '%s' is not a sequence", where, n) end
    dh = dh + s.dim
  end
  for i, n in ipairs(q.aux or {}) do
    local s = feature(F, n, where .. " aux")
    if s.type ~= "sequence" then fail("%s: aux feature '%s' is not a sequence", where, n) end
    aux[i] = s.dim
  end
  if dq == 0 or dh == 0 then fail("%s needs query and history features", where) end
  local a = q.attention or {}
  local ok, block = pcall(nn.DIN, { query = dq, history = dh, aux = aux, hidden = a.hidden, activation = a.activation,
    batch_norm = a.batch_norm, dropout = a.dropout, need_query = q.need_query, transform = q.transform })
  if not ok then fail("%s: %s", where, tostring(block):gsub("^nn%.DIN: ", "")) end
  return block
end

-- F: the Features (built); specs: the config's groups.
function Groups:__init(F, specs)
  self.specs, self.dims, self.widths = specs, {}, {}
  for _, g in ipairs(specs) do
    local dims, d = {}, 0
    for i, n in ipairs(g.features or {}) do
      local s = feature(F, n, "group '" .. g.name .. "'")
      if s.type == "sequence" then fail("group '%s': sequence feature '%s' is read through sequences (attention)", g.name, n) end
      dims[i] = width(s)
      d = d + dims[i]
    end
    if g.variational_dropout and #dims > 0 then
      local v = g.variational_dropout
      self["vd_" .. g.name] = nn.VariationalDropout{ dims = dims, lambda = v.lambda, per_dim = v.per_dim }
    end
    local widths = { unpack(dims) }
    for _, q in ipairs(g.sequences or {}) do
      local block = din_block(F, g, q)
      self["din_" .. g.name .. "_" .. q.name] = block
      d = d + block.output_dim
      widths[#widths + 1] = block.output_dim
    end
    if d == 0 then fail("group '%s' has no features", g.name) end
    self.dims[g.name], self.widths[g.name] = d, widths
  end
end

local function same_values(a, b)
  if a:numel() ~= b:numel() then return false end
  local va, vb = a:values(), b:values()
  for i = 1, #va do if va[i] ~= vb[i] then return false end end
  return true
end

-- The inputs of one sequence group: query [B, dq], history [B, L, dh], mask, aux list.
local function sequence_inputs(F, q, cols, values)
  local query = {}
  for i, n in ipairs(q.query) do query[i] = values[n] or F:value(F.by_name[n], cols) end
  local hist, mask, offsets = {}, nil, nil
  for i, n in ipairs(q.history) do
    local h, m, off = F:sequence(F.by_name[n], cols)
    if offsets and not same_values(off, offsets) then
      fail("sequence '%s': history features '%s' and '%s' differ in length on some row", q.name, q.history[1], n)
    end
    hist[i], mask, offsets = h, m, off
  end
  local aux = {}
  for i, n in ipairs(q.aux or {}) do aux[i] = (F:sequence(F.by_name[n], cols)) end
  local cat = function(t, d) return #t == 1 and t[1] or mtl.concat(t, d) end
  return cat(query, 2), cat(hist, 3), mask, aux
end

-- x [B, sum(dims)] -> its column blocks of the given widths.
local function split(x, dims)
  if #dims == 1 then return { x } end
  local parts, at = {}, 1
  for i, d in ipairs(dims) do parts[i], at = x:narrow(2, at, d), at + d end
  return parts
end

-- F, a batch's columns -> {group = x [B, D_g]}, {group = {values}}.
function Groups:forward(F, cols)
  local xs, lists = {}, {}
  self.penalties = {}
  for _, g in ipairs(self.specs) do
    local parts, values = {}, {}
    for i, n in ipairs(g.features or {}) do
      parts[i] = F:value(F.by_name[n], cols)
      values[n] = parts[i]
    end
    local vd = self["vd_" .. g.name]
    if vd then
      local x = vd(#parts == 1 and parts[1] or mtl.concat(parts, 2))
      self.penalties[#self.penalties + 1] = vd:aux_loss()
      parts = split(x, vd.dims)
    end
    for _, q in ipairs(g.sequences or {}) do
      parts[#parts + 1] = self["din_" .. g.name .. "_" .. q.name](sequence_inputs(F, q, cols, values))
    end
    lists[g.name] = parts
    xs[g.name] = #parts == 1 and parts[1] or mtl.concat(parts, 2)
  end
  return xs, lists
end

-- The variational dropout penalties of the last forward, summed (or nil).
function Groups:aux_loss()
  local total
  for _, p in ipairs(self.penalties or {}) do total = total and total + p or p end
  return total
end

-- Features F (built) with groups specs: its group module and main group.
function groups.attach(F)
  local specs = F.group_specs
  local module = Groups(F, specs)
  F.feature_groups = module
  F.group_dims, F.group_widths = module.dims, module.widths
  local main = specs[1].name
  for _, g in ipairs(specs) do if g.name == "all" then main = "all" end end
  F.main_group = main
  F.output_dim = module.dims[main]
end

return groups
