-- mtl.onnx.features: the feature columns of a model as ONNX graph inputs and
-- preprocessing, and the description of each input for the sidecar
-- (docs/export.md, "Inputs").
--
--   local x, inputs = features.build(g, F)   -- x: Sym [batch, D], as F(batch) computes it
--   (with feature groups, also {group = x_g} and {group = its values}, as F:groups)
--   local feeds = features.feeds(inputs, batch)   -- the inputs' tensors for a batch
--
-- What ONNX computes from the inputs (in the graph): z-score and min-max
-- scaling with the fitted statistics, log1p, bucketizing by boundaries,
-- embedding lookups, bag pooling with its combiner (sum, mean, sqrtn, with
-- per-id weights), the concatenation in F's order. What it cannot, and the
-- caller does before (described in each input's entry): turning strings
-- into keys (XXH3-64), hashing keys into the rows of hashed tables, hashed
-- crosses, vocabulary lookups, splitting bags and padding them, and kv lookups.
-- features.feeds is the reference implementation of those descriptions,
-- from a batch that mtl's reader parsed with the training schema.
local ffi = require "ffi"
local mtl = require "mtl"
local graph = require "mtl.onnx.graph"
local ops = require "mtl.onnx.ops"
local mtl_features = require "mtl.features"

local features = {}

local core = mtl.core
local batch = graph.batch

local function fail(fmt, ...) error("mtl.onnx: " .. string.format(fmt, ...), 0) end

pcall(ffi.cdef, "float nextafterf(float x, float y);")

-- The smallest float32 >= b: x >= b in double is x >= this in float32 for
-- every float32 x (the reader's values are float32; mtl compares in double).
local function float_ceiling(b)
  local f = ffi.new("float[1]", b)[0]
  if f < b then f = ffi.C.nextafterf(f, math.huge) end
  return f
end

-- ---- how raw values become the ids an input holds ------------------------------------------
local KEY_STRING = { kind = "xxh3_64", seed = 0,
  text = "XXH3-64 (seed 0) of the value's bytes, as the int64 with the same 64 bits" }
local KEY_INTEGER = { kind = "integer", text = "the decimal integer itself" }
local KEY_CROSS = { kind = "xxh3_64_cross", seed = 0,
  text = "XXH3-64 (seed 0) of the columns' keys written one after another as 8-byte little-endian int64, as an int64" }

-- How a key becomes a row of the feature's table: the table's own rule.
local function table_rule(s, t)
  if t:kind() == "hashed" then
    return { kind = "hash", seed = 0, num_rows = t:capacity(),
             text = "XXH3-64 (seed 0) of the key's 8 little-endian bytes, as an unsigned 64-bit number, modulo num_rows" }
  end
  if t:kind() ~= "fixed" then fail("feature '%s': a %s embedding table cannot be exported", s.name, t:kind()) end
  return { kind = "identity", num_rows = t:capacity(), text = "the key itself (0 .. num_rows - 1)" }
end

-- A vocabulary: each listed value's row (1 + its key's position among the
-- sorted keys, as mtl's lookup computes it), 0 for values outside it.
local function vocab_rule(F, s)
  local owner = s
  for _, x in ipairs(F.specs) do if x.name == s.shared then owner = x end end
  local values, strings = F:vocab_values(owner)
  local keys = mtl_features.keys_of(values, strings, string.format("feature '%s': vocabulary", owner.name))
  local rows = {}
  for i, r in ipairs(core.vocab_index(keys, F.vocab[owner.name]):values()) do rows[tostring(values[i])] = r end
  return { kind = "vocabulary", rows = rows, default = 0,
           text = "rows[value] for a value of the vocabulary (as written in it), else 0" }
end

-- ---- the graph ----------------------------------------------------------------------------------
-- Column name -> {type =, separator =, ...} (data.columns, and data.fields as bags).
local function columns_of(F)
  local cols = {}
  for _, c in ipairs(F.data_columns or {}) do cols[c.name] = c end
  for _, f in ipairs((F.data or {}).fields or {}) do cols[f] = { name = f, type = "ids" } end
  return cols
end

local BAG = { ids = true, multi = true, kv = true }

function features.build(g, F)
  if not F.built then F:build() end
  local cols = columns_of(F)
  local inputs = {}
  local column_syms = {}
  local table_names = {}

  local function add_input(entry, dims)
    inputs[#inputs + 1] = entry
    return g:input(entry.name, entry.type, dims, entry.text)
  end

  local function weight_of(s)
    local t = F.tables[s.name]
    if not table_names[t] then
      local name = g:initializer("features." .. (s.shared or s.name) .. ".weight", "float", t:weight():shape(),
        (graph.tensor_bytes(t:weight())))
      table_names[t] = name
    end
    return table_names[t], t:dim()
  end

  local function key_of(column)
    local c = cols[column] or {}
    if c.type == "string" or c.values == "string" then return KEY_STRING end
    return KEY_INTEGER
  end

  -- a numeric column, one input however many features read it
  local function column_input(name)
    if not column_syms[name] then
      local c = cols[name] or {}
      column_syms[name] = add_input({ name = name, type = "float", shape = { "batch" }, column = name,
        text = "the column's number as float32" .. (c.default and (" (an empty field: " .. tostring(c.default) .. ")") or "") },
        { batch })
    end
    return column_syms[name]
  end

  local function gather(W, ids, dim_, shape)
    local dims = {}
    for i, d in ipairs(shape) do dims[i] = d end
    dims[#dims + 1] = dim_
    return g:node1("Gather", { W, ids }, { axis = 0 }, dims)
  end

  local function bag(s, combiner, weighted)
    local c = cols[s.column] or {}
    local W, d = weight_of(s)
    local name = s.name .. "_ids"
    local ids = add_input({ name = name, type = "int64", shape = { "batch", "bag" }, feature = s.name, column = s.column,
      separator = c.separator or (c.type == "kv" and "," or "|"), kv_separator = c.type == "kv" and (c.kv_separator or ":") or nil,
      key = key_of(s.column), rows = table_rule(s, F.tables[s.name]), padding = 0,
      text = "row b: the rows of the ids of row b's bag, padded to the longest bag with row 0" }, { batch, "bag" })
    local w = add_input({ name = s.name .. "_weights", type = "float", shape = { "batch", "bag" }, feature = s.name,
      column = s.column, values = weighted and "kv_weight" or "one",
      text = (weighted and "each id's kv weight" or "1 for each id") .. ", 0 for padding" }, { batch, "bag" })
    local rows = gather(W, ids, d, ids.dims)                           -- [B, L, d]
    local w3 = ops.unsqueeze(w, 3)                                     -- [B, L, 1]
    local pooled = ops.sum(rows * w3, 2)                               -- [B, d]
    if combiner == "sum" then return pooled end
    local denom = combiner == "sqrtn" and ops.sqrt(ops.sum(w * w, 2, true)) or ops.sum(w, 2, true) -- [B, 1]
    local empty = g:node1("Equal", { denom, g:scalar(0) }, nil, denom.dims, "bool")
    return g:node1("Where", { empty, g:scalar(0), pooled / denom }, nil, pooled.dims) -- a zero denominator gives zeros
  end

  -- a raw number as F:number computes it, [batch] (z-scored lanes: the reader's)
  local function number(s)
    local x = column_input(s.column)
    if s.normalize == "log1p" then return ops.log1p(ops.clamp(x, 0, nil)) end
    local st = F.fitted[s.column]
    if s.normalize == "minmax" then
      local span = (st.max > st.min) and (st.max - st.min) or 1
      return (x - st.min) * (1 / span)
    end
    if F.grouped[s.column] then -- standardized in double by the reader ((v - mean) / std)
      local c = F.grouped[s.column]
      return (c.normalize == "zscore" and st) and (x - st.mean) / st.std or x
    end
    if s.normalize == "zscore" then x = (x - st.mean) * (1 / st.std) end
    return x
  end

  -- an embedded raw feature: its bucket's row, or (dim alone) the number times the row
  local function embedded_raw(s)
    local W, d = weight_of(s)
    if not (s.boundaries or s.bins) then return g:node1("Mul", { ops.unsqueeze(number(s), 2), W }, nil, { batch, d }) end
    local x = column_input(s.column)
    local bounds = {}
    for i, b in ipairs(F:boundaries(s)) do bounds[i] = float_ceiling(b) end
    if #bounds == 0 then bounds[1] = 0 / 0 end -- one bucket: x >= NaN is never true
    local ge = g:node1("GreaterOrEqual", { ops.unsqueeze(x, 2), g:list(bounds, "float") }, nil, { batch, #bounds }, "bool")
    local as_int = g:node1("Cast", { ge }, { to = graph.DTYPE.int64 }, { batch, #bounds }, "int64")
    local idx = g:node1("ReduceSum", { as_int, g:list({ 1 }, "int64") }, { keepdims = 0 }, { batch }, "int64")
    return gather(W, idx, d, { batch })
  end

  local function ids(s)
    local W, d = weight_of(s)
    local t = F.tables[s.name]
    local entry = { name = s.name .. "_ids", type = "int64", shape = { "batch" }, feature = s.name,
                    text = "each row's row of the feature's table" }
    if s.type == "combo" then
      entry.columns, entry.key = s.columns, KEY_CROSS
      entry.column_keys = {}
      for i, col in ipairs(s.columns) do entry.column_keys[i] = key_of(col) end
      entry.rows = table_rule(s, t)
    else
      entry.column, entry.key = s.column, key_of(s.column)
      entry.rows = F.vocab[s.shared or s.name] and vocab_rule(F, s) or table_rule(s, t)
    end
    local x = add_input(entry, { batch })
    return gather(W, x, d, x.dims)
  end

  local function lookup(s)
    local kv = cols[s.column] or {}
    return add_input({ name = s.name .. "_value", type = "float", shape = { "batch" }, feature = s.name,
      column = s.column, key_column = s.key, missing = s.missing or 0, key = key_of(s.key),
      kv_separator = kv.kv_separator or ":", separator = kv.separator or ",",
      text = "the weight of the first pair of the kv column whose key is the key column's key, else missing" }, { batch })
  end

  -- each feature's value ([batch, d]; numbers [batch, 1]); x in F's order:
  -- the embedded, then the reader's z-scored lanes, then the other numbers
  local values, parts, numbers, lanes = {}, {}, {}, {}
  for _, s in ipairs(F.specs) do
    local c = cols[s.column] or {}
    local v
    if (s.type == "id" and BAG[c.type]) or s.type == "tag" then
      v = bag(s, s.combiner or "mean", s.type == "tag" and s.weighted ~= false and c.type == "kv")
    elseif s.type == "id" or s.type == "combo" then
      v = ids(s)
    elseif s.type == "raw" and s.embedded then
      v = embedded_raw(s)
    elseif s.type == "raw" and F.grouped[s.column] and s.normalize ~= "log1p" and s.normalize ~= "minmax" then
      lanes[s.column] = number(s)
      v = ops.unsqueeze(lanes[s.column], 2)
    elseif s.type == "raw" or s.type == "lookup" then
      local n = s.type == "raw" and number(s) or lookup(s)
      numbers[#numbers + 1] = n
      v = ops.unsqueeze(n, 2)
    end
    if v and s.embedded then parts[#parts + 1] = v end
    values[s.name] = v
  end
  for _, c in ipairs(F.data_columns) do -- the reader's "__numbers" group, in schema order
    if lanes[c.name] then parts[#parts + 1] = ops.unsqueeze(lanes[c.name], 2) end
  end
  for _, n in ipairs(numbers) do parts[#parts + 1] = ops.unsqueeze(n, 2) end
  if not F.feature_groups then return #parts == 1 and parts[1] or ops.concat(parts, 2), inputs end
  return features.groups(F, values, inputs)
end

-- With feature groups: the main group's x, the inputs, {group = x} and
-- {group = its features' values}, as F:groups computes them.
function features.groups(F, values, inputs)
  local xs, lists = {}, {}
  for _, gs in ipairs(F.group_specs) do
    if gs.sequences then fail("group '%s' attends over sequences (DIN); such groups are not exported", gs.name) end
    if gs.variational_dropout then fail("group '%s' has variational dropout; such groups are not exported", gs.name) end
    local ps = {}
    for i, n in ipairs(gs.features or {}) do ps[i] = values[n] end
    lists[gs.name], xs[gs.name] = ps, #ps == 1 and ps[1] or ops.concat(ps, 2)
  end
  return xs[F.main_group], inputs, xs, lists
end

-- ---- feeds: the inputs of a batch ---------------------------------------------------------------
-- A new tensor of n values (int64 or float32) from fn(0-based index).
local function tensor_of(n, dtype, fn)
  local t = dtype == "int64" and mtl.zeros(math.max(n, 1)):long() or mtl.zeros(math.max(n, 1))
  local p = ffi.cast(dtype == "int64" and "int64_t *" or "float *", t:data_ptr())
  for i = 0, n - 1 do p[i] = fn(i) end
  return n == 0 and t:narrow(1, 1, 0) or t
end

-- Reads the values of a tensor by 0-based index (exact int64s as cdata).
local function reader_of(t)
  local c = t:contiguous()
  local p = ffi.cast(t:dtype() == "int64" and "const int64_t *" or "const float *", c:data_ptr())
  return function(i)
    if c then return p[i] end -- (c: keeps the tensor alive as long as this function)
  end
end

-- Keys (an int64 tensor) -> rows by an input's rule.
local function rows_of(keys, entry, cache)
  local rule = entry.rows
  if rule.kind == "identity" then return keys end
  local n = keys:numel()
  if rule.kind == "hash" then
    local h = reader_of(core.hash_cross({ keys:contiguous() })) -- XXH3-64 of each key's 8 bytes, seed 0
    local m = ffi.new("uint64_t", rule.num_rows)
    return tensor_of(n, "int64", function(i) return ffi.cast("int64_t", ffi.cast("uint64_t", h(i)) % m) end)
  end
  -- a vocabulary: the keys its values read as -> rows
  local map = cache[entry]
  if not map then
    map = {}
    local values, rows = {}, {}
    for v, r in pairs(rule.rows) do values[#values + 1], rows[#values + 1] = v, r end
    local at = reader_of(mtl_features.keys_of(values, entry.key.kind == "xxh3_64", "input '" .. entry.name .. "': vocabulary"))
    for i = 1, #values do map[tostring(at(i - 1))] = rows[i] end
    cache[entry] = map
  end
  local at = reader_of(keys)
  return tensor_of(n, "int64", function(i) return map[tostring(at(i))] or rule.default end)
end

-- A bag column as [n, L] rows and weights (L: the longest bag, at least 1).
local function padded_bag(bagc, n, entry, weights_entry, cache)
  local offs = reader_of(bagc.offsets)
  local len = 1
  for i = 0, n - 1 do len = math.max(len, tonumber(offs(i + 1) - offs(i))) end
  local rows = reader_of(rows_of(bagc.ids, entry, cache))
  local kv = weights_entry.values == "kv_weight" and reader_of(bagc.weights)
  local function at(k) -- position in the flat bag of padded entry k, or nil
    local i, j = math.floor(k / len), k % len
    local pos = offs(i) + j
    if pos < offs(i + 1) then return pos end
  end
  local ids = tensor_of(n * len, "int64", function(k) local pos = at(k) return pos and rows(pos) or 0 end)
  local w = tensor_of(n * len, "float", function(k)
    local pos = at(k)
    if not pos then return 0 end
    return kv and kv(pos) or 1
  end)
  return ids:reshape(n, len), w:reshape(n, len)
end

-- {input name = tensor} for a batch read with the training schema (every
-- column as such, no groups: mtl.onnx.reader_options).
function features.feeds(inputs, b)
  local cols = b.columns
  local by_name = {}
  for _, e in ipairs(inputs) do by_name[e.name] = e end
  local out, cache = {}, {}
  for _, e in ipairs(inputs) do
    if e.values then
      -- a bag's weights: made with its ids
    elseif e.type == "float" and not e.feature then
      out[e.name] = cols[e.column] or fail("the batch has no column '%s'", e.column)
    elseif e.shape[2] == "bag" then
      local w = by_name[e.feature .. "_weights"]
      out[e.name], out[w.name] = padded_bag(cols[e.column], b.size, e, w, cache)
    elseif e.key_column then
      local kv = cols[e.column]
      out[e.name] = core.kv_lookup(cols[e.key_column], kv.ids, kv.offsets, kv.weights, e.missing)
    elseif e.columns then
      local list = {}
      for i, c in ipairs(e.columns) do list[i] = cols[c] end
      out[e.name] = rows_of(core.hash_cross(list), e, cache)
    else
      out[e.name] = rows_of(cols[e.column], e, cache)
    end
  end
  return out
end

return features
