-- mtl.features: feature columns (docs/features.md).
--
--   local F = features.new(cfg.features, cfg.data)  -- an nn module
--   F:fit(files)                  -- one pass over training data (means, bins, ...)
--   local reader = mtl.data.csv(F:reader_options(files, batch_size))
--   local x = F(batch)            -- [B, D]: embeddings in config order, then numbers
--
-- Feature types (EasyRec's): id, raw, tag, combo, lookup. What fitting learns
-- is kept in F.fitted and saved with the model, so training, evaluation,
-- prediction and export all apply exactly the same transform.
local mtl = require "mtl"
local nn = require "mtl.nn"
local core = mtl.core

local features = {}

local TYPES = { id = true, raw = true, tag = true, combo = true, lookup = true }
local KEYS = {
  name = true, type = true, column = true, columns = true, dim = true, num_buckets = true,
  hash_bucket_size = true, vocab = true, shared = true, combiner = true, separator = true,
  normalize = true, boundaries = true, bins = true, key = true, weighted = true, init_scale = true,
  missing = true, kv_separator = true, vocab_file = true,
}

-- Reader column types for config column types.
local READER_TYPE = { int = "int64", int64 = "int64", float = "float", string = "string",
                      ids = "multi", multi = "multi", kv = "kv", skip = "skip" }
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
    fail("%s: unknown type '%s' (expected id, raw, tag, combo or lookup)", where, tostring(f.type))
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
  local embedded = f.type == "id" or f.type == "tag" or f.type == "combo" or (f.type == "raw" and (f.boundaries or f.bins))
  if embedded and not f.shared then
    if f.type ~= "raw" and not (f.num_buckets or f.hash_bucket_size or f.vocab or f.vocab_file) then
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

-- ---- fitting helpers (pure functions on Lua arrays; specs test them) -------------
-- n equal-width bins over [lo, hi] -> n-1 inner boundaries
function features.equal_width_edges(lo, hi, n)
  local edges = {}
  if not (hi > lo) then return edges end
  for k = 1, n - 1 do edges[k] = lo + (hi - lo) * k / n end
  return edges
end

-- equal-frequency: the k/n quantiles of sorted values (lower value at a split),
-- duplicates removed
function features.equal_freq_edges(sorted, n)
  local edges, m = {}, #sorted
  for k = 1, n - 1 do
    local pos = math.floor(k * m / n)
    if pos >= 1 and pos < m then
      -- boundary between sorted[pos] and sorted[pos + 1]
      local e = sorted[pos + 1]
      if e > sorted[1] and (#edges == 0 or e > edges[#edges]) then edges[#edges + 1] = e end
    end
  end
  return edges
end

local function entropy(pos, n)
  if n == 0 or pos == 0 or pos == n then return 0 end
  local p = pos / n
  return -(p * math.log(p) + (1 - p) * math.log(1 - p))
end

-- Adaptive (supervised) binning, the way a decision tree picks splits: the
-- sorted (value, label) pairs are cut at the value boundary that most reduces
-- the label entropy (weighted by count), best segment first, until n bins or
-- no split gains; every bin keeps at least min_fraction of the rows.
function features.adaptive_edges(values, labels, n, min_fraction)
  min_fraction = min_fraction or 0.05
  local m = #values
  local idx = {}
  for i = 1, m do idx[i] = i end
  table.sort(idx, function(a, b) return values[a] < values[b] end)
  -- prefix sums of positives over sorted rows
  local v, cum = {}, { [0] = 0 }
  for r = 1, m do
    v[r] = values[idx[r]]
    cum[r] = cum[r - 1] + (labels[idx[r]] > 0.5 and 1 or 0)
  end
  local min_rows = math.max(1, math.ceil(min_fraction * m))
  -- best cut of rows (lo, hi]: the row r with v[r] < v[r+1]
  local function best_cut(lo, hi)
    local n_all, p_all = hi - lo, cum[hi] - cum[lo]
    local base = entropy(p_all, n_all) * n_all
    local best, best_r = 1e-12, nil
    for r = lo + min_rows, hi - min_rows do
      if v[r] < v[r + 1] then
        local nl, pl = r - lo, cum[r] - cum[lo]
        local gain = base - entropy(pl, nl) * nl - entropy(p_all - pl, n_all - nl) * (n_all - nl)
        if gain > best then best, best_r = gain, r end
      end
    end
    return best_r, best
  end
  local segments = { { 0, m } }
  local cuts = {}
  while #segments < n do
    local pick, pick_r, pick_gain = nil, nil, 0
    for s, seg in ipairs(segments) do
      local r, g = best_cut(seg[1], seg[2])
      if r and g > pick_gain then pick, pick_r, pick_gain = s, r, g end
    end
    if not pick then break end
    local seg = table.remove(segments, pick)
    table.insert(segments, { seg[1], pick_r })
    table.insert(segments, { pick_r, seg[2] })
    cuts[#cuts + 1] = v[pick_r + 1] -- rows up to pick_r fall below this boundary
  end
  table.sort(cuts)
  return cuts
end

-- ---- the Features module ------------------------------------------------------------
local Features = nn.class("Features")
features.Features = Features

-- specs: the config's features list; data: the config's data table (columns, labels)
function Features:__init(specs, data)
  assert(type(specs) == "table", "mtl.features: expected a list of features")
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
  end
  self.fitted = {}
  self.tables = {}   -- feature name -> mtl.Embedding (shared ones point to the same)
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
-- z-scored raw columns standardized in C with the fitted statistics).
function Features:reader_options(files, batch_size, extra)
  local cols = {}
  local dense = self:grouped_columns()
  for i, c in ipairs(self.data_columns or fail("data.columns is needed to read files")) do
    local t = READER_TYPE[c.type or "string"]
    if not t then fail("data.columns[%d] '%s': unknown type '%s'", i, c.name, tostring(c.type)) end
    local col = { name = c.name, type = t, default = c.default, separator = c.separator,
                  kv_separator = c.kv_separator, values = c.values }
    for _, l in ipairs(self.labels) do if l == c.name then col.type = "float" end end
    local st = self.fitted[c.name]
    if dense[c.name] and t == "float" then
      col.group = "__numbers"
      if dense[c.name].normalize == "zscore" and st then col.standardize = { mean = st.mean, std = st.std } end
    end
    cols[i] = col
  end
  local o = { files = files, columns = cols, batch_size = batch_size, header = true }
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

-- Creates the embedding tables (after fit, since bucket counts may be fitted).
function Features:build()
  if self.built then return self end
  self.vocab = {}
  local dims = 0
  for _, s in ipairs(self.specs) do
    if s.embedded and not s.shared then
      local opts = { dim = s.dim, init = "uniform", scale = s.init_scale or 0.05 }
      if s.type == "raw" then
        opts.kind, opts.num_buckets = "fixed", #self:boundaries(s) + 1
      elseif s.num_buckets then
        opts.kind, opts.num_buckets = "fixed", s.num_buckets
      elseif s.hash_bucket_size then
        opts.kind, opts.hash_bucket_size = "hashed", s.hash_bucket_size
      else -- a vocabulary: row 0 for out-of-vocabulary ids, then one row per key
        self.vocab[s.name] = self:vocab_keys(s)
        opts.kind, opts.num_buckets = "fixed", self.vocab[s.name]:numel() + 1
      end
      self.tables[s.name] = mtl.Embedding(opts)
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
  end
  self.output_dim = dims + self.n_numbers
  self.grouped = self:grouped_columns()
  self.built = true
  return self
end

-- The distinct embedding tables (for the sparse optimizer and checkpoints).
function Features:embedding_tables()
  local out, seen = {}, {}
  for _, s in ipairs(self.specs) do
    local t = self.tables[s.name]
    if t and not seen[t] then
      seen[t] = true
      out[#out + 1] = { name = s.shared or s.name, table = t }
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

-- batch: {size =, columns = {...}} from a reader (or a slice of read_all).
-- Returns x [B, D]: embeddings in config order, then the numeric features.
function Features:forward(batch)
  if not self.built then self:build() end
  local cols = batch.columns
  local parts, numbers = {}, {}
  for _, s in ipairs(self.specs) do
    local t = self.tables[s.name]
    if s.type == "id" then
      local ids = cols[s.column] or fail("the batch has no column '%s'", s.column)
      if type(ids) == "table" then
        parts[#parts + 1] = bag_lookup(t, ids, s.combiner or "mean")
      else
        local keys = self.vocab[s.shared or s.name]
        parts[#parts + 1] = t:lookup(keys and core.vocab_index(ids, keys) or ids)
      end
    elseif s.type == "tag" then
      local bag = bag_of(cols[s.column], s.name)
      parts[#parts + 1] = bag_lookup(t, bag, s.combiner or "mean", s.weighted ~= false and bag.weights or nil)
    elseif s.type == "combo" then
      local list = {}
      for i, c in ipairs(s.columns) do list[i] = cols[c] or fail("the batch has no column '%s'", c) end
      parts[#parts + 1] = t:lookup(core.hash_cross(list))
    elseif s.type == "raw" then
      local x = cols[s.column]
      if s.embedded then
        parts[#parts + 1] = t:lookup(core.bucketize(x, self:boundaries(s)))
      elseif s.normalize == "log1p" then
        numbers[#numbers + 1] = mtl.log1p(mtl.clamp(x, 0, nil)):reshape(x:numel(), 1)
      elseif s.normalize == "minmax" then
        local st = self.fitted[s.column]
        local span = (st.max > st.min) and (st.max - st.min) or 1
        numbers[#numbers + 1] = ((x - st.min) * (1 / span)):reshape(x:numel(), 1)
      elseif self.grouped[s.column] then
        numbers.__group = true -- read from the reader's "__numbers" group below
      else
        local st = self.fitted[s.column]
        if s.normalize == "zscore" then x = (x - st.mean) * (1 / st.std) end
        numbers[#numbers + 1] = x:reshape(x:numel(), 1)
      end
    elseif s.type == "lookup" then
      local kv = bag_of(cols[s.column], s.name)
      local v = core.kv_lookup(cols[s.key], kv.ids, kv.offsets, kv.weights, s.missing or 0)
      numbers[#numbers + 1] = v:reshape(v:numel(), 1)
    end
  end
  if numbers.__group then
    local g = cols.__numbers or fail("the batch has no numeric group (read it with reader_options)")
    if g:dim() == 1 then g = g:reshape(g:numel(), 1) end
    table.insert(numbers, 1, g)
  end
  for _, n in ipairs(numbers) do parts[#parts + 1] = n end
  if #parts == 1 then return parts[1] end
  return mtl.concat(parts, 2)
end

-- Everything needed to rebuild the same transform: specs, fitted values and tables.
function Features:state()
  local tables = {}
  for _, e in ipairs(self:embedding_tables()) do tables[e.name] = e.table:state_dict() end
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

function features.new(specs, data) return Features(specs, data) end

return features
