-- The `mtl` subcommands (docs/cli.md):
--   mtl train CONFIG [--set k=v ...] [--resume] [--json]
--   mtl eval CONFIG --checkpoint DIR_OR_FILE [--json]
--   mtl predict CONFIG --checkpoint ... --input FILE --output FILE [--pass-through a,b]
--   mtl export CONFIG --checkpoint ... --out DIR [--format mtl|onnx]
--   mtl report RUN_DIR [RUN_DIR ...]
--   mtl bench ... / mtl sweep SWEEP.lua / mtl features ...
--                           (lua/mtl/bench.lua, lua/mtl/sweep.lua, lua/mtl/cli_features.lua)
-- Exit codes: 0 success; 1 a failure while running (config contents, data,
-- checkpoints, training); 2 a wrong command line (unknown command or option,
-- a missing argument, a malformed --set, a file or directory named on the
-- command line that does not exist).
local argparse = require "argparse"
local json = require "cjson"
local sys = require "mtl.sys"

local cli = {}

cli.EXIT_OK, cli.EXIT_FAILURE, cli.EXIT_USAGE = 0, 1, 2

cli.COMMANDS = {
  { "train", "train a model from a config" },
  { "eval", "evaluate a checkpoint on the config's eval data" },
  { "predict", "score a file: per-task probabilities and the ranking score per row" },
  { "export", "write a self-contained model directory" },
  { "report", "write a run's HTML training report" },
  { "bench", "the multi-task benchmark (bench/SPEC.md)" },
  { "sweep", "a hyperparameter sweep (docs/sweeps.md)" },
  { "features", "feature engineering: dataset, logs, samples, stats (docs/features_engineering.md)" },
}
local KNOWN = {}
for _, c in ipairs(cli.COMMANDS) do KNOWN[c[1]] = true end
cli.KNOWN = KNOWN

-- ---- errors ------------------------------------------------------------------------------------
local Usage = {}
Usage.__index = Usage
Usage.__tostring = function(e) return e.msg end
local function usage(fmt, ...) error(setmetatable({ msg = string.format(fmt, ...) }, Usage), 0) end
cli.usage_error = usage

local function is_usage(e) return getmetatable(e) == Usage end

-- ---- small helpers ------------------------------------------------------------------------------
local exists, is_dir = sys.exists, sys.is_dir

