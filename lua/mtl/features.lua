-- mtl.features: feature columns (docs/features.md).
--
--   local F = features.new(cfg.features, cfg.data[, cfg.groups])  -- an nn module
--   F:fit(files)                  -- one pass over training data (means, bins, ...)
--   local reader = mtl.data.csv(F:reader_options(files, batch_size))
--   local x = F(batch)            -- [B, D]: embeddings in config order, then numbers
--   local xs, lists = F:groups(batch)   -- with groups: {group = [B, D_g]}, per-feature lists
--
-- Feature types (EasyRec's): id, raw, tag, combo, lookup, sequence. Groups
-- (lua/mtl/feature_groups.lua) select features, attend over sequences (DIN)
-- and apply variational dropout; without groups x is every non-sequence
-- feature. What fitting learns is kept in F.fitted and saved with the model,
-- so training, evaluation, prediction and export all apply exactly the same
-- transform.
local mtl = require "mtl"
local nn = require "mtl.nn"
local core = mtl.core

local features = {}

local TYPES = { id = true, raw = true, tag = true, combo = true, lookup = true, sequence = true }
local KEYS = {
  name = true, type = true, column = true, columns = true, dim = true, num_buckets = true,
  hash_bucket_size = true, vocab = true, shared = true, combiner = true, separator = true,
  normalize = true, boundaries = true, bins = true, key = true, weighted = true, init_scale = true,
  missing = true, kv_separator = true, vocab_file = true, max_len = true, length = true, raw_dim = true,
}

-- Reader column types for config column types.
local READER_TYPE = { int = "int64", int64 = "int64", float = "float", string = "string",
                      ids = "multi", multi = "multi", kv = "kv", seq = "seq", skip = "skip" }
features.READER_TYPE = READER_TYPE

local function fail(fmt, ...) error("mtl.features: " .. string.format(fmt, ...), 0) end

-- ---- validation -----------------------------------------------------------------
local function check_spec(i, f, columns)
  if type(f) ~= "table" then fail("feature %d must be a table", i) end
  local where = string.format("feature %d (%s)", i, tostring(f.name))
  for k in pairs(f) do
    if not KEYS[k] then fail("%s: unknown key '%s'", where, tostring(k)) end
  end
  if type(f.name) ~= "string" then fail("feature %d needs a name", i) end
  if not TYPES[f.type] then
    fail("%s: unknown type '%s' (expected id, raw, tag, combo, lookup or sequence)", where, tostring(f.type))
  end
  local cols = f.type == "combo" and f.columns or { f.column }
  if f.type == "combo" and (type(cols) ~= "table" or #cols < 2) then
    fail("%s: a combo feature needs columns = {two or more column names}", where)
  end
  if f.type == "lookup" then cols = { f.column, f.key } end
  for _, c in ipairs(cols) do
    if type(c) ~= "string" then fail("%s: needs a column name", where) end
    if columns and not columns[c] then fail("%s: column '%s' is not in data.columns", where, c) end
  end
  -- a raw feature with dim and no buckets is a learned vector times the value (EasyRec's raw_input_dim)
  local embedded = f.type == "id" or f.type == "tag" or f.type == "combo" or f.type == "sequence"
    or (f.type == "raw" and (f.boundaries or f.bins or f.dim))
  if embedded and not f.shared then
    local numeric = f.type == "raw" or (f.type == "sequence" and (f.boundaries or f.raw_dim))
    if not numeric and not (f.num_buckets or f.hash_bucket_size or f.vocab or f.vocab_file) then
      fail("%s: needs num_buckets, hash_bucket_size or vocab", where)
    end
  end
  if f.normalize and not ({ zscore = true, minmax = true, log1p = true })[f.normalize] then
    fail("%s: normalize must be 'zscore', 'minmax' or 'log1p', got '%s'", where, tostring(f.normalize))
  end
  if f.bins then
    if type(f.bins) ~= "table" or not ({ equal_width = true, equal_freq = true, adaptive = true })[f.bins.method] then
      fail("%s: bins must be {method = 'equal_width'|'equal_freq'|'adaptive', n = count}", where)
    end
  end
  return embedded
end

-- Bin edges for fitting (lua/mtl/feature_bins.lua): equal width, equal
-- frequency, adaptive (supervised).
local bins = require "mtl.feature_bins"
features.equal_width_edges, features.equal_freq_edges = bins.equal_width_edges, bins.equal_freq_edges
features.adaptive_edges = bins.adaptive_edges

-- ---- the Features module ------------------------------------------------------------
local Features = nn.class("Features")
features.Features = Features

-- specs: the config's features list; data: the config's data table (columns, labels)
function Features:__init(specs, data, groups)
  assert(type(specs) == "table", "mtl.features: expected a list of features")
  self.group_specs = groups
  data = data or {}
  local columns
  if data.columns then
    columns = {}
    for _, c in ipairs(data.columns) do columns[c.name] = c end
  end
  self.data_columns = data.columns
  self.data = data
  -- field:feature_id rows (data.fields): each field is a bag column of its own
  if data.fields then
    columns = columns or {}
    for _, f in ipairs(data.fields) do columns[f] = { name = f, type = "ids" } end
  end
  self.labels = data.labels or {}
  self.specs = {}
  local seen = {}
  for i, f in ipairs(specs) do
    local embedded = check_spec(i, f, columns)
    if seen[f.name] then fail("feature '%s' is listed twice", f.name) end
    seen[f.name] = true
    local s = {}
    for k, v in pairs(f) do s[k] = v end
    s.embedded = embedded
    s.dim = s.dim or 16
    self.specs[i] = s
  end
  for _, s in ipairs(self.specs) do
    if s.shared and not seen[s.shared] then fail("feature '%s' shares the table of unknown feature '%s'", s.name, s.shared) end
    if s.type == "sequence" and not groups then
      fail("sequence feature '%s' is read through a group's sequences (attention): give groups", s.name)
    end
  end
  self.by_name = {}
  for _, s in ipairs(self.specs) do self.by_name[s.name] = s end
  self.fitted = {}
  self.tables = {}   -- feature name -> mtl.Embedding (shared ones point to the same)
  self.sharded = {}  -- the view of a row-sharded table (the table lookups read) -> its mtl.shard table
  self.plan = nil    -- {shard_min_mib =, optimizer =, tables =}: tables placed by mtl.parallel's planner (ranker.build)
  self.built = false
end

function Features:needs_fit()
  for _, s in ipairs(self.specs) do
    if s.type == "raw" and (s.normalize == "zscore" or s.normalize == "minmax" or (s.bins and not s.boundaries)) then
      return true
    end
  end
  return false
end

-- Columns read into the reader's "__numbers" group (z-scored in C): those of
-- z-scored (or plain) raw features that no other feature reads.
function Features:grouped_columns()
  local dense, other = {}, {}
  for _, s in ipairs(self.specs) do
    if s.type == "raw" and not s.embedded and s.normalize ~= "log1p" and s.normalize ~= "minmax" then
      dense[s.column] = dense[s.column] and false or s -- read twice as a number: not grouped
    else
      for _, c in ipairs(s.columns or { s.column, s.key }) do other[c] = true end
    end
  end
  for c, v in pairs(dense) do if not v or other[c] then dense[c] = nil end end
  return dense
end

-- Reader options for these features (all config columns; labels as floats;
-- z-scored raw columns standardized in C with the fitted statistics). Rows
-- with NaN or an infinity in a number column, or a label outside its range
-- (self.label_ranges, from the losses: ranker.new_features), are bad rows:
-- an error with file:line, or skipped and counted with data.bad_rows = "skip".
function Features:reader_options(files, batch_size, extra)
  local cols = {}
  local dense = self:grouped_columns()
  for i, c in ipairs(self.data_columns or fail("data.columns is needed to read files")) do
    local t = READER_TYPE[c.type or "string"]
    if not t then fail("data.columns[%d] '%s': unknown type '%s'", i, c.name, tostring(c.type)) end
    local col = { name = c.name, type = t, default = c.default, separator = c.separator,
                  kv_separator = c.kv_separator, values = c.values, step_separator = c.step_separator }
    for _, l in ipairs(self.labels) do if l == c.name then col.type = "float" end end
    if col.type == "float" then col.finite, col.range = true, (self.label_ranges or {})[c.name] end
    local st = self.fitted[c.name]
    if dense[c.name] and t == "float" then
      col.group = "__numbers"
      if dense[c.name].normalize == "zscore" and st then col.standardize = { mean = st.mean, std = st.std } end
    end
    cols[i] = col
  end
  local o = { files = files, columns = cols, batch_size = batch_size, header = true,
              on_error = self.data.bad_rows == "skip" and "skip" or nil }
  if self.data.fields then
    o.fields, o.header = self.data.fields, false
    o.unknown_fields = self.data.unknown_fields or "skip"
  end
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

-- One pass over training files: z-score statistics (Chan's pairwise merge in
-- double), min/max, and values (up to max_values, for quantiles and adaptive
-- bins) of the raw columns that need them.
function Features:fit(files, opts)
  opts = opts or {}
  local max_values = opts.max_values or 1000000
  local want = {}
  for _, s in ipairs(self.specs) do
    if s.type == "raw" and (s.normalize == "zscore" or s.normalize == "minmax" or (s.bins and not s.boundaries)) then
      want[s.column] = want[s.column] or {}
      table.insert(want[s.column], s)
    end
  end
  if next(want) == nil then return self end
  local acc = {}
  for c in pairs(want) do acc[c] = { n = 0, mean = 0, m2 = 0, min = math.huge, max = -math.huge, values = {}, labels = {} } end
  local label = self.labels[1]
  local o = self:reader_options(files, opts.batch_size or 65536)
  for _, col in ipairs(o.columns) do col.group, col.standardize = nil, nil end
  local r = mtl.data.csv(o)
  for batch in r:batches() do
    local y = label and batch.columns[label]
    local yv = y and y:values()
    for c, a in pairs(acc) do
      local x = batch.columns[c]
      local n = x:numel()
      if n > 0 then
        -- batch mean and M2 through C reductions, merged into the running totals
        local bm = mtl.mean(x):item()
        local d = x - bm
        local bm2 = mtl.sum(d * d):item()
        local tot = a.n + n
        local delta = bm - a.mean
        a.mean = a.mean + delta * n / tot
        a.m2 = a.m2 + bm2 + delta * delta * a.n * n / tot
        a.n = tot
        a.min = math.min(a.min, mtl.min(x):item())
        a.max = math.max(a.max, mtl.max(x):item())
        if #a.values < max_values then
          local vals = x:values()
          for i = 1, math.min(n, max_values - #a.values) do
            a.values[#a.values + 1] = vals[i]
            a.labels[#a.labels + 1] = yv and yv[i] or 0
          end
        end
      end
    end
  end
  r:close()
  for c, a in pairs(acc) do
    local std = a.n > 0 and math.sqrt(a.m2 / a.n) or 1
    if std == 0 or std ~= std then std = 1 end
    self.fitted[c] = { mean = a.mean, std = std, min = a.min, max = a.max, count = a.n }
    for _, s in ipairs(want[c]) do
      if s.bins and not s.boundaries then
        local n = s.bins.n or 10
        local edges
        if s.bins.method == "equal_width" then
          edges = features.equal_width_edges(a.min, a.max, n)
        elseif s.bins.method == "equal_freq" then
          local sorted = {}
          for i, v in ipairs(a.values) do sorted[i] = v end
          table.sort(sorted)
          edges = features.equal_freq_edges(sorted, n)
        else
          edges = features.adaptive_edges(a.values, a.labels, n, s.bins.min_fraction)
        end
        self.fitted[s.name] = { boundaries = edges }
      end
    end
  end
  return self
end

-- Bucket boundaries of a bucketized raw feature (explicit or fitted).
function Features:boundaries(s)
  return s.boundaries or (self.fitted[s.name] and self.fitted[s.name].boundaries)
    or fail("feature '%s' has no boundaries: run fit() first", s.name)
end

-- A feature's vocabulary as listed (vocab, or the lines of vocab_file), and
-- whether its column reads strings.
function Features:vocab_values(s)
  local values = s.vocab
  if s.vocab_file then
    values = {}
    local f = io.open(s.vocab_file) or fail("feature '%s': cannot open vocab_file '%s'", s.name, s.vocab_file)
    for line in f:lines() do
      line = line:gsub("\r$", "")
      if line ~= "" then values[#values + 1] = line end
    end
    f:close()
  end
  if type(values) ~= "table" or #values == 0 then fail("feature '%s': the vocabulary is empty", s.name) end
  local col = self.data_columns and self:column(s.column)
  return values, col and (col.type == "string" or col.values == "string") or false
end

-- The sorted int64 keys of a feature's vocabulary (a list or a file with one
-- value per line). String values are hashed the way the reader hashes a
-- string column, so they match the ids the reader produces.
function Features:vocab_keys(s)
  local values, strings = self:vocab_values(s)
  return core.sort_unique(features.keys_of(values, strings, string.format("feature '%s': vocabulary", s.name)))
end

-- The int64 keys that values read as, in order: strings hashed the way the
-- reader hashes a string column, integers as they are (else an error that
-- starts with what).
function features.keys_of(values, strings, what)
  local list = {}
  if strings then
    for i, v in ipairs(values) do list[i] = tostring(v) end
    return mtl.data.hash(list)
  end
  for i, v in ipairs(values) do
    list[i] = tonumber(v) or fail("%s entry %d ('%s') is not an integer", what, i, tostring(v))
  end
  return mtl.tensor(list, "int64")
end

function Features:column(name)
  for _, c in ipairs(self.data_columns or {}) do if c.name == name then return c end end
end

-- A table of these options: with a plan (a training run's, ranker.build),
-- replicated or row-sharded as mtl.parallel's planner chooses (sharded:
-- lookups read its view, filled by DataParallel:prefetch); else an mtl.Embedding.
-- The feature's placement wins over the plan's (train.table_placement =
-- "replicated": every other table replicated).
function Features:new_table(opts, s)
  if not self.plan then return mtl.Embedding(opts) end
  local parallel = require "mtl.parallel"
  local by_plan = not s.placement and self.plan.tables == "replicated"
  local t = parallel.embedding(opts, s.name, { shard_min_mib = self.plan.shard_min_mib, optimizer = self.plan.optimizer,
                                               placement = by_plan and "replicated" or s.placement,
                                               placement_from = by_plan and "train.table_placement" or nil })
  if not parallel.is_sharded(t) then return t end
  self.sharded[t.view] = t
  return t.view
end

-- Creates the embedding tables (after fit, since bucket counts may be fitted).
function Features:build()
  if self.built then return self end
  self.vocab = {}
  local dims = 0
  for _, s in ipairs(self.specs) do
    if s.embedded and not s.shared then
      local opts = { dim = s.dim, init = "uniform", scale = s.init_scale or 0.05 }
      if s.raw_dim or (s.type == "raw" and not (s.boundaries or s.bins)) then -- value(s) times learned vectors
        opts.kind, opts.num_buckets = "fixed", s.raw_dim or 1
      elseif s.type == "raw" or (s.type == "sequence" and s.boundaries) then
        opts.kind, opts.num_buckets = "fixed", #self:boundaries(s) + 1
      elseif s.num_buckets then
        opts.kind, opts.num_buckets = "fixed", s.num_buckets
      elseif s.hash_bucket_size then
        opts.kind, opts.hash_bucket_size = "hashed", s.hash_bucket_size
      else -- a vocabulary: row 0 for out-of-vocabulary ids, then one row per key
        self.vocab[s.name] = self:vocab_keys(s)
        opts.kind, opts.num_buckets = "fixed", self.vocab[s.name]:numel() + 1
      end
      self.tables[s.name] = self:new_table(opts, s)
    end
  end
  for _, s in ipairs(self.specs) do
    if s.shared then
      local t = self.tables[s.shared] or fail("feature '%s' shares '%s', which has no table", s.name, s.shared)
      if t:dim() ~= s.dim then s.dim = t:dim() end
      self.tables[s.name] = t
    end
    if s.embedded then dims = dims + s.dim end
  end
  self.n_numbers = 0
  for _, s in ipairs(self.specs) do
    if (s.type == "raw" and not s.embedded) or s.type == "lookup" then self.n_numbers = self.n_numbers + 1 end
    if s.type == "sequence" then dims = dims - s.dim end
  end
  self.output_dim = dims + self.n_numbers
  self.grouped = self:grouped_columns()
  self.lanes = {}  -- column -> its lane in the reader's "__numbers" group (data column order)
  local lane = 0
  for _, c in ipairs(self.data_columns or {}) do
    if self.grouped[c.name] and c.type == "float" then lane = lane + 1; self.lanes[c.name] = lane end
  end
  self.built = true
  if self.group_specs then require("mtl.feature_groups").attach(self) end
  return self
end

-- The distinct embedding tables (for the sparse optimizer and checkpoints):
-- {name =, table = an mtl.Embedding or an mtl.shard table}.
function Features:embedding_tables()
  local out, seen = {}, {}
  for _, s in ipairs(self.specs) do
    local t = self.tables[s.name]
    if t and not seen[t] then
      seen[t] = true
      out[#out + 1] = { name = s.shared or s.name, table = self.sharded[t] or t }
    end
  end
  return out
end

-- A bag lookup on a reader's bag column ({ids, offsets [B+1]}, 0-based, or a
-- slice of one: offsets then start at the slice's first id position).
local function bag_lookup(t, bag, combiner, weights)
  local offs = bag.offsets
  local B = offs:numel() - 1
  return t:lookup_bag(bag.ids, offs:narrow(1, 1, B), { combiner = combiner, weights = weights, base = offs:get(1) })
end

local function bag_of(batch_col, name)
  if type(batch_col) ~= "table" or not batch_col.ids then
    fail("feature '%s' needs a multi-valued column (ids and offsets)", name)
  end
  return batch_col
end

local function column_of(cols, name)
  return cols[name] or fail("the batch has no column '%s'", name)
end

-- The ids feature s looks up in its table for a batch's columns (flat or
-- [B, L] int64; a bag's or a sequence's ids), or nil for a feature without a table.
function Features:lookup_ids(s, cols)
  if s.type == "sequence" then return require("mtl.feature_groups").step_ids(self, s, cols[s.column]) end
  if s.type == "id" then
    local ids = column_of(cols, s.column)
    if type(ids) == "table" then return ids.ids end
    local keys = self.vocab[s.shared or s.name]
    return keys and core.vocab_index(ids, keys) or ids
  elseif s.type == "tag" then
    return bag_of(cols[s.column], s.name).ids
  elseif s.type == "combo" then
    local list = {}
    for i, c in ipairs(s.columns) do list[i] = column_of(cols, c) end
    return core.hash_cross(list)
  elseif s.type == "raw" and s.embedded then
    local x = column_of(cols, s.column)
    if s.boundaries or s.bins then return core.bucketize(x, self:boundaries(s)) end
    return mtl.zeros({ x:numel() }, "int64")
  end
  return nil
end

-- Before a forward: {[sharded table] = the ids of a batch (nil: none) it will
-- look up}, for DataParallel:prefetch.
function Features:sharded_ids(batch)
  local out = {}
  if not next(self.sharded) then return out end
  for _, s in ipairs(self.specs) do
    local st = self.sharded[self.tables[s.name] or false]
    if st then
      out[st] = out[st] or {}
      if batch and batch.size > 0 then
        local ids = self:lookup_ids(s, batch.columns)
        if ids then out[st][#out[st] + 1] = ids end
      end
    end
  end
  return out
end

-- A raw feature's number [B, 1] (not embedded).
function Features:number(s, cols)
  if self.grouped[s.column] and s.normalize ~= "log1p" and s.normalize ~= "minmax" then
    local g = column_of(cols, "__numbers") -- a lane of the reader's "__numbers" group (z-scored in C)
    if g:dim() == 1 then return g:reshape(g:numel(), 1) end
    return g:narrow(2, self.lanes[s.column], 1)
  end
  local x = column_of(cols, s.column)
  if s.normalize == "log1p" then return mtl.log1p(mtl.clamp(x, 0, nil)):reshape(x:numel(), 1) end
  if s.normalize == "minmax" then
    local st = self.fitted[s.column]
    local span = (st.max > st.min) and (st.max - st.min) or 1
    return ((x - st.min) * (1 / span)):reshape(x:numel(), 1)
  end
  local st = self.fitted[s.column]
  if s.normalize == "zscore" then x = (x - st.mean) * (1 / st.std) end
  return x:reshape(x:numel(), 1)
end

-- One feature's value for a batch's columns: [B, dim] (embedded) or [B, 1].
function Features:value(s, cols)
  local t = self.tables[s.name]
  if s.type == "id" then
    local ids = column_of(cols, s.column)
    if type(ids) == "table" then return bag_lookup(t, ids, s.combiner or "mean") end
    return t:lookup(self:lookup_ids(s, cols))
  elseif s.type == "tag" then
    local bag = bag_of(cols[s.column], s.name)
    return bag_lookup(t, bag, s.combiner or "mean", s.weighted ~= false and bag.weights or nil)
  elseif s.type == "combo" then
    return t:lookup(self:lookup_ids(s, cols))
  elseif s.type == "raw" then
    if not s.embedded then return self:number(s, cols) end
    if s.boundaries or s.bins then return t:lookup(self:lookup_ids(s, cols)) end
    return t:lookup(self:lookup_ids(s, cols)) * self:number(s, cols) -- the (normalized) value times a learned vector
  elseif s.type == "lookup" then
    local kv = bag_of(cols[s.column], s.name)
    local v = core.kv_lookup(column_of(cols, s.key), kv.ids, kv.offsets, kv.weights, s.missing or 0)
    return v:reshape(v:numel(), 1)
  end
  fail("feature '%s' (%s) has no single value per row", s.name, s.type)
end

-- A sequence feature: its steps embedded and padded, [B, L, dim], the mask
-- [B, L] (1 at steps) and the column's offsets (row -> steps).
function Features:sequence(s, cols)
  return require("mtl.feature_groups").sequence(self, s, cols)
end

-- batch: {size =, columns = {...}} from a reader (or a slice of read_all).
-- Returns x [B, D]: embeddings in config order, then the numeric features
-- (with groups: the main group's x, see feature_groups.lua).
function Features:forward(batch)
  if not self.built then self:build() end
  if self.feature_groups then return self:groups(batch)[self.main_group] end
  local cols = batch.columns
  local parts, numbers = {}, {}
  for _, s in ipairs(self.specs) do
    if s.embedded then
      parts[#parts + 1] = self:value(s, cols)
    elseif s.type == "raw" and self.grouped[s.column] and s.normalize ~= "log1p" and s.normalize ~= "minmax" then
      numbers.__group = true -- the reader's "__numbers" group, whole, below
    else
      numbers[#numbers + 1] = self:value(s, cols)
    end
  end
  if numbers.__group then
    local g = column_of(cols, "__numbers")
    if g:dim() == 1 then g = g:reshape(g:numel(), 1) end
    table.insert(numbers, 1, g)
  end
  for _, n in ipairs(numbers) do parts[#parts + 1] = n end
  if #parts == 1 then return parts[1] end
  return mtl.concat(parts, 2)
end

-- With groups: {group name = [B, D_g]} and {group name = {each feature's value, then each sequence group's}}.
function Features:groups(batch)
  if not self.built then self:build() end
  return self.feature_groups(self, batch.columns)
end

-- The penalty of the last forward's variational dropout (nil without it).
function Features:aux_loss()
  return self.feature_groups and self.feature_groups:aux_loss()
end

-- Everything needed to rebuild the same transform: specs, fitted values and tables.
function Features:state()
  local tables = {}
  for _, e in ipairs(self:embedding_tables()) do -- a sharded table's rows are in the ranks' shards
    if not self.sharded[self.tables[e.name]] then tables[e.name] = e.table:state_dict() end
  end
  return { fitted = self.fitted, tables = tables }
end

function Features:load_state(st)
  self.fitted = st.fitted or {}
  self.built = false
  self:build()
  for name, sd in pairs(st.tables or {}) do
    local t = self.tables[name] or fail("saved state has a table '%s' that the features do not define", name)
    t:load_state_dict(sd)
  end
  return self
end

function features.new(specs, data, groups) return Features(specs, data, groups) end

return features
