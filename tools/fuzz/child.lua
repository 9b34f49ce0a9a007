-- Child of fuzz.lua: <sanitizer build>/mtl tools/fuzz/child.lua TARGET LISTFILE
-- Feeds every file of LISTFILE to TARGET's parser inside pcall. A Lua error is
-- fine (exit 0) if it is a non-empty string; anything else exits non-zero.
local target, listfile = arg[1], arg[2]
local mtl = require "mtl"

local function hash(s)
  local h = 5381
  for i = 1, #s do h = (h * 33 + s:byte(i)) % 2147483647 end
  return h
end

local msglog = assert(io.open(os.getenv("MTL_FUZZ_DIR") .. "/work/messages_" .. target .. ".txt", "a"))
local function note(file, err)
  if type(err) ~= "string" or #err == 0 then
    io.stderr:write("BAD ERROR VALUE for ", file, ": ", tostring(err), "\n")
    os.exit(3)
  end
  if math.random(20) == 1 then msglog:write(err:sub(1, 400):gsub("\n", "\\n"), "\n") end
end

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
local FF_FIELDS = { "210", "216", "301", "205", "206", "207", "508", "509", "702", "853", "121", "122", "101", "124",
  "125", "127", "128", "129", "150_14", "127_14", "109_14", "110_14" }

local function pick(t) return t[math.random(#t)] end
local MODEL_FILES -- target modeldir: the seed directory's files and request rows (read below)

local function read_data(file, gz)
  local base = file:match("[^/]+$")
  local schema = base:match("^m%d+_([%w_]+)_%d+%.") or "synth"
  math.randomseed(hash(base))
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
    opts.files = file
    if math.random(3) == 1 and schema ~= "ff" then
      local st = {}
      for _, c in ipairs(opts.columns) do if c.type == "float" and math.random(3) == 1 then st[#st + 1] = c.name end end
      if #st > 0 then opts.standardize = st end
    end
    local d = mtl.data.read_all(opts)
    assert(type(d.size) == "number")
  else
    if mode == 4 and not gz then
      local f = assert(io.open(file, "rb")); opts.text = f:read("*a"); f:close()
      opts.text_name = base
    else
      opts.files = file
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

local config, easyrec, pt, overrides
local function load_config_mods()
  config = require "mtl.config"
  easyrec = require "mtl.config.easyrec"
  pt = require "mtl.config.protobuf_text"
  overrides = require "mtl.config.overrides"
end
load_config_mods()

local BASE = { model = { name = "mmoe", tasks = { { name = "ctr" }, { name = "cvr" } } }, data = { train = "a.csv" } }
local KEYS = { "model.expert", "model.tasks.cvr.weight", "model.tasks.1.tower", "optimizer.schedule", "data.train",
  "train.epochs", "train.steps", "optimizer.dense", "eval.metrics", "data.columns" }

local RUN = {
  csv = function(f) read_data(f, false) end,
  ff = function(f) read_data(f, false) end,
  gz = function(f) read_data(f, true) end,
  pbtxt = function(f)
    local text = assert(io.open(f, "rb")):read("*a")
    local ok, err = pcall(pt.parse, text, f)
    if not ok then note(f, err) end
    ok, err = pcall(easyrec.load, f)
    if not ok then note(f, err) end
    config.load(f, { "train.steps=3" })
  end,
  override = function(f)
    local text = assert(io.open(f, "rb")):read("*a")
    math.randomseed(hash(f))
    local ok, err = pcall(overrides.parse_value, text)
    if not ok then note(f, err) end
    ok, err = pcall(config.apply_overrides, BASE, { pick(KEYS) .. "=" .. text })
    if not ok then note(f, err) end
    ok, err = pcall(config.apply_overrides, BASE, { text })
    if not ok then note(f, err) end
    local ok2, cfg = pcall(config.apply_overrides, BASE, { pick(KEYS) .. "=" .. text })
    if ok2 then config.validate(cfg) end
  end,
  luacfg = function(f) config.load(f) end,
  -- random reader options (separators, quotes, defaults, sizes) on a mutated text
  opts = function(f)
    local text = assert(io.open(f, "rb")):read("*a")
    math.randomseed(hash(f))
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
          local d = mtl.data.read_all(o)
        else
          o.batch_size = pick({ 1, 2, 5, 9e15 })
          if math.random(2) == 1 then o.drop_last = true end
          local r = mtl.data.csv(o)
          for _ = 1, 2 do for b in r:batches() do end end
          if math.random(2) == 1 then r:set_text(text:sub(1, #text / 2)); for b in r:batches() do end end
          r:errors(); r:stats(); r:outputs()
        end
      end)
      if not ok then note(f, err) end
    end
  end,
  -- a model directory with one file mutated: loaded as mtl does (export.load,
  -- serve.load); when it loads, it scores the seed's request rows
  modeldir = function(f)
    local which = f:match("[^/]+$"):match("^m%d+_(%a+)_")
    local sys = require "mtl.sys"
    local dir = f .. ".d"
    sys.mkdir_p(dir)
    for _, name in ipairs({ "manifest.json", "config.lua", "model.ckpt" }) do
      local text = MODEL_FILES[name]
      local target = ({ manifest = "manifest.json", config = "config.lua", weights = "model.ckpt" })[which]
      if name == target then text = assert(io.open(f, "rb")):read("*a") end
      local out = assert(io.open(dir .. "/" .. name, "wb"))
      out:write(text)
      out:close()
    end
    local export, serve = require "mtl.export", require "mtl.serve"
    local ok, err = pcall(export.load, dir)
    if not ok then note(f, err) end
    local oks, s = pcall(serve.load, dir)
    if oks then
      local text = MODEL_FILES.request
      local n = select(2, text:gsub("\n", ""))
      s.reader:set_text(text)
      local ok2, err2 = pcall(s.score_text, s, n)
      if not ok2 then note(f, err2) end
    else
      note(f, s)
    end
    sys.remove_tree(dir)
  end,
  ckpt = function(f)
    local v = mtl.load(f)
    -- touch what came back
    local function walk(x, d)
      if d > 300 then return end
      if type(x) == "table" then for k, y in pairs(x) do walk(k, d + 1); walk(y, d + 1) end
      elseif type(x) == "userdata" then tostring(x) end
    end
    walk(v, 0)
  end,
}

mtl.checkpoint.register("fz.Obj", function(state) return { obj = state } end)
mtl.checkpoint.register("fz.Fail", function(state) error("loader refuses " .. type(state)) end)

-- the seed model directory's files, read once (target modeldir)
if target == "modeldir" then
  local seed = os.getenv("MTL_FUZZ_DIR") .. "/seeds/"
  MODEL_FILES = {}
  for _, name in ipairs({ "manifest.json", "config.lua", "model.ckpt" }) do
    MODEL_FILES[name] = assert(io.open(seed .. "model/" .. name, "rb")):read("*a")
  end
  MODEL_FILES.request = assert(io.open(seed .. "request.csv", "rb")):read("*a")
end

local run = assert(RUN[target], "unknown target")
local n, nerr = 0, 0
for f in io.lines(listfile) do
  io.stderr:write("FILE ", f, "\n")
  local ok, err = pcall(run, f)
  n = n + 1
  if not ok then nerr = nerr + 1; note(f, err) end
  if n % 10 == 0 then collectgarbage() end
end
msglog:close()
io.stderr:write(string.format("done %d files, %d errors\n", n, nerr))
collectgarbage()

