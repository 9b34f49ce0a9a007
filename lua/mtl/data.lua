-- mtl.data: readers of delimited text (CSV, TSV, gzip, field:feature_id rows)
-- that turn rows into batches of tensors in C. See docs/data.md.
--
--   local r = mtl.data.csv{files = "train.csv", header = true, batch_size = 1024,
--     columns = {
--       {name = "is_click", type = "float"},
--       {name = "user_id", type = "int64"},
--       {name = "tags", type = "multi", separator = "|"},
--       {name = "price", type = "float", group = "dense", default = 0},
--     }}
--   for batch in r:batches() do
--     -- batch.size rows; batch.columns.user_id: int64 [B];
--     -- batch.columns.tags.ids / .offsets; batch.columns.dense: float [B, k]
--   end
-- text = "1,42,a|b,3.5\n..." instead of files reads rows from a string
-- (r:set_text(s) gives the reader new rows).
local core = require "mtl.core"

local data = {}

local COLUMN_KEYS = {
  name = true, type = true, default = true, separator = true, kv_separator = true,
  values = true, group = true, standardize = true, step_separator = true,
}
local OPTION_KEYS = {
  files = true, columns = true, separator = true, quote = true, header = true,
  unknown_columns = true, on_error = true, batch_size = true, drop_last = true,
  max_rows = true, shuffle_buffer = true, shuffle_seed = true, chunk_size = true, standardize = true,
  fields = true, unknown_fields = true, field_separator = true, text = true, text_name = true,
  partition = true,
}

local function fail(fname, fmt, ...)
  error(fname .. ": " .. string.format(fmt, ...), 3)
end

local function check_keys(fname, t, allowed, what)
  for k in pairs(t) do
    if not allowed[k] then fail(fname, "unknown %s '%s'", what, tostring(k)) end
  end
end

-- A column table in the form core.reader_new takes.
local function normalize_column(fname, i, c, standardize)
  if type(c) ~= "table" then fail(fname, "column %d must be a table, got %s", i, type(c)) end
  check_keys(fname, c, COLUMN_KEYS, "column field")
  if type(c.name) ~= "string" then fail(fname, "column %d needs a name", i) end
  local out = {
    name = c.name, type = c.type, separator = c.separator, kv_separator = c.kv_separator,
    group = c.group, step_separator = c.step_separator,
  }
  local d = c.default
  if type(d) == "number" then
    out.default = string.format("%.17g", d)
  elseif type(d) == "string" or d == nil then
    out.default = d
  else
    fail(fname, "column '%s': default must be a number or a string, got %s", c.name, type(d))
  end
  if c.values == "string" then
    out.string_values = true
  elseif c.values == "float" and c.type == "seq" then
    out.float_values = true
  elseif c.values ~= nil and c.values ~= "int64" then
    fail(fname, "column '%s': values must be \"int64\" or \"string\"%s, got %s", c.name,
      c.type == "seq" and " or \"float\"" or "", tostring(c.values))
  end
  local st = c.standardize
  if st == nil and standardize then st = standardize[c.name] end
  if st == true then
    out.standardize = "fit"
  elseif type(st) == "table" then
    out.standardize, out.mean, out.std = "given", st.mean, st.std
  elseif st ~= nil and st ~= false then
    fail(fname, "column '%s': standardize must be true or {mean=, std=}, got %s", c.name, type(st))
  end
  return out
end

