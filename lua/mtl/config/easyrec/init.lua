-- mtl.config.easyrec: EasyRec pipeline.config files mapped onto the mtl config
-- structure (docs/config.md has the full mapping table).
--
--   local easyrec = require "mtl.config.easyrec"
--   local cfg, notes = easyrec.load("mmoe_on_taobao.config")
--
-- Three stages, each in its own file:
--   1. mtl.config.protobuf_text parses the file into nodes with line:column;
--   2. easyrec/decode.lua checks every node against EasyRec's schema
--      (easyrec/schema.lua: field names, types, enum values, oneofs, repeated
--      vs singular); unknown fields are errors with a suggestion, as protobuf
--      itself would reject them;
--   3. the mapping builds the mtl table: easyrec/data.lua (data_config,
--      features, column types), easyrec/model.lua (model_config; each model's
--      own part is the easyrec table of its models/<name>.lua), easyrec/train.lua
--      (train_config, eval_config). Every field the file sets is either
--      mapped, listed in NOOPS (accepted and ignored, with the reason it is
--      harmless), or reported as unsupported with its file:line:column. A
--      field set in the file that none of these handle is reported too (here,
--      check_unhandled), so nothing is ever silently ignored.
-- easyrec.map/parse/load return the mtl config table (not yet validated: see
-- mtl.config) and a list of notes; all problems are raised together as one
-- error, one "file:line:column: text" per line, sorted by position. The file
-- is only read, never executed.
local pt = require "mtl.config.protobuf_text"
local util = require "mtl.config.util"
local schema = require "mtl.config.easyrec.schema"
local decode = require "mtl.config.easyrec.decode"

local easyrec = {}
easyrec.SCHEMA, easyrec.NOOPS, easyrec.UNSUPPORTED = schema.SCHEMA, schema.NOOPS, schema.UNSUPPORTED
easyrec.mark_all = decode.mark_all

-- The mapping stages, in the order easyrec.map runs them.
local data = require "mtl.config.easyrec.data"
local model = require "mtl.config.easyrec.model"
local train = require "mtl.config.easyrec.train"
easyrec.model_classes = model.model_classes

-- After mapping: every set field not handled is a no-op, unsupported, or an
-- error. The reasons a field is unsupported: UNSUPPORTED and the model files'.
local function check_unhandled(ctx)
  local reasons = {}
  for k, v in pairs(schema.UNSUPPORTED) do reasons[k] = v end
  for _, spec in pairs(model.model_classes()) do
    for k, v in pairs(spec.unsupported) do reasons[k] = v end
  end
  for _, obj in ipairs(ctx.objects) do
    for name in pairs(obj.nodes) do
      if not obj.used[name] then
        local key = obj.type .. "." .. name
        local noop = schema.NOOPS[key]
        local value = obj.values[name]
        if noop and (noop.only == nil or noop.only == value) then
          obj.used[name] = true
        elseif noop then
          obj:unsupported_value(name, string.format("only %s is accepted (%s)", util.show(noop.only), noop.why))
        elseif reasons[key] then
          obj:unsupported(name, reasons[key])
        else
          obj:unsupported(name, "the EasyRec reader does not map it")
        end
      end
    end
  end
end

-- The top-level paths: train_input_path, eval_input_path, model_dir.
local function map_paths(ctx, root, cfg)
  local other_input = false -- reported as unsupported (UNSUPPORTED)
  for _, k in ipairs({ "kafka", "datahub", "hive", "binary", "parquet" }) do other_input = other_input or root:has(k .. "_train_input") end
  if root:has("train_input_path") then cfg.data.train = root:get("train_input_path")
  elseif not other_input then
    ctx:add(1, 1, "train_input_path is missing (the training CSV files)")
  end
  if root:has("eval_input_path") then cfg.data.eval = root:get("eval_input_path") end
  if root:has("model_dir") then cfg.model_dir = root:get("model_dir")
  else ctx:note("model_dir is not set: the run writes no checkpoints or report (--set model_dir=DIR gives one)") end
end

-- Maps a parsed file (root node) to {cfg, notes}; raises all problems together.
function easyrec.map(tree, file)
  file = file or tree.file or "(config)"
  local ctx = decode.new_ctx(file)
  local root = decode.message(ctx, tree, "EasyRecConfig", "")
  local cfg = { data = {}, features = {}, model = {}, optimizer = { schedule = {} }, train = {}, eval = {} }
  local st = { metrics = {} }
  map_paths(ctx, root, cfg)
  data.map_data(ctx, root, cfg, st)
  if st.columns then
    data.map_features(root, st)
    model.map_model(ctx, root, cfg, st)
    train.map_train(ctx, root, cfg, st)
    train.map_eval(root, cfg, st)
    require("mtl.config.easyrec.groups").finish(ctx, cfg, st, st.reads_groups)
    data.finish_features(ctx, cfg, st)
    data.type_columns(st, cfg.data)
    -- masks are labels already (task_space_indicator_label must be a label field)
  else
    decode.mark_all(root) -- without data_config nothing else was mapped
  end
  check_unhandled(ctx)
  ctx:raise()
  if cfg.optimizer.schedule.name == nil then cfg.optimizer.schedule = nil end
  return cfg, ctx.notes
end

-- Parses and maps text (name: the file name in messages).
function easyrec.parse(text, name)
  return easyrec.map(pt.parse(text, name), name)
end

-- Reads and maps an EasyRec config file; returns the mtl config table and a
-- list of notes (informational: what EasyRec does that mtl does differently).
function easyrec.load(path)
  return easyrec.map(pt.parse_file(path), path)
end

return easyrec
