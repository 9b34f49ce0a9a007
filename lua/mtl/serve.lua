-- mtl.serve: the Lua half of the C serving library (runtime/serve,
-- docs/serving.md). Each embedded LuaJIT state of a served model holds one
-- Scorer; C calls it with rows and reads back probabilities.
--
--   local serve = require "mtl.serve"
--   local s = serve.load("model_dir")                 -- the first state: reads the weights
--   local w = serve.load("model_dir", {tables = s:table_list()})  -- another state: shares them
--   s.reader:set_text("row 1\nrow 2\n"); local probs = s:score_text(2)  -- {[n] per output}
--
-- A Scorer scores in eval mode; C turns gradient recording off around each
-- call. Rows are in the training schema (data.columns). Columns no feature
-- reads (labels included) are not parsed: a request may leave them empty.
local mtl = require "mtl"
local features = require "mtl.features"
local train = require "mtl.train"

local serve = {}
serve.FORMAT = "mtl-model-1"

local function fail(fmt, ...) error(string.format(fmt, ...), 0) end

-- Reads dir/config.ckpt (the small part of the model directory).
function serve.read_config(dir)
  local path = dir .. "/config.ckpt"
  local f = io.open(path, "rb")
  if not f then fail("'%s' is not a model directory: cannot open '%s'", dir, path) end
  f:close()
  local ok, st = pcall(mtl.load, path)
  if not ok then fail("%s", st) end
  if type(st) ~= "table" or st.format ~= serve.FORMAT or type(st.config) ~= "table" then
    fail("'%s' is not an mtl model (expected format '%s')", path, serve.FORMAT)
  end
  return st
end

local Scorer = {}
Scorer.__index = Scorer
serve.Scorer = Scorer

-- The embedding tables in the order Features:build creates them.
local function created_tables(F)
  local list = {}
  for _, s in ipairs(F.specs) do
    if s.embedded and not s.shared then list[#list + 1] = F.tables[s.name] end
  end
  return list
end

-- Builds features whose tables are the given ones (shared with another state)
-- instead of new ones: mtl.Embedding is swapped for the time of the build.
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

-- Columns used by some feature (their values are parsed).
local function used_columns(F)
  local used = {}
  for _, s in ipairs(F.specs) do
    if s.column then used[s.column] = true end
    if s.key then used[s.key] = true end
    for _, c in ipairs(s.columns or {}) do used[c] = true end
  end
  return used
end

-- serve.load(dir[, opts]) -> Scorer. opts.tables: embedding tables shared
-- with another Scorer of the same directory (then no weights are read: the
-- caller shares the dense parameters too, see Scorer:parameter_list()).
function serve.load(dir, opts)
  opts = opts or {}
  local st = serve.read_config(dir)
  local cfg = st.config
  local F = features.new(cfg.features, cfg.data)
  F.fitted = st.fitted or {}
  if opts.tables then build_with_tables(F, opts.tables) else F:build() end
  local model = train.Ranker(cfg, F)
  if not opts.tables then
    local path = dir .. "/weights.ckpt"
    local ok, w = pcall(mtl.load, path)
    if not ok then fail("%s", w) end
    if type(w) ~= "table" or type(w.model) ~= "table" then fail("'%s' holds no model weights", path) end
    ok, w.err = pcall(model.load_state_dict, model, w.model)
    if not ok then fail("%s: %s", path, w.err) end
    for name, sd in pairs(w.tables or {}) do
      local t = F.tables[name] or fail("%s: a table '%s' that the features do not define", path, name)
      t:load_state_dict(sd)
    end
    for _, s in ipairs(F.specs) do
      if s.embedded and not s.shared and not (w.tables or {})[s.name] then
        fail("%s: no weights for the embedding table of feature '%s'", path, s.name)
      end
    end
  end
  model:eval()
  local self = setmetatable({ dir = dir, cfg = cfg, features = F, model = model, outputs = st.outputs }, Scorer)
  self:make_reader()
  return self
end

-- The reader of requests: the training schema, in-memory text, no header,
-- all rows of a request in one batch; unused columns and labels skipped.
function Scorer:make_reader()
  local F, cfg = self.features, self.cfg
  local used = used_columns(F)
  if cfg.data.fields then for _, f in ipairs(cfg.data.fields) do used[f] = true end end
  local o = F:reader_options(nil, 0, { text = "", text_name = "request", header = false, separator = cfg.data.separator })
  o.files = nil
  if cfg.data.quote ~= nil then o.quote = cfg.data.quote end
  self.columns = {}
  for i, c in ipairs(o.columns) do
    if not used[c.name] then c.type, c.default, c.group, c.standardize = "skip", nil, nil, nil end
    self.columns[i] = { name = c.name, type = c.type, default = c.default, standardize = c.standardize,
                        values = c.values, group = c.group }
  end
  self.reader = mtl.data.csv(o)
end

-- Probabilities of a batch: a list of float [n] tensors, one per output.
function Scorer:score(batch)
  local out = self.model(batch)
  local res = {}
  for i, name in ipairs(self.outputs) do
    local o = out[name] or fail("the model has no output '%s'", name)
    res[i] = o.prob or fail("output '%s' has no probabilities", name)
  end
  return res
end

-- Scores the n rows the reader holds (set by C or reader:set_text).
function Scorer:score_text(n)
  local batch = self.reader:next()
  local got = batch and batch.size or 0
  if got ~= n then fail("expected %d rows, read %d", n, got) end
  return self:score(batch)
end

-- What C shares between states: the tables in build order, and the dense
-- parameters and buffers by name.
function Scorer:table_list() return created_tables(self.features) end

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
