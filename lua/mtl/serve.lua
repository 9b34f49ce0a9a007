-- mtl.serve: the Lua half of the C serving library (runtime/serve,
-- docs/serving.md). Each embedded LuaJIT state of a served model holds one
-- Scorer; C gives it rows and reads back one float tensor per output.
--
--   local serve = require "mtl.serve"
--   local s = serve.load("model_dir")         -- a directory written by `mtl export`
--   -- another state of the same model: the config and fitted transforms as
--   -- plain tables (C copies them over), the first state's embedding tables
--   local w = serve.build(s.cfg, s.features.fitted, s:table_list())
--   s.reader:set_text("row 1\nrow 2\n"); local out = s:score_text(2)  -- {[2] per output}
--
-- Outputs, in order: the tasks' probabilities, further model outputs (ESMM's
-- ctcvr), rank_score, and score when cfg.rank.expression is set: the same
-- columns as `mtl predict` (lua/mtl/predict.lua), computed by mtl.rank.
-- Rows are in the training schema (data.columns, no header). Columns that no
-- feature and no ranking formula reads, labels included, are not parsed.
-- A Scorer scores in eval mode; C turns gradient recording off around calls.
local mtl = require "mtl"
local features = require "mtl.features"
local ranker = require "mtl.ranker"
local export = require "mtl.export"
local rank = require "mtl.rank"

local serve = {}

local function fail(fmt, ...) error(string.format(fmt, ...), 0) end
-- An error's text without a leading Lua source position (the library's own files).
local function text(err) return (tostring(err):gsub("^[^%s:]+%.lua:%d+: ", "")) end