-- The command closest to word, for "did you mean" (config.util's typo rule).
function cli.suggest(word)
  local names = {}
  for i, c in ipairs(cli.COMMANDS) do names[i] = c[1] end
  return require("mtl.config.util").suggest(word, names)
end

-- ---- configs -------------------------------------------------------------------------------------
local SECTIONS = { data = true, features = true, model = true, losses = true, optimizer = true, train = true,
                   eval = true, rank = true, model_dir = true }

-- "key.path=value" -> "key.path", "value"; a malformed one is a usage error.
function cli.parse_set(s)
  local key, value = tostring(s):match("^([^=]+)=(.*)$")
  if not key or not key:match("^[%a_][%w_]*[%w_.]*$") or key:match("%.%.") or key:match("%.$") then
    usage("--set expects key.path=value (e.g. train.steps=100), got '%s'", tostring(s))
  end
  return key, value
end

-- Text of a --set value -> a Lua value: true/false, a number, a quoted
-- string, or the text itself.
function cli.set_value(text)
  if text == "true" then return true end
  if text == "false" then return false end
  local n = tonumber(text)
  if n then return n end
  local q = text:match('^"(.*)"$') or text:match("^'(.*)'$")
  if q then return q end
  return text
end

-- Sets cfg[key.path] = value (numeric parts index lists: model.tasks.1.weight).
function cli.set_path(cfg, key, value, original)
  local parts = {}
  for p in key:gmatch("[^.]+") do parts[#parts + 1] = tonumber(p) or p end
  if not SECTIONS[parts[1]] then
    local names = {}
    for k in pairs(SECTIONS) do names[#names + 1] = k end
    table.sort(names)
    usage("--set %s: '%s' is not a config section (sections: %s)", original, tostring(parts[1]), table.concat(names, ", "))
  end
  local t = cfg
  for i = 1, #parts - 1 do
    local k = parts[i]
    if t[k] == nil then t[k] = {} end
    if type(t[k]) ~= "table" then
      local prefix = {}
      for j = 1, i do prefix[j] = tostring(parts[j]) end
      usage("--set %s: '%s' is a %s, not a table", original, table.concat(prefix, "."), type(t[k]))
    end
    t = t[k]
  end
  t[parts[#parts]] = value
end

local function config_module()
  local ok, mod = pcall(require, "mtl.config")
  if ok and type(mod) == "table" and mod.load then return mod end
  if not ok and not tostring(mod):find("module 'mtl.config' not found", 1, true) then error(mod, 0) end
  return nil
end

-- Loads CONFIG (a Lua config, an EasyRec pipeline.config, or a model
-- directory from `mtl export`) with the --set overrides (a list of
-- "key.path=value" strings). Returns cfg and, for a model directory, its path.
function cli.load_config(path, sets)
  if not path then usage("a CONFIG argument is required") end
  local model_dir, data
  if is_dir(path) then
    local export = require "mtl.export"
    local ok, manifest = export.is_model_dir(path)
    if not ok then
      usage("%s is a directory but not an exported model (no manifest.json); CONFIG is a config file or an `mtl export` directory", path)
    end
    model_dir = path
    data = export.read_config(path, manifest) -- data, never run
  end
  if not data and not exists(path) then usage("config file '%s' does not exist", path) end
  sets = sets or {}
  local pairs_ = {}
  for i, s in ipairs(sets) do
    local k, v = cli.parse_set(s)
    pairs_[i] = { k, v, s }
  end
  local cfg
  local mod = config_module()
  if mod then
    local ok, res = pcall(mod.load, data or path, sets)
    if not ok then
      -- the file alone loads: then the --set overrides are what is wrong (exit 2)
      if #sets > 0 and pcall(mod.load, data or path, {}) then usage("%s", tostring(res)) end
      error(res, 0)
    end
    cfg = res
  else
    cfg = data
    if not cfg then
      local chunk, err = require("mtl.config.util").loadfile(path)
      if not chunk then error(err, 0) end
      cfg = chunk()
    end
    if type(cfg) ~= "table" then error(string.format("%s: a config must return a table, got %s", path, type(cfg)), 0) end
    for _, p in ipairs(pairs_) do cli.set_path(cfg, p[1], cli.set_value(p[2]), p[3]) end
  end
  if model_dir then require("mtl.export").resolve_paths(cfg, model_dir) end
  for _, k in ipairs({ "data", "features", "model" }) do
    if type(cfg[k]) ~= "table" then error(string.format("%s: the config has no '%s' table", path, k), 0) end
  end
  return cfg, model_dir
end

-- ---- checkpoints ---------------------------------------------------------------------------------
-- A file; a run directory (its latest checkpoints/step-N.ckpt); a checkpoints
-- directory; or an exported model directory (its model.ckpt).
function cli.resolve_checkpoint(path)
  if not path then usage("--checkpoint is required (a checkpoint file, a run directory or an exported model)") end
  if not exists(path) and not is_dir(path) then usage("checkpoint '%s' does not exist", path) end
  if not is_dir(path) then return path end
  local export = require "mtl.export"
  local ok, manifest = export.is_model_dir(path)
  if ok then return export.file(path, manifest, "weights") end
  local checkpoints = require("mtl").checkpoint
  for _, dir in ipairs({ path .. "/checkpoints", path }) do
    local all = checkpoints.list(dir)
    if #all > 0 then return all[#all].path end
  end
  usage("no checkpoint in %s (expected checkpoints/step-N.ckpt, step-N.ckpt or an exported model)", path)
end

local function load_state(path)
  local mtl = require "mtl"
  local st = mtl.load(path)
  if type(st) ~= "table" or (st.format ~= "mtl-run-1" and st.format ~= require("mtl.export").FORMAT) then
    error(string.format("%s is not an mtl checkpoint (a run checkpoint or an exported model)", path), 0)
  end
  if st.format == "mtl-run-1" then st = require("mtl.shard_state").complete(st, path) end -- sharded tables, whole
  return st
end

-- The trained model of a checkpoint, with mtl's threads as its run had them.
-- A model directory's config and weights are built under export's memory
-- budget (a config may not ask for far more than the weights hold).
-- precision (nil: fp32): the inference precision of its dense layers.
local function load_model(cfg, ckpt_path, model_dir, precision)
  local function build()
    local st = load_state(ckpt_path)
    require("mtl").set_num_threads((cfg.train or {}).threads or 1)
    return require("mtl.ranker").load(cfg, st), st
  end
  local model, st
  if model_dir then model, st = require("mtl.export").within_budget(model_dir, ckpt_path, build)
  else model, st = build() end
  -- fp32 packs the weights for the inference kernel once, here (the same bits unpacked)
  require("mtl.ranker").set_precision(model, precision or "fp32")
  return model, st
end

-- The inference precision of eval and predict: --precision, else an exported
-- model's (its manifest's "precision"), else nil (fp32).
local function precision_of(a, model_dir)
  if a.precision then return a.precision end
  if model_dir then
    local ok, manifest = require("mtl.export").is_model_dir(model_dir)
    if ok then return manifest.precision end
  end
end

-- ---- output --------------------------------------------------------------------------------------
local function json_line(t)
  -- cjson writes "/" as "\/" (valid JSON); plain "/" reads better in paths
  io.stdout:write((json.encode(require("mtl").metrics.finite(t)):gsub("\\/", "/")), "\n")
  io.stdout:flush()
end

local function metrics_table(m)
  local names = {}
  for k in pairs(m) do names[#names + 1] = k end
  table.sort(names)
  local w = 4
  for _, k in ipairs(names) do w = math.max(w, #k) end
  local f1 = false -- a max_f1 column when some target has one
  for _, k in ipairs(names) do f1 = f1 or m[k].max_f1 ~= nil end
  local row = "%-" .. w .. "s  %-7s  %-7s  %-7s  %-11s  %s" .. (f1 and "  %s" or "")
  local lines = { string.format(row, "task", "auc", "gauc", "logloss", "calibration", "rows", "max_f1") }
  local function f(v, fmt) return (type(v) == "number" and v == v) and string.format(fmt, v) or "-" end
  for _, k in ipairs(names) do
    local r = m[k]
    lines[#lines + 1] = string.format(row, k, f(r.auc, "%.4f"), f(r.gauc, "%.4f"),
      f(r.logloss, "%.4f"), f(r.calibration, "%.3f"), f(r.count, "%d"), f(r.max_f1, "%.4f"))
  end
  return table.concat(lines, "\n") .. "\n"
end
cli.metrics_table = metrics_table
cli.json_line = json_line

-- ---- parsers ---------------------------------------------------------------------------------------
local EXIT_EPILOG = "Exit codes: 0 success, 1 a failure while running, 2 a wrong command line."

local function new_parser(name, description)
  local p = argparse("mtl " .. name, description, EXIT_EPILOG)
  p:help_max_width(100)
  return p
end

local function add_config(p)
  p:argument("config", "a Lua config, an EasyRec pipeline.config, or an exported model directory")
  p:option("--set", "override a config value: key.path=value (repeatable)"):count("*"):argname("K=V")
end

local PARSERS = {}

function PARSERS.train()
  local p = new_parser("train", "Train a model from a config. Checkpoints, metrics.jsonl and report.html go to the config's model_dir.")
  add_config(p)
  p:option("--model-dir", "where checkpoints, logs and the report go (default: the config's model_dir)"):argname("DIR")
  p:flag("--resume", "continue from the latest checkpoint in model_dir (exactly: same data order, RNG and optimizer state)")
  p:option("--resume-from", "continue from the checkpoint of step STEP instead (the later ones are removed)")
    :argname("STEP"):convert(tonumber)
  p:flag("--fresh", "start over in a model_dir that already has checkpoints (removes them)")
  p:flag("--json", "print one JSON line of final metrics on stdout (progress goes to stderr)")
  p:flag("--quiet", "no progress output")
  return p
end

function PARSERS.eval()
  local p = new_parser("eval", "Evaluate a checkpoint on the config's eval data (or --data).")
  add_config(p)
  p:option("--checkpoint", "a checkpoint file, a run directory (its latest checkpoint) or an exported model"):argname("PATH")
  p:option("--data", "files to evaluate instead of data.eval"):argname("FILE"):count("*")
  p:option("--batch-size", "rows per batch"):convert(tonumber)
  p:option("--precision", "the dense layers' inference precision: fp32, or bf16 (AVX512-BF16 products with FP32 "
    .. "accumulation; FP32 where the CPU lacks it; default: an exported model's, else fp32)"):choices { "fp32", "bf16" }
  p:flag("--json", "print one JSON line of metrics on stdout")
  return p
end

function PARSERS.predict()
  local p = new_parser("predict", "Score a file: one output row per input row with p_<task> for each model output, rank_score, "
    .. "and score (with rank.expression or --score).")
  add_config(p)
  p:option("--checkpoint", "a checkpoint file, a run directory or an exported model (default: CONFIG when it is an exported model)"):argname("PATH")
  p:option("--input", "the rows to score (a CSV with the config's columns; labels may be missing)"):argname("FILE")
  p:option("--output", "the CSV to write"):argname("FILE")
  p:option("--pass-through", "input columns copied to the output, comma-separated"):argname("COLS")
  p:option("--score", "a scoring expression (overrides rank.expression), e.g. 'click * pay * log(price) ^ 0.5'"):argname("EXPR")
  p:option("--batch-size", "rows per batch"):convert(tonumber)
  p:option("--precision", "the dense layers' inference precision: fp32, or bf16 (AVX512-BF16 products with FP32 "
    .. "accumulation; FP32 where the CPU lacks it; default: an exported model's, else fp32)"):choices { "fp32", "bf16" }
  p:flag("--json", "print one JSON line (rows, output) on stdout")
  return p
end

function PARSERS.export()
  local p = new_parser("export", "Write a self-contained model directory: manifest.json, config.lua, model.ckpt "
    .. "(weights, fitted feature transforms, embedding tables).")
  add_config(p)
  p:option("--checkpoint", "a checkpoint file or a run directory (its latest checkpoint)"):argname("PATH")
  p:option("--out", "the model directory to write"):argname("DIR")
  p:option("--format", "mtl: a model directory for mtl predict and serving; onnx: DIR/model.onnx (standard "
    .. "operators, opset 17) and DIR/model.onnx.json, how to fill its inputs (docs/export.md)", "mtl"):choices { "mtl", "onnx" }
  p:option("--precision", "the inference precision serving and predict use by default (fp32 or bf16), recorded "
    .. "in manifest.json (format mtl only)"):choices { "fp32", "bf16" }
  p:flag("--json", "print one JSON line (out, step) on stdout")
  return p
end

function PARSERS.report()
  local p = new_parser("report", "Write RUN_DIR/report.html: loss, learning rate, throughput, per-task AUC and log loss "
    .. "curves, expert utilization of gated models. With several runs (or a sweep's directory: its trials), one page "
    .. "comparing them: their curves overlaid, final metrics and differing settings side by side.")
  p:argument("run_dir", "a model_dir of `mtl train` (with metrics.jsonl), or a directory of runs (a sweep's)"):args("+")
  p:option("--out", "write the report here (default: RUN_DIR/report.html for one run, compare.html for several)"):argname("FILE")
  p:flag("--json", "print one JSON line (report, runs) on stdout")
  return p
end

-- ---- commands -------------------------------------------------------------------------------------
local COMMANDS = {}

function COMMANDS.train(a) return require("mtl.train_cli").run(a, cli) end

-- Whether a text file has a data row (a non-blank line, after the header).
local function has_rows(path, header)
  local f = io.open(path, "rb")
  if not f then return true end -- the reader says what is wrong
  local n = 0
  for line in f:lines() do
    if line:match("%S") then
      n = n + 1
      if n > (header and 1 or 0) then break end
    end
  end
  f:close()
  return n > (header and 1 or 0)
end

function COMMANDS.eval(a)
  local cfg, model_dir = cli.load_config(a.config, a.set)
  local ckpt = cli.resolve_checkpoint(a.checkpoint or model_dir)
  local files = (a.data and #a.data > 0) and a.data or cfg.data.eval
  if not files then usage("the config has no data.eval: pass --data FILE") end
  for _, fl in ipairs(type(files) == "table" and files or { files }) do
    if a.data and #a.data > 0 and not fl:match("[*?%[]") and not exists(fl) then usage("data file '%s' does not exist", fl) end
    if not fl:match("[*?%[]") and not fl:match("%.gz$") and exists(fl) and not has_rows(fl, cfg.data.header ~= false) then
      error(string.format("%s has no rows to evaluate (it is empty%s)", fl, cfg.data.header ~= false and " or only a header" or ""), 0)
    end
  end
  local model, st = load_model(cfg, ckpt, model_dir, precision_of(a, model_dir))
  local m, gates = model:evaluate(files, { batch_size = a.batch_size }) -- every rank: its part
  local plain = require("mtl").metrics.plain(m)
  if require("mtl").dist.rank() ~= 0 then return 0 end
  if a.json then
    json_line({ command = "eval", checkpoint = ckpt, step = st.step, metrics = plain, gates = gates })
  else
    io.stdout:write(string.format("checkpoint %s (step %s)\n", ckpt, tostring(st.step)))
    io.stdout:write(metrics_table(plain))
  end
  return 0
end

function COMMANDS.predict(a)
  local cfg, model_dir = cli.load_config(a.config, a.set)
  local ckpt = cli.resolve_checkpoint(a.checkpoint or model_dir)
  if not a.input then usage("--input FILE is required") end
  if not a.output then usage("--output FILE is required") end
  if not exists(a.input) then usage("input file '%s' does not exist", a.input) end
  if sys.same_file(a.input, a.output) then
    usage("--output %s is the input file %s (the scores would overwrite it): write them to another file", a.output, a.input)
  end
  local pass = {}
  if a.pass_through then
    for c in a.pass_through:gmatch("[^,]+") do pass[#pass + 1] = c:match("^%s*(.-)%s*$") end
  end
  if a.score then
    cfg.rank = cfg.rank or {}
    cfg.rank.expression = a.score
  end
  local model, st = load_model(cfg, ckpt, model_dir, precision_of(a, model_dir))
  local rows, head = require("mtl.predict").file(model, cfg, { input = a.input, output = a.output, pass_through = pass,
                                                               batch_size = a.batch_size })
  if require("mtl").dist.rank() ~= 0 then return 0 end
  if a.json then
    json_line({ command = "predict", checkpoint = ckpt, step = st.step, input = a.input, output = a.output, rows = rows, columns = head })
  else
    io.stdout:write(string.format("wrote %d rows to %s (%s)\n", rows, a.output, table.concat(head, ",")))
  end
  return 0
end

function COMMANDS.export(a)
  local export = require "mtl.export"
  local cfg, model_dir = cli.load_config(a.config, a.set)
  local ckpt = cli.resolve_checkpoint(a.checkpoint)
  if not a.out then usage("--out DIR is required") end
  if is_dir(a.out) and not export.is_model_dir(a.out) and not sys.exists(a.out .. "/model.onnx.json") then
    local entries = sys.list_dir(a.out)
    if entries and #entries > 0 then usage("%s exists and is not an exported model; choose a new or empty directory", a.out) end
  end
  local model, st = load_model(cfg, ckpt, model_dir)
  if require("mtl").dist.rank() ~= 0 then return 0 end -- one writer (the checkpoint is replicated state)
  if a.format == "onnx" then
    require("mtl.onnx").write(model, cfg, a.out, { source = ckpt, step = st.step })
  else
    export.write(model, cfg, a.out, { source = ckpt, step = st.step, precision = a.precision })
  end
  if a.json then
    json_line({ command = "export", format = a.format, out = a.out, checkpoint = ckpt, step = st.step })
  else
    io.stdout:write(string.format("exported %s (step %s) to %s%s\n", ckpt, tostring(st.step), a.out,
      a.format == "onnx" and " (model.onnx, model.onnx.json)" or ""))
  end
  return 0
end

-- A run's metrics.jsonl before its report: empty is an error; lines that are
-- not JSON records (a run killed while writing one) are left out, and named.
local function check_metrics(dir)
  local st = sys.stat(dir .. "/metrics.jsonl")
  if st and st.size == 0 then
    error(string.format("%s/metrics.jsonl is empty: the run logged no step, there is nothing to report", dir), 0)
  end
  local bad, n = {}, 0
  for line in io.lines(dir .. "/metrics.jsonl") do
    n = n + 1
    local ok, r = pcall(json.decode, line)
    if line:match("%S") and not (ok and type(r) == "table") then bad[#bad + 1] = n end
  end
  if #bad > 0 then
    io.stderr:write(string.format("mtl report: %s/metrics.jsonl: line%s %s %s not a JSON record (a run killed while "
      .. "writing?): left out\n", dir, #bad > 1 and "s" or "", table.concat(bad, ", ", 1, math.min(#bad, 5))
      .. (#bad > 5 and ", ..." or ""), #bad > 1 and "are" or "is"))
  end
end

function COMMANDS.report(a)
  local report = require "mtl.report"
  for _, d in ipairs(a.run_dir) do
    if not is_dir(d) then usage("run directory '%s' does not exist", d) end
  end
  local path, runs
  if #a.run_dir == 1 and exists(a.run_dir[1] .. "/metrics.jsonl") then
    check_metrics(a.run_dir[1])
    path, runs = report.write(a.run_dir[1], { out = a.out }), { a.run_dir[1] }
  else
    local ok, err = pcall(report.runs, a.run_dir)
    if not ok then
      usage("%s (is it the model_dir of an `mtl train` run, or a directory of them?)", tostring(err):gsub("^report: ", ""))
    end
    path, runs = report.write_compare(a.run_dir, { out = a.out })
  end
  if a.json then json_line({ command = "report", report = path, runs = runs })
  else io.stdout:write("report: ", path, #runs > 1 and string.format(" (%d runs)", #runs) or "", "\n") end
  return 0
end

-- ---- dispatch -------------------------------------------------------------------------------------------
function cli.usage_text()
  local lines = {
    "usage: mtl <command> [options]     (mtl <command> --help for each)",
    "       mtl script.lua [args]       run a script with mtl's paths set",
    "       mtl -i script.lua | -e code | (no arguments: the REPL)",
    "",
    "commands:",
  }
  for _, c in ipairs(cli.COMMANDS) do lines[#lines + 1] = string.format("  %-9s %s", c[1], c[2]) end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "models (model.name in a config; models/<name>.lua, docs/models.md):"
  local registry = require "mtl.models"
  local names = registry.names()
  local width = 0
  for _, name in ipairs(names) do width = math.max(width, #name) end
  for _, name in ipairs(names) do
    lines[#lines + 1] = string.format("  %-" .. width .. "s  %s", name, registry.summary(name) or "")
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = EXIT_EPILOG
  return table.concat(lines, "\n") .. "\n"
end

-- An error's text for the user: without the position of mtl's own source
-- that raised it (lua/mtl/..., models/...: where, not what), unless MTL_DEBUG.
function cli.message(msg)
  msg = tostring(msg)
  if os.getenv("MTL_DEBUG") then return msg end
  return (msg:gsub("^[^%s:]*/lua/mtl/[%w_/]+%.lua:%d+: ", ""):gsub("^[^%s:]*/models/[%w_]+%.lua:%d+: ", ""))
end

local function external(name, module, fn, args)
  local ok, mod = pcall(require, module)
  if not ok then
    if tostring(mod):find("module '" .. module .. "' not found", 1, true) then
      io.stderr:write(string.format("mtl %s: this build has no %s (lua/%s.lua is missing)\n", name, module, module:gsub("%.", "/")))
      return 1
    end
    io.stderr:write(string.format("mtl %s: %s\n", name, tostring(mod)))
    return 1
  end
  if type(mod[fn]) ~= "function" then
    io.stderr:write(string.format("mtl %s: %s has no %s(args) function\n", name, module, fn))
    return 1
  end
  local okr, rc = xpcall(function() return mod[fn](args) end, debug.traceback)
  if not okr then
    local msg = tostring(rc)
    if not os.getenv("MTL_DEBUG") then msg = msg:match("^(.-)\nstack traceback:") or msg end
    io.stderr:write(string.format("mtl %s: %s\n", name, cli.message(msg)))
    return 1
  end
  return type(rc) == "number" and rc or 0
end

-- Runs subcommand name with args (a list of strings); returns the exit code.
function cli.main(name, args)
  if name == "bench" then return external("bench", "mtl.bench", "run", args) end
  if name == "sweep" then return external("sweep", "mtl.sweep", "main", args) end
  if name == "features" then return external("features", "mtl.cli_features", "run", args) end
  local make = PARSERS[name]
  if not make then
    local s = cli.suggest(name)
    io.stderr:write(string.format("mtl: unknown command '%s'%s\n", name, s and (" (did you mean '" .. s .. "'?)") or ""))
    io.stderr:write(cli.usage_text())
    return 2
  end
  local parser = make()
  local ok, parsed = parser:pparse(args)
  if not ok then
    io.stderr:write(string.format("mtl %s: %s\n%s\n", name, parsed, parser:get_usage()))
    return 2
  end
  local okr, rc = xpcall(function() return COMMANDS[name](parsed) end, function(e)
    if is_usage(e) then return e end
    local msg = tostring(e)
    if os.getenv("MTL_DEBUG") then msg = debug.traceback(msg, 2) end
    return msg
  end)
  if okr then return rc or 0 end
  if is_usage(rc) then
    io.stderr:write(string.format("mtl %s: %s\n(mtl %s --help for usage)\n", name, rc.msg, name))
    return 2
  end
  io.stderr:write(string.format("mtl %s: %s\n", name, cli.message(rc)))
  return 1
end

return cli
