-- Fixture of the serving test (test_serve.c runs it in a LuaJIT state of its
-- own): generates rows that exercise every feature type, trains two small
-- models for a few steps, exports them as `mtl export` does (mtl.export),
-- and returns the rows (as CSV lines, fields and typed columns) with what
-- `mtl predict` (mtl.predict, the Lua model) writes for them: each output's
-- probability, rank_score and the expression's score. The C API must
-- reproduce those.
--
--   local fixture = dofile("fixture.lua"); local cases = fixture(out_dir)
local mtl = require "mtl"
local train = require "mtl.train"
local export = require "mtl.export"
local predict = require "mtl.predict"

local NAMES = { "click", "buy", "uid", "city", "gender", "tags", "wtags", "item", "cat", "pref", "age", "price",
                "score", "d1", "d2", "note" }

-- One row of generated values (as strings, in NAMES order).
local function make_row(rnd, labels)
  local cities = { "paris", "lyon", "nice", "lille", "brest", "metz" }
  local r = {}
  r.click = labels and tostring(rnd() < 0.4 and 1 or 0) or ""
  r.buy = labels and tostring(rnd() < 0.2 and 1 or 0) or ""
  r.uid = tostring(math.floor(rnd() * 100))
  r.city = cities[1 + math.floor(rnd() * #cities)]
  r.gender = ({ "m", "f", "x" })[1 + math.floor(rnd() * 3)]      -- "x" is outside the vocabulary
  local tags = {}
  for k = 1, math.floor(rnd() * 4) do tags[k] = tostring(math.floor(rnd() * 30)) end -- 0 to 3 tags
  r.tags = table.concat(tags, "|")
  local wt = {}
  for k = 1, 1 + math.floor(rnd() * 3) do wt[k] = string.format("%d:%.3f", math.floor(rnd() * 30), 0.25 + rnd()) end
  r.wtags = table.concat(wt, ";")
  r.item = tostring(math.floor(rnd() * 200))
  r.cat = tostring(math.floor(rnd() * 10))
  local pref = {}
  for k = 1, 2 do pref[k] = string.format("%d:%.2f", math.floor(rnd() * 10), rnd() * 3) end
  r.pref = table.concat(pref, ";")
  r.age = string.format("%.1f", 15 + rnd() * 50)
  r.price = string.format("%.2f", math.exp(rnd() * 5))
  r.score = string.format("%.4f", rnd() * 10 - 2)
  r.d1 = string.format("%.5f", rnd() * 4 - 1)
  r.d2 = string.format("%.3e", rnd() * 1000)
  r.note = rnd() < 0.5 and "a, b" or "plain"           -- unused; a comma needs quotes
  local out = {}
  for i, n in ipairs(NAMES) do out[i] = r[n] end
  return out
end

local function csv_line(fields)
  local parts = {}
  for i, f in ipairs(fields) do
    parts[i] = f:find('[,"]') and ('"' .. f:gsub('"', '""') .. '"') or f
  end
  return table.concat(parts, ",")
end

local function data_config(dir)
  return {
    train = dir .. "/train.csv", labels = { "click", "buy" }, batch_size = 64,
    columns = {
      { name = "click", type = "float", default = 0 }, { name = "buy", type = "float", default = 0 },
      { name = "uid", type = "int" }, { name = "city", type = "string" }, { name = "gender", type = "string" },
      { name = "tags", type = "ids", separator = "|", default = "" },
      { name = "wtags", type = "kv", separator = ";" },
      { name = "item", type = "int" }, { name = "cat", type = "int" },
      { name = "pref", type = "kv", separator = ";" },
      { name = "age", type = "float" }, { name = "price", type = "float" }, { name = "score", type = "float" },
      { name = "d1", type = "float" }, { name = "d2", type = "float", default = 0 },
      { name = "note", type = "string" },
    },
  }
end

local FEATURES = {
  { name = "uid", type = "id", column = "uid", num_buckets = 100, dim = 4 },
  { name = "city", type = "id", column = "city", hash_bucket_size = 20, dim = 4 },
  { name = "gender", type = "id", column = "gender", vocab_file = "VOCAB", dim = 3 },
  { name = "tags", type = "tag", column = "tags", num_buckets = 30, dim = 4, combiner = "mean" },
  { name = "wtags", type = "tag", column = "wtags", num_buckets = 30, dim = 4, combiner = "sum" },
  { name = "item", type = "id", column = "item", num_buckets = 200, dim = 4 },
  { name = "uid_x_item", type = "combo", columns = { "uid", "item" }, hash_bucket_size = 97, dim = 3 },
  { name = "age", type = "raw", column = "age", boundaries = { 20, 30, 40, 50 }, dim = 3 },
  { name = "price", type = "raw", column = "price", normalize = "log1p" },
  { name = "score", type = "raw", column = "score", normalize = "minmax" },
  { name = "d1", type = "raw", column = "d1", normalize = "zscore" },
  { name = "d2", type = "raw", column = "d2", normalize = "zscore" },
  { name = "pref_of_cat", type = "lookup", column = "pref", key = "cat", missing = -1 },
}

-- Typed columns of rows (for mtl_model_score_columns): {name = {ids =, values =, strings =, offsets =}}.
local function typed_columns(rows)
  local col = {}
  for i, n in ipairs(NAMES) do col[n] = i end
  local function list(name, f)
    local out = {}
    for r, row in ipairs(rows) do out[r] = f(row[col[name]]) end
    return out
  end
  local function bag(name, kv)
    local ids, values, offsets = {}, {}, { 0 }
    for _, row in ipairs(rows) do
      local s = row[col[name]]
      for tok in s:gmatch(kv and "[^;]+" or "[^|]+") do
        if kv then
          local k, v = tok:match("^(%-?%d+):(.*)$")
          ids[#ids + 1], values[#values + 1] = tonumber(k), tonumber(v)
        else
          ids[#ids + 1] = tonumber(tok)
        end
      end
      offsets[#offsets + 1] = #ids
    end
    return { ids = ids, values = kv and values or nil, offsets = offsets }
  end
  return {
    uid = { ids = list("uid", tonumber) }, item = { ids = list("item", tonumber) }, cat = { ids = list("cat", tonumber) },
    city = { strings = list("city", tostring) }, gender = { strings = list("gender", tostring) },
    tags = bag("tags", false), wtags = bag("wtags", true), pref = bag("pref", true),
    age = { values = list("age", tonumber) }, price = { values = list("price", tonumber) },
    score = { values = list("score", tonumber) }, d1 = { values = list("d1", tonumber) },
    d2 = { values = list("d2", tonumber) },
  }
end

return function(dir)
  require("mtl.sys").mkdir_p(dir)
  local seed = 12345
  local function rnd() -- a small LCG: the same rows on every machine
    seed = (seed * 1103515245 + 12345) % 2147483648
    return seed / 2147483648
  end
  local f = assert(io.open(dir .. "/train.csv", "w"))
  f:write(table.concat(NAMES, ","), "\n")
  for _ = 1, 512 do f:write(csv_line(make_row(rnd, true)), "\n") end
  f:close()
  local request = {}
  for i = 1, 300 do request[i] = make_row(rnd, false) end

  local cases = {}
  local models = {
    { name = "mmoe", experts = 3, expert = { 16, 8 }, tower = { 8 },
      tasks = { { name = "click", label = "click" }, { name = "buy", label = "buy" } } },
    { name = "esmm", tower = { 8 }, ctr = { name = "ctr", label = "click" }, cvr = { name = "cvr", label = "buy" } },
  }
  local ranks = { { price = "price", alpha = 0.5, expression = "click * 2 + buy - log(score + 3)" }, nil }
  local vf = assert(io.open(dir .. "/gender_vocab.txt", "w"))
  vf:write("m\nf\n")  -- a vocabulary file: `mtl export` copies it into the model directory
  vf:close()
  for _, f in ipairs(FEATURES) do if f.vocab_file then f.vocab_file = dir .. "/gender_vocab.txt" end end
  for k, model in ipairs(models) do
    local cfg = { data = data_config(dir), features = FEATURES, model = model, rank = ranks[k],
                  train = { epochs = 1, seed = k, log_every = 1000 } }
    local run = train.new(cfg, { quiet = true })
    run:fit()
    local out_dir = dir .. "/" .. model.name
    export.write(run, cfg, out_dir, { step = run.step })
    -- what `mtl predict` writes for the request (a file with a header)
    local path = dir .. "/request_" .. model.name .. ".csv"
    local rf = assert(io.open(path, "w"))
    rf:write(table.concat(NAMES, ","), "\n")
    for _, row in ipairs(request) do rf:write(csv_line(row), "\n") end
    rf:close()
    local scores = dir .. "/scores_" .. model.name .. ".csv"
    run.model:eval()
    predict.file(run, cfg, { input = path, output = scores })
    local expected, outputs = {}, nil
    for line in io.lines(scores) do
      local fields = predict.split(line, ",", '"')
      if not outputs then
        outputs = {}
        for j, h in ipairs(fields) do outputs[j] = h:gsub("^p_", "") end
        for j = 1, #outputs do expected[j] = {} end
      else
        for j, v in ipairs(fields) do expected[j][#expected[j] + 1] = tonumber(v) end
      end
    end
    local lines = {}
    for i, row in ipairs(request) do lines[i] = csv_line(row) end
    cases[k] = { dir = out_dir, outputs = outputs, lines = lines, fields = request, expected = expected,
                 columns = typed_columns(request), ncolumns = #NAMES }
  end
  return cases
end