-- partition = {index = i, count = n, block = k} -> the core's three numbers
-- (block defaults to the batch size), or nil and what is wrong.
local function normalize_partition(p, default_block)
  if type(p) ~= "table" then return nil, string.format("option 'partition' must be a table {index =, count =, block =}, got %s", type(p)) end
  for k in pairs(p) do
    if k ~= "index" and k ~= "count" and k ~= "block" then
      return nil, string.format("partition: unknown field '%s' (expected index, count and block)", tostring(k))
    end
  end
  local block = p.block or default_block
  if block == nil then return nil, "partition: block is needed (rows per block; a streaming reader's default is its batch_size)" end
  for _, f in ipairs { { "count", p.count, 1 }, { "index", p.index, 0 }, { "block", block, 1 } } do
    local key, v, min = f[1], f[2], f[3]
    if type(v) ~= "number" or v ~= math.floor(v) or v < min or v > 9e15 then
      return nil, string.format("partition: %s must be a whole number >= %d, got %s", key, min, tostring(v))
    end
  end
  if p.index >= p.count then return nil, string.format("partition: index must be below count (%d), got %d", p.count, p.index) end
  return { p.index, p.count, block }
end

-- The options table of core.reader_new; `batch_size` as given (0: everything).
local function normalize(fname, opts, batch_size)
  if type(opts) ~= "table" then fail(fname, "expected a table of options, got %s", type(opts)) end
  check_keys(fname, opts, OPTION_KEYS, "option")
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  if opts.text ~= nil then -- rows in a string instead of files
    if type(opts.text) ~= "string" then fail(fname, "option 'text' must be a string, got %s", type(opts.text)) end
    if opts.files ~= nil then fail(fname, "give option 'files' or option 'text', not both") end
  elseif type(opts.files) == "string" then
    o.files = { opts.files }
  elseif type(opts.files) ~= "table" then
    fail(fname, "option 'files' must be a path, a glob or a list of them, got %s", type(opts.files))
  end
  if type(opts.columns) ~= "table" then
    fail(fname, "option 'columns' must be a list of column tables, got %s", type(opts.columns))
  end
  -- standardize = {"d1", "d2"} (fit) or {d1 = {mean=, std=}} (given), by column name
  local standardize
  if opts.standardize ~= nil then
    if type(opts.standardize) ~= "table" then
      fail(fname, "option 'standardize' must be a list of column names or a table of {mean=, std=}")
    end
    standardize = {}
    for k, v in pairs(opts.standardize) do
      if type(k) == "number" then standardize[v] = true else standardize[k] = v end
    end
    local known = {}
    for _, c in ipairs(opts.columns) do
      if type(c) == "table" and c.name then known[c.name] = true end
    end
    for name in pairs(standardize) do
      if not known[name] then fail(fname, "standardize names an unknown column '%s'", tostring(name)) end
    end
  end
  o.standardize = nil
  o.columns = {}
  for i, c in ipairs(opts.columns) do o.columns[i] = normalize_column(fname, i, c, standardize) end
  if batch_size then o.batch_size = batch_size end
  if opts.partition ~= nil then
    local p, err = normalize_partition(opts.partition, batch_size ~= 0 and (opts.batch_size or 1024) or nil)
    if not p then fail(fname, "%s", err) end
    o.partition = nil
    o.partition_index, o.partition_count, o.partition_block = p[1], p[2], p[3]
  end
  return o
end

-- ---- the Reader object -----------------------------------------------------
local Reader = {}
Reader.__index = Reader