-- The config of an exported model directory, as export.load reads it: data,
-- never run (export.read_config).
local function read_config(dir, manifest)
  local path = export.file(dir, manifest, "config")
  local ok, cfg = pcall(export.read_config, dir, manifest)
  if not ok then fail("%s", (text(cfg):gsub("^export: ", ""))) end
  if type(cfg) ~= "table" or type(cfg.data) ~= "table" or type(cfg.features) ~= "table" or type(cfg.model) ~= "table" then
    fail("%s does not return a config (a table with data, features and model)", path)
  end
  export.resolve_paths(cfg, dir)
  -- vocabulary files are read in now (as Features:vocab_keys reads them), so
  -- the states C creates later from this config read no file
  for i, f in ipairs(cfg.features) do
    if f.vocab_file then
      local fh = io.open(f.vocab_file) or fail("feature %d (%s): cannot open vocab_file '%s'", i, tostring(f.name), f.vocab_file)
      local list = {}
      for line in fh:lines() do
        line = line:gsub("\r$", "")
        if line ~= "" then list[#list + 1] = line end
      end
      fh:close()
      f.vocab, f.vocab_file = list, nil
    end
  end
  return cfg
end

-- serve.load(dir[, precision]) -> Scorer: the first state of a model, which
-- reads the directory (manifest.json, config.lua, model.ckpt). precision:
-- "fp32" or "bf16" (nil: the manifest's, else fp32); the Scorer's precision
-- field is the one in effect (bf16 needs AVX512-BF16). The packed bf16
-- weights live with the parameters, which the other states share.
function serve.load(dir, precision)
  local ok, manifest = export.is_model_dir(dir)
  if not ok then
    fail("'%s' is not an mtl model directory (no manifest.json of format %s; write one with `mtl export`)", dir,
      export.FORMAT)
  end
  local cfg = read_config(dir, manifest)
  local path = export.file(dir, manifest, "weights")
  local okb, s = pcall(export.within_budget, dir, path, function()
    local loaded, state = pcall(mtl.load, path)
    if not loaded then fail("%s", state) end
    if type(state) ~= "table" or state.format ~= export.FORMAT or type(state.model) ~= "table"
       or type(state.features) ~= "table" then
      fail("%s holds no exported model (format %s)", path, export.FORMAT)
    end
    return serve.build(cfg, nil, nil, state, path)
  end)
  if not okb then fail("%s", (text(s):gsub("^export: ", ""))) end
  s.dir = dir
  local p = precision or manifest.precision or "fp32"
  if p ~= "fp32" and p ~= "bf16" then fail("precision must be 'fp32' or 'bf16', got '%s'", tostring(p)) end
  s.precision = ranker.set_precision(s.model, p, true)
  return s
end

local Scorer = {}
Scorer.__index = Scorer
serve.Scorer = Scorer

-- Builds features whose tables are the given ones (another state's) instead
-- of new ones: mtl.Embedding is swapped for the time of the build.
local function build_with_tables(F, tables)
  local real, i = mtl.Embedding, 0
  mtl.Embedding = function(o)
    i = i + 1
    local t = tables[i] or fail("the shared model has fewer embedding tables than the config makes")
    if t:dim() ~= o.dim then fail("shared embedding table %d has dim %d, the config makes %d", i, t:dim(), o.dim) end
    return t
  end
  local ok, err = pcall(F.build, F)
  mtl.Embedding = real
  if not ok then error(err, 0) end
  if i ~= #tables then fail("the shared model has %d embedding tables, the config makes %d", #tables, i) end
end

-- serve.build(cfg, fitted, tables[, state, path]) -> Scorer. With state (a
-- loaded model.ckpt) the weights are loaded from it; otherwise the tables
-- are another Scorer's and C shares that Scorer's dense parameters
-- (Scorer:parameter_list()) into this one.
function serve.build(cfg, fitted, tables, state, path)
  local model
  if state then
    model = ranker.load(cfg, state, path)
  else
    local F = features.new(cfg.features, cfg.data, cfg.groups)
    F.fitted = fitted or {}
    build_with_tables(F, tables or {})
    model = ranker.Ranker(cfg, F)
  end
  model:eval()
  local self = setmetatable({ cfg = cfg, features = model.features, model = model }, Scorer)
  self:make_ranking()
  self:make_readers()
  return self
end

-- The outputs and the ranking formula, as `mtl predict` has them.
function Scorer:make_ranking()
  local model, cfg = self.model, self.cfg
  local outputs = model:outputs()
  local tasks, columns = {}, {}
  for _, t in ipairs(model.tasks) do tasks[#tasks + 1] = t.name end
  for _, c in ipairs(cfg.data.columns or {}) do columns[#columns + 1] = c.name end
  self.model_outputs = outputs
  self.ranker = rank.new(cfg.rank, { tasks = tasks, outputs = outputs, direct = model:direct_outputs(), columns = columns })
  self.rank_columns = self.ranker.columns
  self.outputs = {}
  for i, n in ipairs(outputs) do self.outputs[i] = n end
  self.outputs[#self.outputs + 1] = "rank_score"
  if self.ranker.expression then self.outputs[#self.outputs + 1] = "score" end
  self.num_tasks = #tasks
end

-- Columns some feature reads (their values are parsed).
local function used_columns(F)
  local used = {}
  for _, s in ipairs(F.specs) do
    if s.column then used[s.column] = true end
    if s.key then used[s.key] = true end
    for _, c in ipairs(s.columns or {}) do used[c] = true end
  end
  return used
end

-- The readers of requests: the training schema, rows in memory, no header,
-- all rows of a request in one batch. `reader` parses what the features
-- read; `rank_reader` (when ranking reads columns) the ranking columns as
-- plain numbers (empty: NaN).
function Scorer:make_readers()
  local F, dc = self.features, self.cfg.data
  local used = used_columns(F)
  if dc.fields then for _, f in ipairs(dc.fields) do used[f] = true end end
  local extra = { text = "", text_name = "request", header = false, separator = dc.separator }
  if dc.quote ~= nil then extra.quote = dc.quote end
  local o = F:reader_options(nil, 0, extra)
  o.files = nil
  self.columns = {}
  for i, c in ipairs(o.columns) do
    if not used[c.name] then c.type, c.default, c.group, c.standardize, c.finite, c.range = "skip", nil, nil, nil, nil, nil end
    self.columns[i] = { name = c.name, type = c.type, default = c.default, standardize = c.standardize,
                        values = c.values, group = c.group }
  end
  self.reader = mtl.data.csv(o)
  if #self.rank_columns > 0 then
    local want = {}
    for _, c in ipairs(self.rank_columns) do want[c] = true end
    local r = F:reader_options(nil, 0, extra)
    r.files = nil
    for _, c in ipairs(r.columns) do
      if want[c.name] then
        c.type, c.default, c.group, c.standardize, c.values, c.separator, c.kv_separator = "float", "nan", nil, nil, nil, nil, nil
        c.finite, c.range = nil, nil -- empty: NaN
      else
        c.type, c.default, c.group, c.standardize, c.values, c.finite, c.range = "skip", nil, nil, nil, nil, nil, nil
      end
    end
    self.rank_reader = mtl.data.csv(r)
  end
end

-- Scores a batch (a reader's, or built by C from typed columns); rank_values:
-- {column = float tensor [n]} for the ranking columns. Returns a list of
-- float [n] tensors, one per output.
function Scorer:score(batch, rank_values)
  local out = self.model(batch)
  local n = batch.size
  local res, env = {}, {}
  for i, name in ipairs(self.model_outputs) do
    local o = out[name] or fail("the model has no output '%s'", name)
    res[i] = o.prob or fail("output '%s' has no probabilities", name)
    env[name] = res[i]:values()
  end
  for _, c in ipairs(self.rank_columns) do
    local t = rank_values and rank_values[c] or fail("no values of column '%s' for ranking", c)
    env[c] = t:values()
  end
  self.ranker:score(env, n)
  res[#res + 1] = mtl.tensor(env.rank_score)
  if self.ranker.expression then res[#res + 1] = mtl.tensor(env.score) end
  return res
end

-- Scores the n rows the readers hold (C set their text).
function Scorer:score_text(n)
  local batch = self.reader:next()
  local got = batch and batch.size or 0
  if got ~= n then fail("expected %d rows, read %d", n, got) end
  local rank_values
  if self.rank_reader then
    local rb = self.rank_reader:next()
    if not rb or rb.size ~= n then fail("expected %d rows for ranking, read %d", n, rb and rb.size or 0) end
    rank_values = rb.columns
  end
  return self:score(batch, rank_values)
end

-- What C shares between states: the tables in the order the features build
-- them, and the dense parameters and buffers by name.
function Scorer:table_list()
  local F, list = self.features, {}
  for _, s in ipairs(F.specs) do
    if s.embedded and not s.shared then list[#list + 1] = F.tables[s.name] end
  end
  return list
end

function Scorer:parameter_list()
  local names, tensors = {}, {}
  for _, list in ipairs { self.model:named_parameters(), self.model:named_buffers() } do
    for _, np in ipairs(list) do
      names[#names + 1], tensors[#tensors + 1] = np[1], np[2]
    end
  end
  return names, tensors
end

return serve
