-- The fuzz targets: for each one a function run(bytes, ctx) that feeds one
-- input to its parsers. A Lua error with a non-empty string message is the
-- expected outcome of a bad input; the callers (child.lua, the batch mode's
-- child process, and libfuzzer.lua, the in-process libFuzzer mode) treat any
-- other outcome as a finding.
--
--   local targets = require("targets").setup(target, { seeds = dir, work = dir, note = fn })
--   targets.run(bytes, ctx)
--
-- ctx: name (the input's name in messages), schema (csv, gz, ff: the column
-- layout, a key of SCHEMAS), which (modeldir: "manifest", "config" or
-- "weights", the file of the model directory the bytes replace), seed (the
-- random choices of reader options), path() (a file holding the bytes, for
-- the APIs that only read files). seeds: the directory gen_seeds.lua wrote;
-- work: a directory for this process's files (modeldir's model directory);
-- note(name, err): called with each error caught inside a target.
local M = {}
local mtl, config, easyrec, pt, overrides -- required by M.setup (the tables below need no mtl)

-- ---- schemas ----------------------------------------------------------------
local SCHEMAS = {}
do
  local c = { { name = "search_id", type = "int64" } }
  for i = 1, 16 do c[#c + 1] = { name = "categorical_" .. i, type = "int64" } end
  for i = 1, 63 do c[#c + 1] = { name = "numerical_" .. i, type = "float", group = i % 2 == 0 and "dense" or nil } end
  c[#c + 1] = { name = "click", type = "float" }
  c[#c + 1] = { name = "conversion", type = "float" }
  SCHEMAS.aliexpress = c
  local names = "click,purchase,101,121,122,124,125,126,127,128,129,205,206,207,210,216,508,509,702,853,301,109_14,110_14,127_14,150_14,D109_14,D110_14,D127_14,D150_14,D508,D509,D702,D853"
  c = {}
  for n in names:gmatch("[^,]+") do
    local t = (n == "click" or n == "purchase" or n:sub(1, 1) == "D") and "float" or "int64"
    c[#c + 1] = { name = n, type = t, group = n:sub(1, 1) == "D" and "dense" or nil }
  end
  SCHEMAS.aliccp = c
  SCHEMAS.synth = {
    { name = "is_click", type = "float" },
    { name = "user_id", type = "int64" },
    { name = "name", type = "string", default = "" },
    { name = "tags", type = "multi", separator = "|", default = "" },
    { name = "kv", type = "kv", default = "" },
    { name = "price", type = "float", group = "dense" },
    { name = "pos", type = "float", group = "dense", default = 0 },
    { name = "junk", type = "skip" },
    { name = "stags", type = "multi", separator = ";", values = "string" },
    { name = "skv", type = "kv", separator = ";", kv_separator = "=", values = "string", default = "" },
  }
  SCHEMAS.synth_tsv = SCHEMAS.synth
  SCHEMAS.ff = { { name = "id", type = "int64" }, { name = "click", type = "float" }, { name = "purchase", type = "float" } }
end
M.SCHEMAS = SCHEMAS
-- the schemas of the CSV targets in a fixed order (libfuzzer.lua picks one by a byte)
M.CSV_SCHEMAS = { "aliexpress", "aliccp", "synth", "synth_tsv" }
-- modeldir: which file of the directory an input replaces
M.MODEL_FILE = { manifest = "manifest.json", config = "config.lua", weights = "model.ckpt" }
M.MODEL_WHICH = { "manifest", "config", "weights" }

local FF_FIELDS = { "210", "216", "301", "205", "206", "207", "508", "509", "702", "853", "121", "122", "101", "124",
  "125", "127", "128", "129", "150_14", "127_14", "109_14", "110_14" }

local function pick(t) return t[math.random(#t)] end
local function readfile(p)
  local f = assert(io.open(p, "rb")); local s = f:read("*a"); f:close(); return s
end
local function writefile(p, s)
  local f = assert(io.open(p, "wb")); f:write(s); f:close()
end
M.readfile, M.writefile = readfile, writefile

local note = function() end

-- csv, gz, ff: random reader options (ctx.seed) on the input, read from
-- memory (text) or from ctx.path() (the gzip reader only reads files)
local function read_data(bytes, ctx, gz)
  local schema = ctx.schema or "synth"
  math.randomseed(ctx.seed)
  local opts = { columns = SCHEMAS[schema] }
  if schema == "synth_tsv" then opts.separator = "\t"; opts.quote = false end
  if schema == "ff" then
    opts.fields = FF_FIELDS
    if math.random(2) == 1 then opts.unknown_fields = "skip" end
    if math.random(4) == 1 then opts.fields = { "210", "301" } end
  else
    if math.random(2) == 1 then
      opts.header = true
      if math.random(2) == 1 then opts.unknown_columns = "skip" end
    end
  end
  if math.random(10) <= 6 then opts.on_error = "skip" end
  if math.random(3) == 1 then opts.chunk_size = pick({ 64, 65, 100, 257, 4096 }) end
  if math.random(4) == 1 then opts.max_rows = math.random(8) end
  local mode = math.random(4)
  if gz then mode = math.random(2) end -- files only
  if mode == 1 then
    opts.files = ctx.path()
    if math.random(3) == 1 and schema ~= "ff" then
      local st = {}
      for _, c in ipairs(opts.columns) do if c.type == "float" and math.random(3) == 1 then st[#st + 1] = c.name end end
      if #st > 0 then opts.standardize = st end
    end
    local d = mtl.data.read_all(opts)
    assert(type(d.size) == "number")
  else
    if mode == 4 and not gz then
      opts.text = bytes
      opts.text_name = ctx.name
    else
      opts.files = ctx.path()
    end
    opts.batch_size = pick({ 1, 2, 3, 7, 1024 })
    if math.random(3) == 1 then opts.shuffle_buffer = pick({ 1, 2, 5, 100 }) end
    if math.random(4) == 1 then opts.drop_last = true end
    local r = mtl.data.csv(opts)
    for _ = 1, (math.random(3) == 1 and 2 or 1) do
      for b in r:batches() do assert(b.size > 0) end
    end
    r:skipped(); r:errors(); r:stats(); r:outputs()
    r:close()
  end
end

local BASE = { model = { name = "mmoe", tasks = { { name = "ctr" }, { name = "cvr" } } }, data = { train = "a.csv" } }
local KEYS = { "model.expert", "model.tasks.cvr.weight", "model.tasks.1.tower", "optimizer.schedule", "data.train",
  "train.epochs", "train.steps", "optimizer.dense", "eval.metrics", "data.columns" }

local MODEL_FILES -- modeldir: the seed directory's files and request rows (read by setup)
local MODEL_DIR   -- modeldir: this process's model directory (in opts.work)
local model_dirty -- modeldir: the file of MODEL_DIR that differs from the seed's

local RUN = {
  csv = function(bytes, ctx) read_data(bytes, ctx, false) end,
  ff = function(bytes, ctx) read_data(bytes, ctx, false) end,
  gz = function(bytes, ctx) read_data(bytes, ctx, true) end,
  -- the protobuf text parser, the EasyRec mapping, then (when it maps)
  -- overrides and validation of the mapped config
  pbtxt = function(bytes, ctx)
    local ok, err = pcall(pt.parse, bytes, ctx.name)
    if not ok then note(ctx.name, err) end
    local cfg = easyrec.parse(bytes, ctx.name)
    config.load(cfg, { "train.steps=3" })
  end,
  override = function(text, ctx)
    math.randomseed(ctx.seed)
    local ok, err = pcall(overrides.parse_value, text)
    if not ok then note(ctx.name, err) end
    ok, err = pcall(config.apply_overrides, BASE, { pick(KEYS) .. "=" .. text })
    if not ok then note(ctx.name, err) end
    ok, err = pcall(config.apply_overrides, BASE, { text })
    if not ok then note(ctx.name, err) end
    local ok2, cfg = pcall(config.apply_overrides, BASE, { pick(KEYS) .. "=" .. text })
    if ok2 then config.validate(cfg) end
  end,
  luacfg = function(_, ctx) config.load(ctx.path()) end,
  -- random reader options (separators, quotes, defaults, sizes) on a mutated text
  opts = function(text, ctx)
    math.randomseed(ctx.seed)
    local CH = { ",", "\t", ";", "|", ":", "\"", "'", "\n", "\r", "\0", "=", "1", "-", ".", "e", " ", "\xff", "" }
    local function ch() local c = pick(CH); if c == "" then return nil end; return c end
    for _ = 1, 6 do
      local cols = {}
      local types = { "int64", "float", "string", "multi", "kv", "skip" }
      for i = 1, math.random(0, 5) do
        local c = { name = pick({ "a", "b", "c", "d", "e", "f", "a", "210", "" }) .. i, type = pick(types) }
        if math.random(2) == 1 then c.separator = ch() end
        if math.random(3) == 1 then c.kv_separator = ch() end
        if math.random(3) == 1 then c.default = pick({ "", "0", "1|2", "1:2", "x", "nan", "1e39", "\0", "\"" , 5, 1e300, -0.0, 0/0 }) end
        if math.random(4) == 1 then c.values = "string" end
        if c.type == "float" and math.random(3) == 1 then c.group = pick({ "g", "h", "a1", "210" }) end
        if c.type == "float" and math.random(5) == 1 then c.standardize = pick({ true, { mean = 0, std = 1 }, { mean = 0 / 0, std = 1 }, { mean = 1, std = 0 }, { mean = 1e308, std = 1e-308 } }) end
        cols[#cols + 1] = c
      end
      local o = { text = text, columns = cols, text_name = "opts" }
      if math.random(2) == 1 then o.separator = ch() end
      if math.random(3) == 1 then local q = ch(); if q == nil then o.quote = false else o.quote = q end end
      if math.random(3) == 1 then o.header = true; o.unknown_columns = pick({ "skip", "error" }) end
      if math.random(2) == 1 then o.on_error = "skip" end
      if math.random(3) == 1 then o.fields = { pick({ "210", "a", "1" }), pick({ "301", "b", "x" }) }; o.field_separator = ch(); o.unknown_fields = pick({ "skip", "error" }) end
      if math.random(3) == 1 then o.max_rows = pick({ 0, 1, 3, 2 ^ 53, 9e15 }) end
      if math.random(3) == 1 then o.shuffle_buffer = pick({ 0, 1, 3, 1000, 9e15 }) end
      if math.random(4) == 1 then o.shuffle_seed = pick({ 0, 1, 2 ^ 53 }) end
      if math.random(3) == 1 then o.chunk_size = pick({ 64, 65, 1000 }) end
      local ok, err = pcall(function()
        if math.random(2) == 1 then
          mtl.data.read_all(o)
        else
          o.batch_size = pick({ 1, 2, 5, 9e15 })
          if math.random(2) == 1 then o.drop_last = true end
          local r = mtl.data.csv(o)
          for _ = 1, 2 do for _ in r:batches() do end end
          if math.random(2) == 1 then r:set_text(text:sub(1, #text / 2)); for _ in r:batches() do end end
          r:errors(); r:stats(); r:outputs()
        end
      end)
      if not ok then note(ctx.name, err) end
    end
  end,
  -- a model directory with one file (ctx.which) replaced by the input. Its
  -- parsers run first (the manifest's JSON, config.lua as data, the
  -- checkpoint); only a directory they all accept is loaded as mtl does
  -- (export.load, serve.load, which build the model) and scores the seed's
  -- request rows, so that the mutants refused by a parser cost no model build.
  modeldir = function(bytes, ctx)
    local name = M.MODEL_FILE[ctx.which]
    if model_dirty and model_dirty ~= name then writefile(MODEL_DIR .. "/" .. model_dirty, MODEL_FILES[model_dirty]) end
    writefile(MODEL_DIR .. "/" .. name, bytes)
    model_dirty = name
    local export, serve = require "mtl.export", require "mtl.serve"
    local is_dir, manifest = export.is_model_dir(MODEL_DIR)
    if is_dir then
      export.read_config(MODEL_DIR, manifest)
      mtl.load(export.file(MODEL_DIR, manifest, "weights"))
    end
    local ok, err = pcall(export.load, MODEL_DIR)
    if not ok then note(ctx.name, err) end
    local s = serve.load(MODEL_DIR)
    local text = MODEL_FILES.request
    local n = select(2, text:gsub("\n", ""))
    s.reader:set_text(text)
    if s.rank_reader then s.rank_reader:set_text(text) end
    local out = s:score_text(n)
    assert(#out == #s.outputs and out[1]:size(1) == n, "scores of the seed's rows")
  end,
  ckpt = function(_, ctx)
    local v = mtl.load(ctx.path())
    -- touch what came back
    local function walk(x, d)
      if d > 300 then return end
      if type(x) == "table" then for k, y in pairs(x) do walk(k, d + 1); walk(y, d + 1) end
      elseif type(x) == "userdata" then tostring(x) end
    end
    walk(v, 0)
  end,
}
M.NAMES = { "csv", "gz", "ff", "opts", "pbtxt", "override", "luacfg", "ckpt", "modeldir" }
-- the extension of an input file of each target (ctx.path())
M.EXT = { csv = ".csv", gz = ".csv.gz", ff = ".txt", pbtxt = ".config", override = ".txt", luacfg = ".lua",
  ckpt = ".ckpt", opts = ".csv", modeldir = ".x" }

-- The libFuzzer mode's inputs (libfuzzer.lua): two option bytes, then the
-- target's bytes. The first byte picks the CSV schema (csv, gz), the file of
-- the model directory (modeldir) and, for gz, whether the bytes are
-- compressed by the fuzzer (even byte / 4: so that mutations reach the parser
-- behind the decompression) or are the compressed stream itself (odd); both
-- bytes seed the random reader options.
-- decode(target, data) -> bytes, ctx (without path), compress (gz)
function M.decode(target, data)
  local k1, k2 = data:byte(1) or 0, data:byte(2) or 0
  local ctx = { name = "input", seed = k1 * 256 + k2, which = M.MODEL_WHICH[k1 % 3 + 1],
    schema = target == "ff" and "ff" or M.CSV_SCHEMAS[k1 % 4 + 1] }
  return data:sub(3), ctx, target == "gz" and math.floor(k1 / 4) % 2 == 0
end
-- encode(target, kind, j, bytes): the j-th (0..7) option variant of a seed;
-- kind: its schema (csv, gz, ff) or its file (modeldir); for gz, odd j asks
-- for the bytes as they are (the caller gives them compressed).
function M.encode(target, kind, j, bytes)
  local k1 = 37 * j
  for i, s in ipairs(M.CSV_SCHEMAS) do if s == kind then k1 = i - 1 + 4 * j end end
  for i, w in ipairs(M.MODEL_WHICH) do if w == kind then k1 = i - 1 + 3 * j end end
  return string.char(k1 % 256, 31 * j % 256) .. bytes
end

-- The run function of target (one of M.NAMES).
function M.setup(target, opts)
  local run = RUN[target] or error("unknown target " .. tostring(target) .. " (" .. table.concat(M.NAMES, ",") .. ")")
  mtl = require "mtl"
  config, easyrec = require "mtl.config", require "mtl.config.easyrec"
  pt, overrides = require "mtl.config.protobuf_text", require "mtl.config.overrides"
  mtl.checkpoint.register("fz.Obj", function(state) return { obj = state } end)
  mtl.checkpoint.register("fz.Fail", function(state) error("loader refuses " .. type(state)) end)
  note = opts.note or note
  -- a config that loops runs out of its instruction budget: 10^6 instead of
  -- the default 10^8 keeps such a mutant from taking seconds
  if target == "luacfg" then require("mtl.config.lua_config").instruction_budget = 1e6 end
  if target == "modeldir" then
    MODEL_FILES = {}
    for _, name in ipairs({ "manifest.json", "config.lua", "model.ckpt" }) do
      MODEL_FILES[name] = readfile(opts.seeds .. "/model/" .. name)
    end
    MODEL_FILES.request = readfile(opts.seeds .. "/request.csv")
    MODEL_DIR = opts.work .. "/model"
    require("mtl.sys").mkdir_p(MODEL_DIR)
    for _, name in ipairs({ "manifest.json", "config.lua", "model.ckpt" }) do
      writefile(MODEL_DIR .. "/" .. name, MODEL_FILES[name])
    end
  end
  return { run = run }
end

return M