-- core.reader_new's errors name the caller's line (level 3: the user's call).
local function new_reader(o)
  local ok, r = pcall(core.reader_new, o)
  if not ok then error(r, 4) end
  return setmetatable({ _core = r, _columns = o.columns }, Reader)
end

-- The next batch of the current pass, or nil at its end:
-- {size = rows, columns = {name = tensor | {ids =, offsets =, weights =}}}.
function Reader:next()
  local n, columns = self._core:next()
  if not n then return nil end
  return { size = n, columns = columns }
end

-- A reader of text: new rows (a string) and a new pass over them.
function Reader:set_text(s) self._core:set_text(s) end

-- Iterates over a new pass of the files (each call starts from the beginning).
function Reader:batches()
  self._core:rewind()
  return function() return self:next() end
end

-- Rows skipped in the current pass (on_error = "skip"), and the first messages.
function Reader:skipped() return self._core:skipped() end
function Reader:errors() return self._core:messages() end

-- A batch of no rows with this reader's columns (empty tensors of the
-- right kinds and widths): for a rank of a distributed run that has no rows
-- in a step but still runs the step's forward with the others.
function Reader:empty_batch()
  local batch = { size = 0, columns = {} }
  for _, out in ipairs(self:outputs()) do
    if out.kind == "ids" then
      batch.columns[out.name] = core.zeros({ 0 }, "int64")
    elseif out.kind == "dense" then
      local group = out.width > 1 or out.name ~= out.columns[1]
      batch.columns[out.name] = group and core.zeros({ 0, out.width }) or core.zeros({ 0 })
    elseif out.kind == "seq" then
      local c
      for _, col in ipairs(self._columns) do if col.name == out.name then c = col end end
      batch.columns[out.name] = { offsets = core.zeros({ 1 }, "int64"), steps = core.zeros({ 1 }, "int64"),
        [c.float_values and "values" or "ids"] = core.zeros({ 0 }, c.float_values and "float" or "int64") }
    else
      batch.columns[out.name] = { ids = core.zeros({ 0 }, "int64"), offsets = core.zeros({ 1 }, "int64"),
        weights = out.kind == "weighted_bag" and core.zeros({ 0 }) or nil }
    end
  end
  return batch
end

-- Outputs: {name =, kind = "ids"|"dense"|"bag"|"weighted_bag", width =, columns =}.
function Reader:outputs()
  local outs = self._core:outputs()
  for _, o in ipairs(outs) do
    if o.columns then
      for j, ci in ipairs(o.columns) do o.columns[j] = self._columns[ci].name end
    end
  end
  return outs
end

-- {column = {mean =, std =}} for the standardized columns.
function Reader:stats()
  local stats = {}
  for i, c in ipairs(self._columns) do
    local mean, std = self._core:stats(i)
    if mean then stats[c.name] = { mean = mean, std = std } end
  end
  return stats
end

-- Peak bytes the reader held (chunk buffer, batch buffers, shuffle buffer).
function Reader:peak_bytes() return self._core:peak_bytes() end

function Reader:close() self._core:close() end

Reader.__tostring = function(self) return tostring(self._core) end

-- mtl.data.csv{...}: a streaming reader; see docs/data.md for the options.
function data.csv(opts)
  local o = normalize("mtl.data.csv", opts)
  if o.batch_size == nil then o.batch_size = 1024 end
  if o.batch_size == 0 and not o.text then -- a text reader may give all its rows as one batch
    fail("mtl.data.csv", "batch_size must be > 0 (read_all reads everything)")
  end
  return new_reader(o)
end

-- mtl.data.fieldfeat{files=, columns=, fields=, ...}: rows of fixed columns
-- followed by `field:feature_id` tokens; each field becomes a bag output.
function data.fieldfeat(opts)
  if type(opts) ~= "table" or type(opts.fields) ~= "table" or #opts.fields == 0 then
    fail("mtl.data.fieldfeat", "option 'fields' must be a non-empty list of field names")
  end
  return data.csv(opts)
end

-- mtl.data.read_all{...}: the whole input as column tensors, for in-memory
-- training: {size =, columns =, stats = {column = {mean =, std =}}}.
function data.read_all(opts)
  local o = normalize("mtl.data.read_all", opts, 0)
  if opts.batch_size ~= nil then fail("mtl.data.read_all", "option 'batch_size' does not apply (it reads everything)") end
  o.drop_last = nil
  local r = new_reader(o)
  local batch = r:next() or r:empty_batch() -- no rows: empty tensors of the right kinds
  batch.stats = r:stats()
  batch.skipped = r:skipped()
  batch.errors = r:errors()
  r:close()
  return batch
end

-- mtl.data.hash("s") / hash{"a", "b"}: the ids a string column gives these
-- values (XXH3-64 of the bytes, as int64): 0-dim or [n] int64 tensors.
data.hash = core.hash_strings

return data
