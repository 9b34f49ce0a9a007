-- mtl.export: self-contained model directories (docs/cli.md, "mtl export").
--
--   export.write(model, cfg, "models/mmoe-v1", {source = "runs/mmoe/checkpoints/step-900.ckpt"})
--   local m = export.load("models/mmoe-v1")    -- {cfg =, model =, manifest =, step =}
--
-- A model directory holds
--   manifest.json  what it is: format, model, tasks and outputs, the input
--                  columns and features, files, step, source checkpoint
--   config.lua     the config it was trained with (plain data, a Lua table)
--   model.ckpt     mtl.save of {format = "mtl-export-1", model = state_dict,
--                  features = {fitted = ..., tables = {name = embedding state}}}
-- Nothing else is needed to score rows: `mtl predict DIR --input ...`.
local json = require "cjson"
local sys = require "mtl.sys"

local export = {}

export.FORMAT = "mtl-export-1"

-- ---- a config as Lua source -------------------------------------------------------------
local function is_ident(k)
  return type(k) == "string" and k:match("^[%a_][%w_]*$") and not ({
    ["and"] = 1, ["break"] = 1, ["do"] = 1, ["else"] = 1, ["elseif"] = 1, ["end"] = 1, ["false"] = 1, ["for"] = 1,
    ["function"] = 1, ["goto"] = 1, ["if"] = 1, ["in"] = 1, ["local"] = 1, ["nil"] = 1, ["not"] = 1, ["or"] = 1,
    ["repeat"] = 1, ["return"] = 1, ["then"] = 1, ["true"] = 1, ["until"] = 1, ["while"] = 1 })[k]
end

