-- ONNX export end to end (docs/export.md): for every model the registry lists
-- (and the variants of shared_bottom, MMoE and DBMTL, and a model file of
-- this spec's own with a block that has an onnx hook), on data with every
-- kind of feature column: `mtl train`, `mtl export --format onnx`, the file
-- checked by python3-onnx's checker (full_check), run in ONNX Runtime
-- (npm onnxruntime-node on Node.js, tools/onnx_run.js) on 1,000 rows whose
-- inputs follow the sidecar's rules, and compared with `mtl predict` on the
-- same rows: every probability within 1e-5.
local json = require "cjson"
local shell = require "helpers.shell"
local tiny = require "cli.tiny"
local mtl = require "mtl"
local onnx = require "mtl.onnx"

local q = shell.quote
local PYTHON = "/usr/bin/python3" -- Debian's, where python3-onnx is installed
local TOLERANCE = 1e-5

-- Where tools/setup.sh installed onnxruntime-node (a folder of the build tree).
local function node_modules()
  local candidates = { shell.build .. "/node", shell.root .. "/build/node" }
  if os.getenv("MTL_NODE_DIR") then table.insert(candidates, 1, os.getenv("MTL_NODE_DIR")) end
  for _, dir in ipairs(candidates) do
    if shell.run("test -d " .. q(dir .. "/node_modules/onnxruntime-node") .. " && echo yes"):find("yes") then
      return dir .. "/node_modules"
    end
  end
  error("onnxruntime-node is not installed in " .. table.concat(candidates, " or ") .. ": run tools/setup.sh")
end

local function sh(cmd)
  local out = shell.run("(" .. cmd .. ") 2>&1; echo \"[exit $?]\"")
  local rc = tonumber(out:match("%[exit (%d+)%]%s*$"))
  if rc ~= 0 then error(string.format("command failed (exit %d): %s\n%s", rc, cmd, out), 2) end
  return (out:gsub("%[exit %d+%]%s*$", ""))
end

-- ---- the data: every feature type, empty bags, values outside vocabularies ------------------
local CITIES = { "paris", "rome", "oslo", "lima", "kyiv" }
local HEADER = "is_click,is_pay,user,item,trigger,device,city,cat,tags,tagw,price,a,b,c,d,e"
local function write_rows(path, n, seed)
  local rnd = tiny.lcg(seed)
  local f = assert(io.open(path, "w"))
  f:write(HEADER, "\n")
  for _ = 1, n do
    local user, item, cat = math.floor(rnd() * 40), math.floor(rnd() * 1000), math.floor(rnd() * 12)
    local a, b = rnd() * 4 - 2, rnd() * 10
    local click = (a + rnd() > 0.6) and 1 or 0
    local pay = (click == 1 and cat % 3 == 0) and 1 or 0
    local tags, tagw = {}, {}
    for _ = 1, math.floor(rnd() * 4) do tags[#tags + 1] = math.floor(rnd() * 30) end
    for _ = 1, math.floor(rnd() * 3) do tagw[#tagw + 1] = string.format("%d:%.3f", math.floor(rnd() * 12), rnd() * 2 - 0.5) end
    local city = rnd() < 0.15 and "atlantis" or CITIES[1 + math.floor(rnd() * #CITIES)]
    f:write(string.format("%d,%d,%d,%d,%d,%s,%s,%d,%s,%s,%s,%.4f,%.4f,%.4f,%.4f,%.4f\n", click, pay, user, item,
      math.floor(rnd() * 1000), rnd() < 0.5 and "ios" or "web", city, cat, table.concat(tags, "|"),
      '"' .. table.concat(tagw, ",") .. '"', rnd() < 0.1 and "" or string.format("%.2f", math.exp(rnd() * 5) - 1),
      a, b, rnd() * 100, rnd() - 0.5, rnd() * 3))
  end
  f:close()
end

local function config(dir, model, extra_path)
  local cfg = {
    data = {
      train = dir .. "/../train.csv", eval = dir .. "/../test.csv", batch_size = 100, labels = { "is_click", "is_pay" },
      columns = {
        { name = "is_click", type = "float" }, { name = "is_pay", type = "float" },
        { name = "user", type = "int" }, { name = "item", type = "int" }, { name = "trigger", type = "int" },
        { name = "device", type = "string" }, { name = "city", type = "string" }, { name = "cat", type = "int" },
        { name = "tags", type = "ids", separator = "|", default = "" },
        { name = "tagw", type = "kv", default = "" },
        { name = "price", type = "float", default = "0" },
        { name = "a", type = "float" }, { name = "b", type = "float" }, { name = "c", type = "float" },
        { name = "d", type = "float" }, { name = "e", type = "float" },
      },
    },
    features = {
      { name = "user", type = "id", column = "user", num_buckets = 40, dim = 4 },
      { name = "item", type = "id", column = "item", hash_bucket_size = 97, dim = 4 },
      { name = "trigger", type = "id", column = "trigger", shared = "item" },
      { name = "device", type = "id", column = "device", hash_bucket_size = 7, dim = 3 },
      { name = "city", type = "id", column = "city", vocab = { "rome", "paris", "oslo", "lima" }, dim = 3 },
      { name = "cat", type = "id", column = "cat", vocab_file = dir .. "/../cats.txt", dim = 3 },
      { name = "tags", type = "tag", column = "tags", num_buckets = 30, dim = 4, combiner = "mean" },
      { name = "tags_sum", type = "id", column = "tags", hash_bucket_size = 11, dim = 2, combiner = "sum" },
      { name = "tagw", type = "tag", column = "tagw", num_buckets = 12, dim = 3, combiner = "sqrtn" },
      { name = "user_x_cat", type = "combo", columns = { "user", "cat" }, hash_bucket_size = 53, dim = 3 },
      { name = "price", type = "raw", column = "price", normalize = "log1p" },
      { name = "price_bin", type = "raw", column = "price", boundaries = { 1, 5, 20.5, 100 }, dim = 2 },
      { name = "a", type = "raw", column = "a", normalize = "zscore" },
      { name = "b", type = "raw", column = "b", normalize = "zscore" },
      { name = "c", type = "raw", column = "c", normalize = "minmax" },
      { name = "d", type = "raw", column = "d" },
      { name = "e_bin", type = "raw", column = "e", bins = { method = "equal_freq", n = 4 }, dim = 2 },
      { name = "cat_weight", type = "lookup", column = "tagw", key = "cat", missing = -1 },
    },
    model = model,
    optimizer = { dense = { name = "adam", lr = 0.01 }, sparse = { name = "adam", lr = 0.01 } },
    train = { epochs = 1, log_every = 100, seed = 5, threads = 1 },
    model_dir = dir .. "/run",
  }
  local f = assert(io.open(dir .. "/config.lua", "w"))
  f:write(require("mtl.export").to_lua(cfg))
  f:close()
  return cfg
end

local TASKS = { { name = "click", label = "is_click" }, { name = "pay", label = "is_pay" } }
local VARIANTS = {
  { id = "shared_bottom_hard", model = { name = "shared_bottom", bottom = { 16, 8 }, tower = { 4 }, batch_norm = true, dropout = 0.1 } },
  { id = "shared_bottom_soft", model = { name = "shared_bottom", sharing = "soft", bottom = { 8 }, tower = { 4 } } },
  { id = "esmm", model = { name = "esmm", tower = { 8, 4 }, batch_norm = true } },
  { id = "mmoe", model = { name = "mmoe", experts = 3, expert = { 8, 4 }, tower = { 4 } } },
  { id = "mmoe_one_gate", model = { name = "mmoe", one_gate = true, experts = 3, expert = { 8 }, tower = { 4 } } },
  { id = "mmoe_unfused", model = { name = "mmoe", fused = false, experts = 2, expert = { 6, 4 }, tower = {} } },
  { id = "cgc", model = { name = "cgc", specific = 2, shared = 1, expert = { 8 }, tower = { 4 } } },
  { id = "ple", model = { name = "ple", levels = 2, specific = 1, shared = 2, expert = { { 8 }, { 6 } }, tower = { 4 } } },
  { id = "dbmtl", model = { name = "dbmtl", bottom = { 16 }, tower = { 8 }, relation = { 4 },
                            tasks = { { name = "click", label = "is_click", logit_input = "tower" },
                                      { name = "pay", label = "is_pay", relations = { "click" } } } } },
  { id = "dbmtl_mmoe", model = { name = "dbmtl", bottom = { 16 }, mmoe = { experts = 3, expert = { 8 } }, tower = { 4 },
                                 tasks = { { name = "click", label = "is_click" },
                                           { name = "pay", label = "is_pay", relations = { "click" } } } } },
  { id = "aitm", model = { name = "aitm", bottom = { 16 }, tower = { 8, 4 } } },
  { id = "backbone", model = { name = "backbone", tower = { 4 }, blocks = {
    { name = "all", list = "all" },
    { name = "senet", inputs = { "all" }, block = "SENet", options = { num_squeeze_group = 1 } },
    { name = "mmoe", inputs = { "senet" }, block = "MMoELayer", options = { tasks = 2, experts = 2, expert = { 8 } } } } } },
  -- EasyRec's activations, each in a layer of its own
  { id = "dbmtl_activations", model = { name = "dbmtl", bottom = { hidden = { 8, 8 }, activation = "selu" },
      mmoe = { experts = 2, expert = { hidden = { 6 }, activation = "swish" } },
      tower = { hidden = { 6, 4 }, activation = "dice", batch_norm = true }, relation = { hidden = { 4 }, activation = "prelu" },
      tasks = { { name = "click", label = "is_click", tower = { hidden = { 4 }, activation = "gelu_tanh" } },
                { name = "pay", label = "is_pay", relations = { "click" }, tower = { hidden = { 5, 4 }, activation = "elu" },
                  relation = { hidden = { 3 }, activation = "softplus" } } } } },
  { id = "mmoe_activations", model = { name = "mmoe", experts = 2, expert = { hidden = { 6 }, activation = "softsign" },
      tower = { hidden = { 4 }, activation = "leaky_relu:0.2" } } },
  { id = "custom", model = { name = "onnx_spec_ops" }, custom = true },
}

-- A model file of this spec's own, found through LUA_PATH like a user's:
-- more ops than the shipped models use, and a block with an onnx hook (its
-- forward uses mtl.where, which has no translation; the hook gives the same
-- values with ops that have one).
local CUSTOM_MODEL = [=[
-- onnx_spec_ops: a model of the ONNX spec, written as any model file is.
local nn = require "mtl.nn"
local mtl = require "mtl"
local ops = require "mtl.onnx.ops"

local Leaky = nn.class("Leaky")
function Leaky:forward(x) return mtl.where(x:gt(0), x, x * 0.2) end
function Leaky:onnx(x) return ops.leaky_relu(x, 0.2) end

local M = nn.class("OnnxSpecOps")
M.options = {}
function M:__init(opts)
  self.tasks = nn.tasks(opts.tasks)
  self.a = nn.MLP{ input = opts.input, hidden = { 8, 6 }, activation = "gelu" }
  self.b = nn.MLP{ input = opts.input, hidden = { 6 }, activation = "tanh", last_activation = false }
  self.norm = nn.LayerNorm(6)
  self.leaky = Leaky()
  self.mix = nn.Linear(6, 4)
  for _, t in ipairs(self.tasks) do self["out_" .. t.name] = nn.Linear(4, 1) end
end
function M:forward(x)
  local B = x:size(1)
  local h = self.norm(self.a(x) + self.b(x))                        -- [B, 6]
  local w = mtl.softmax(mtl.exp(mtl.clamp(h, -3, 3)), 2)             -- [B, 6]
  local pair = mtl.stack({ h, w }, 2)                               -- [B, 2, 6]
  local m = mtl.mean(pair, 2) + mtl.sum(pair:narrow(2, 1, 1), 2) / 3 -- [B, 6]
  local s = self.leaky(self.mix(m))                                  -- [B, 4]
  s = s - mtl.log_softmax(s, 2) * 0.1 + mtl.sqrt(mtl.abs(s)) ^ 2 * 0.05
  local out = {}
  for _, t in ipairs(self.tasks) do
    out[t.name] = nn.head(self["out_" .. t.name](mtl.leaky_relu(s, 0.05)):reshape(B))
  end
  return out
end
return M
]=]

describe("ONNX export #slow", function()
  local tmp, nodes, env, variants

  setup(function()
    tmp = shell.tmpdir()
    nodes = node_modules()
    write_rows(tmp .. "/train.csv", 600, 11)
    write_rows(tmp .. "/test.csv", 1000, 23)
    local f = assert(io.open(tmp .. "/cats.txt", "w"))
    f:write("3\n7\n0\n11\n5\n1\n")
    f:close()
    sh("mkdir -p " .. q(tmp .. "/lua/models"))
    f = assert(io.open(tmp .. "/lua/models/onnx_spec_ops.lua", "w"))
    f:write(CUSTOM_MODEL)
    f:close()
    env = "LUA_PATH=" .. q(tmp .. "/lua/?.lua;;")
    -- every model the registry lists: with its variants above, or its defaults
    variants = {}
    local covered = {}
    for _, v in ipairs(VARIANTS) do
      variants[#variants + 1] = v
      covered[v.model.name] = true
    end
    for _, name in ipairs(require("mtl.models").names()) do
      if not covered[name] then variants[#variants + 1] = { id = name, model = { name = name } } end
    end
  end)

  teardown(function() if tmp then tiny.rm(tmp) end end)

  it("writes a file the ONNX checker accepts and ONNX Runtime scores as mtl predict does, for every model", function()
    for _, v in ipairs(variants) do
      local dir = tmp .. "/" .. v.id
      sh("mkdir -p " .. q(dir))
      local model = {}
      for k, x in pairs(v.model) do model[k] = x end
      model.tasks = model.tasks or TASKS
      local cfg = config(dir, model)
      local mtl_cmd = env .. " " .. q(shell.launcher)
      sh(string.format("cd %s && %s train config.lua", q(dir), mtl_cmd))
      local line = sh(string.format("cd %s && %s export config.lua --checkpoint run --out onnx --format onnx --json", q(dir), mtl_cmd))
      assert.equal("onnx", json.decode(line:match("{.*}")).format)
      sh(string.format("cd %s && %s predict config.lua --checkpoint run --input %s --output pred.csv", q(dir), mtl_cmd,
        q(tmp .. "/test.csv")))
      sh(string.format("%s -c %s %s", PYTHON,
        q("import onnx, sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)"), q(dir .. "/onnx/model.onnx")))
      -- the inputs, from the raw rows by the sidecar's rules
      local sidecar = onnx.read_sidecar(dir .. "/onnx/model.onnx.json")
      local r = mtl.data.csv(onnx.reader_options(sidecar, { tmp .. "/test.csv" }, 1000))
      local batch = r:next()
      r:close()
      assert.equal(1000, batch.size)
      onnx.write_feeds(sidecar, onnx.feeds(sidecar, batch), dir .. "/feeds")
      sh(string.format("NODE_PATH=%s node %s %s %s %s", q(nodes), q(shell.root .. "/tools/onnx_run.js"),
        q(dir .. "/onnx/model.onnx"), q(dir .. "/feeds"), q(dir .. "/ort.json")))
      local ort = json.decode(shell.read(dir .. "/ort.json"))
      local pred = tiny.read_csv(dir .. "/pred.csv")
      assert.equal(1000, #pred.rows)
      local worst = 0
      for _, o in ipairs(sidecar.outputs) do
        local got = ort[o.name] or error(v.id .. ": ONNX Runtime gave no output " .. o.name)
        assert.equal(1000, #got)
        for i, row in ipairs(pred.rows) do
          local want = row[o.name] or error(v.id .. ": mtl predict wrote no column " .. o.name)
          worst = math.max(worst, math.abs(got[i] - want))
        end
      end
      assert(worst <= TOLERANCE, string.format("%s: ONNX Runtime differs from mtl predict by %.3g (> %g)", v.id, worst, TOLERANCE))
      assert.truthy(#sidecar.outputs >= #cfg.model.tasks)
    end
  end)
end)
