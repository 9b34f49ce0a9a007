-- mtl.onnx: a trained model as an ONNX file of standard operators, and a JSON
-- sidecar saying how to fill its inputs (docs/export.md; `mtl export --format onnx`).
--
--   local onnx = require "mtl.onnx"
--   onnx.write(model, cfg, "out", {step = 900})   -- out/model.onnx, out/model.onnx.json
--   local bytes, sidecar = onnx.build(model, cfg)
--   local feeds = onnx.feeds(sidecar, batch)       -- {input name = tensor} for a raw batch
--
-- model: a Ranker (mtl.ranker) or a training run. The graph is the model's
-- own forward, traced (mtl.onnx.trace), after the feature columns' inputs and
-- preprocessing (mtl.onnx.features); its outputs are p_<output>, the
-- probabilities `mtl predict` writes, each [batch].
local json = require "cjson"
local graph = require "mtl.onnx.graph"
local trace = require "mtl.onnx.trace"
local features = require "mtl.onnx.features"
local sys = require "mtl.sys"
local util = require "mtl.config.util"

local onnx = {}

onnx.OPSET = 17       -- the default domain (ai.onnx) only
onnx.IR_VERSION = 8   -- ONNX 1.10 - 1.12 write and read it; later versions read it
onnx.FORMAT = "mtl-onnx-1"

local function fail(fmt, ...) error("mtl.onnx: " .. string.format(fmt, ...), 0) end

-- The ONNX bytes and the sidecar (a table) of a model.
function onnx.build(model, cfg, opts)
  opts = opts or {}
  model = require("mtl.ranker").of(model)
  local was_training = model.training
  model:eval()
  local g = graph.new(cfg.model.name)
  for _, np in ipairs(model:named_parameters()) do g.tensor_names[np[2]] = np[1] end
  for _, nb in ipairs(model:named_buffers()) do g.tensor_names[nb[2]] = nb[1] end
  local ok, res = pcall(function()
    local x, inputs, xs, lists = features.build(g, model.features)
    local out = trace.run(function()
      if model.body.inputs then return model.body(xs, lists) end -- a model that reads feature groups
      return model.body(x)
    end, model)
    local outputs = {}
    for _, name in ipairs(model:outputs()) do
      local p = type(out[name]) == "table" and out[name].prob
      if not graph.is_sym(p) then fail("the model's forward returns no probability for output '%s'", name) end
      if #p.dims ~= 1 then fail("output '%s' has shape %s, expected [batch]", name, graph.shape_str(p.dims)) end
      g:output(p, "p_" .. name, "the probability of " .. name)
      outputs[#outputs + 1] = { name = "p_" .. name, output = name, type = "float", shape = { "batch" } }
    end
    return { inputs = inputs, outputs = outputs }
  end)
  if was_training then model:train() end
  if not ok then error(res, 0) end
  local bytes = g:encode {
    ir_version = onnx.IR_VERSION, opset = onnx.OPSET, producer = "mtl", producer_version = "0.1",
    doc = string.format("mtl model '%s' (step %s); inputs: model.onnx.json", cfg.model.name, tostring(opts.step)),
  }
  local columns = {}
  for _, c in ipairs(cfg.data.columns or {}) do
    columns[#columns + 1] = { name = c.name, type = c.type or "string", default = c.default, separator = c.separator,
                              kv_separator = c.kv_separator, values = c.values }
  end
  local sidecar = {
    format = onnx.FORMAT, onnx = "model.onnx", opset = onnx.OPSET, ir_version = onnx.IR_VERSION,
    model = cfg.model.name, step = opts.step, source = opts.source,
    columns = columns, separator = cfg.data.separator or ",", fields = cfg.data.fields,
    header = cfg.data.header ~= false and not cfg.data.fields,
    inputs = res.inputs, outputs = res.outputs,
  }
  return bytes, sidecar
end

-- JSON for people: keys sorted, what fits in 100 columns on one line.
local function pretty(v, indent)
  if type(v) ~= "table" then return json.encode(v) end
  local inner = indent .. "  "
  local items = {}
  local list = util.is_list(v)
  if list then
    for i, x in ipairs(v) do items[i] = pretty(x, inner) end
  else
    for _, k in ipairs(util.sorted_keys(v)) do items[#items + 1] = json.encode(tostring(k)) .. ": " .. pretty(v[k], inner) end
  end
  local open, close = list and "[" or "{", list and "]" or "}"
  local flat = open .. table.concat(items, ", ") .. close
  if #flat + #indent <= 100 and not flat:find("\n") then return flat end
  return open .. "\n" .. inner .. table.concat(items, ",\n" .. inner) .. "\n" .. indent .. close
end

-- Writes dir/model.onnx and dir/model.onnx.json (each whole or not at all).
function onnx.write(model, cfg, dir, opts)
  local bytes, sidecar = onnx.build(model, cfg, opts)
  sys.mkdir_p(dir)
  sys.write_atomic(dir .. "/model.onnx", bytes)
  sys.write_atomic(dir .. "/model.onnx.json", pretty(sidecar, "") .. "\n")
  return dir, sidecar
end

-- Reads a sidecar (dir/model.onnx.json).
function onnx.read_sidecar(path)
  local f = io.open(path) or fail("cannot open %s", path)
  local ok, s = pcall(json.decode, f:read("*a"))
  f:close()
  if not ok or type(s) ~= "table" or s.format ~= onnx.FORMAT then fail("%s is not a sidecar of format %s", path, onnx.FORMAT) end
  return s
end

-- {input name = tensor} for a batch of raw rows (read with
-- onnx.reader_options): the sidecar's rules applied.
function onnx.feeds(sidecar, batch) return features.feeds(sidecar.inputs, batch) end

-- Reader options (mtl.data.csv) for raw rows in the schema the sidecar
-- records: every column as it is, nothing grouped or standardized.
function onnx.reader_options(sidecar, files, batch_size)
  local reader_type = require("mtl.features").READER_TYPE
  local cols = {}
  for i, c in ipairs(sidecar.columns) do
    cols[i] = { name = c.name, type = reader_type[c.type] or fail("column '%s': unknown type '%s'", c.name, tostring(c.type)),
                default = c.default, separator = c.separator, kv_separator = c.kv_separator, values = c.values }
  end
  local o = { files = files, columns = cols, batch_size = batch_size, header = sidecar.header, separator = sidecar.separator }
  if sidecar.fields then o.fields, o.unknown_fields = sidecar.fields, "skip" end
  return o
end

-- Writes feeds for tools that run the ONNX file (tools/onnx_run.js): each
-- input's values raw (little-endian float32 or int64, row-major) in
-- dir/<k>.bin and dir/feeds.json = [{name =, type =, dims =, file =}].
function onnx.write_feeds(sidecar, feeds, dir)
  sys.mkdir_p(dir)
  local list = {}
  for k, e in ipairs(sidecar.inputs) do
    local t = feeds[e.name] or fail("no feed for input '%s'", e.name)
    local raw, dtype = graph.tensor_bytes(t)
    local file = k .. ".bin"
    sys.write_atomic(dir .. "/" .. file, raw)
    list[#list + 1] = { name = e.name, type = dtype, dims = t:shape(), file = file }
  end
  sys.write_atomic(dir .. "/feeds.json", json.encode(list) .. "\n")
  return dir
end

return onnx