local function literal(v, indent, path, seen)
  local t = type(v)
  if t == "string" then return string.format("%q", v) end
  if t == "boolean" then return tostring(v) end
  if t == "number" then
    if v ~= v then return "0/0" end
    if v == math.huge then return "math.huge" end
    if v == -math.huge then return "-math.huge" end
    if v == math.floor(v) and math.abs(v) < 2 ^ 53 then return string.format("%d", v) end
    return string.format("%.17g", v)
  end
  if t ~= "table" then error(string.format("export: %s: cannot write a %s into a config", path, t), 0) end
  if seen[v] then error(string.format("export: %s: the config refers back to itself", path), 0) end
  seen[v] = true
  local n = #v
  local items = {}
  local inner = indent .. "  "
  for i = 1, n do items[#items + 1] = literal(v[i], inner, path .. "[" .. i .. "]", seen) end
  local keys = {}
  for k in pairs(v) do
    if not (type(k) == "number" and k >= 1 and k <= n and k % 1 == 0) then keys[#keys + 1] = k end
  end
  table.sort(keys, function(a, b)
    if type(a) ~= type(b) then return type(a) < type(b) end
    return a < b
  end)
  for _, k in ipairs(keys) do
    local key = is_ident(k) and k or ("[" .. literal(k, inner, path, seen) .. "]")
    items[#items + 1] = key .. " = " .. literal(v[k], inner, path .. "." .. tostring(k), seen)
  end
  seen[v] = nil
  if #items == 0 then return "{}" end
  local flat = "{ " .. table.concat(items, ", ") .. " }"
  if #flat + #indent <= 100 and not flat:find("\n") then return flat end
  return "{\n" .. inner .. table.concat(items, ",\n" .. inner) .. ",\n" .. indent .. "}"
end

-- A value (a config: tables, strings, numbers, booleans) as Lua source that
-- returns it.
function export.to_lua(v, header)
  return (header or "") .. "return " .. literal(v, "", "config", {}) .. "\n"
end

local function write_file(path, text)
  local f, err = io.open(path, "w")
  if not f then error(string.format("export: cannot write %s: %s", path, tostring(err)), 0) end
  f:write(text)
  local ok, cerr = f:close()
  if not ok then error(string.format("export: cannot write %s: %s", path, tostring(cerr)), 0) end
end

local write_into

-- Writes a model (a Ranker, or a training run's: weights, fitted transforms,
-- embedding tables) and cfg to dir. opts.source, opts.step: where the
-- weights came from. The files go to a temporary directory next to dir,
-- which then replaces dir in one rename: a failed export leaves no partial
-- directory and an existing one as it was.
function export.write(model, cfg, dir, opts)
  sys.replace(dir, function(tmp) write_into(model, cfg, tmp, opts) end, { dir = true })
  return dir
end

function write_into(model, cfg, dir, opts)
  opts = opts or {}
  local mtl = require "mtl"
  model = require("mtl.ranker").of(model)
  sys.mkdir_p(dir)
  local saved = {}
  for k, v in pairs(cfg) do saved[k] = v end
  saved.model_dir = nil
  -- vocabulary files are copied in, named relative to the directory
  local feats_copy = {}
  for i, f in ipairs(cfg.features or {}) do
    local c = {}
    for k, v in pairs(f) do c[k] = v end
    if f.vocab_file then
      local name = "vocab_" .. f.name:gsub("[^%w_.-]", "_") .. ".txt"
      local src = io.open(f.vocab_file, "rb")
      if not src then error(string.format("export: cannot read vocab_file %s of feature '%s'", f.vocab_file, f.name), 0) end
      write_file(dir .. "/" .. name, src:read("*a"))
      src:close()
      c.vocab_file = name
    end
    feats_copy[i] = c
  end
  saved.features = feats_copy
  write_file(dir .. "/config.lua", export.to_lua(saved,
    "-- The config of an exported mtl model (written by `mtl export`).\n"))
  mtl.save(dir .. "/model.ckpt", { format = export.FORMAT, model = model:state_dict(), features = model.features:state(),
                                   step = opts.step })
  local tasks = {}
  for _, t in ipairs(model.tasks) do
    tasks[#tasks + 1] = { name = t.name, label = type(t.label) == "string" and t.label or nil }
  end
  local feats = {}
  for _, s in ipairs(model.features.specs) do
    feats[#feats + 1] = { name = s.name, type = s.type, column = s.column, columns = s.columns, dim = s.embedded and s.dim or nil }
  end
  local columns = {}
  for _, c in ipairs(cfg.data.columns or {}) do columns[#columns + 1] = { name = c.name, type = c.type or "string" } end
  local manifest = {
    format = export.FORMAT,
    created = os.date("!%Y-%m-%dT%H:%M:%SZ"),
    model = cfg.model.name,
    tasks = tasks,
    outputs = model:outputs(),
    labels = cfg.data.labels,
    input_columns = columns,
    separator = cfg.data.separator or ",",
    features = feats,
    input_dim = model.features.output_dim,
    rank = cfg.rank,
    step = opts.step,
    source = opts.source,
    files = { config = "config.lua", weights = "model.ckpt" },
    precision = opts.precision, -- the default inference precision (nil: fp32)
  }
  write_file(dir .. "/manifest.json", json.encode(manifest) .. "\n")
  return dir
end

-- Whether path is a model directory (it has a manifest.json of this format,
-- of at most 16 MiB).
function export.is_model_dir(path)
  local f = io.open(path .. "/manifest.json")
  if not f then return false end
  local text = f:read(16 * 2 ^ 20 + 1) or ""
  f:close()
  if #text > 16 * 2 ^ 20 then return false end
  local ok, m = pcall(json.decode, text)
  return ok and type(m) == "table" and m.format == export.FORMAT, m
end

-- Makes a model directory's relative file names (vocab_file) point into dir.
function export.resolve_paths(cfg, dir)
  for _, f in ipairs(cfg.features or {}) do
    if f.vocab_file and f.vocab_file:sub(1, 1) ~= "/" then f.vocab_file = dir .. "/" .. f.vocab_file end
  end
  return cfg
end

-- The path of one of a model directory's files (key: "config", "weights"),
-- which the manifest must name as a plain file inside the directory.
function export.file(dir, manifest, key)
  local name = type(manifest.files) == "table" and manifest.files[key]
  if type(name) ~= "string" or not name:match("^[%w_][%w_.%-]*$") then
    error(string.format("export: %s/manifest.json: files.%s must name a file in the directory, got %s", dir, key,
      type(name) == "string" and string.format("%q", name) or tostring(name)), 0)
  end
  return dir .. "/" .. name
end

-- The config of a model directory as a table, read as data and never run
-- (mtl.config.read_data): config.lua holds one table literal, as export.write
-- (and every earlier mtl) writes it. Anything else, bytecode or code, is
-- refused with a message that says to export the model again.
function export.read_config(dir, manifest)
  local ok, cfg = pcall(require("mtl.config").read_data, export.file(dir, manifest, "config"))
  if not ok then
    error(string.format("export: %s (a model directory's config is data, never run: export the model again "
      .. "with `mtl export` if this one was written otherwise)", tostring(cfg)), 0)
  end
  return cfg
end

-- Runs fn(...) under a memory budget (mtl.memory_budget, this thread only):
-- building a model from a directory may allocate at most 4 times its weights
-- file plus 64 MiB (about 2 times is what it takes), so a config.lua that asks
-- for tables or layers far larger than model.ckpt holds is refused before the
-- memory is taken.
function export.within_budget(dir, weights, fn, ...)
  local mtl = require "mtl"
  local st = sys.stat(weights)
  local budget = 4 * (st and st.size or 0) + 64 * 2 ^ 20
  mtl.memory_budget(budget)
  local res = { pcall(fn, ...) }
  mtl.memory_budget(nil)
  if res[1] then return unpack(res, 2, table.maxn(res)) end
  local e = tostring(res[2])
  if e:find("out of memory", 1, true) and e:find("budget", 1, true) then
    error(string.format("export: %s: building the model would allocate more than %d bytes (4 times %s plus 64 MiB): "
      .. "its config asks for more than its weights hold (%s)", dir, budget, weights, e), 0)
  end
  error(res[2], 0)
end

-- Loads a model directory: {cfg =, model = (a Ranker in eval mode), manifest =, step =}.
function export.load(dir)
  local ok, manifest = export.is_model_dir(dir)
  if not ok then error(string.format("export: %s is not an mtl model directory (no manifest.json of format %s)", dir, export.FORMAT), 0) end
  local cfg = export.resolve_paths(export.read_config(dir, manifest), dir)
  local mtl = require "mtl"
  local weights = export.file(dir, manifest, "weights")
  return export.within_budget(dir, weights, function()
    local state = mtl.load(weights)
    local model = require("mtl.ranker").load(cfg, state)
    model:eval()
    return { cfg = cfg, model = model, manifest = manifest, step = state.step }
  end)
end

return export
