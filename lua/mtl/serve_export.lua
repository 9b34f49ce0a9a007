-- mtl.serve_export: writes the model directory that the C serving library
-- (runtime/serve, docs/serving.md) loads.
--
--   local export = require "mtl.serve_export"
--   export.run(run, "model_dir")                      -- a train.Run (or any {cfg=, model=})
--   export.checkpoint(cfg, "ckpt/step-300.ckpt", "model_dir")  -- a run checkpoint
--
-- The directory:
--   config.ckpt    {format = "mtl-model-1", config = {data =, features =, model =, rank =},
--                   fitted = what feature fitting learned, outputs = {names}}   (small)
--   weights.ckpt   {model = the Ranker's state_dict, tables = {name = embedding state}}
--   manifest.json  the same facts for people and tools (never read by the loader)
-- Both .ckpt files are written with mtl.save; nothing in them is code. The
-- Lua code that runs the model (lua/mtl, models/) is not copied: the serving
-- library finds it in the mtl tree it was built from (or $MTL_HOME).
local mtl = require "mtl"
local features = require "mtl.features"
local train = require "mtl.train"

local export = {}
export.FORMAT = "mtl-model-1"

local function fail(fmt, ...) error("mtl.serve_export: " .. string.format(fmt, ...), 0) end

-- A deep copy of plain config values; a function (or any other value a
-- checkpoint cannot hold) is an error naming where it is.
local function plain(v, where)
  local t = type(v)
  if t == "nil" or t == "boolean" or t == "number" or t == "string" then return v end
  if t ~= "table" then fail("%s is a %s; a served config holds only plain values", where, t) end
  local out = {}
  for k, x in pairs(v) do
    local kt = type(k)
    if kt ~= "string" and kt ~= "number" then fail("%s has a %s key", where, kt) end
    out[k] = plain(x, where .. (kt == "string" and ("." .. k) or ("[" .. k .. "]")))
  end
  return out
end

-- The parts of a config that scoring needs. Vocabulary files are read in, so
-- the directory does not depend on paths of the training machine.
local function served_config(cfg)
  local d = cfg.data or fail("the config has no data table")
  local data = plain({ columns = d.columns, labels = d.labels, separator = d.separator, quote = d.quote,
                       fields = d.fields, unknown_fields = d.unknown_fields, field_separator = d.field_separator },
                     "config.data")
  local feats = plain(cfg.features or fail("the config has no features"), "config.features")
  for i, s in ipairs(feats) do
    if s.vocab_file then
      local f = io.open(s.vocab_file) or fail("features[%d] (%s): cannot open vocab_file '%s'", i, tostring(s.name), s.vocab_file)
      local list = {}
      for line in f:lines() do
        line = line:gsub("\r$", "")
        if line ~= "" then list[#list + 1] = line end
      end
      f:close()
      s.vocab, s.vocab_file = list, nil
    end
  end
  return { data = data, features = feats, model = plain(cfg.model, "config.model"), rank = plain(cfg.rank, "config.rank") }
end

-- Output names in the order the C API returns them: the tasks, then other
-- outputs evaluation scores (ESMM's ctcvr).
function export.outputs(model)
  local names, seen = {}, {}
  for _, t in ipairs(model.tasks) do
    if not seen[t.name] then names[#names + 1], seen[t.name] = t.name, true end
  end
  for _, t in ipairs(model:eval_targets()) do
    if not seen[t.output] then names[#names + 1], seen[t.output] = t.output, true end
  end
  return names
end

local function json_string(s) return '"' .. s:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"' end

local function write_manifest(dir, cfg, outputs, info)
  local cols = {}
  for _, c in ipairs(cfg.data.columns or {}) do
    cols[#cols + 1] = string.format('{"name": %s, "type": %s}', json_string(c.name), json_string(c.type or "string"))
  end
  local outs = {}
  for _, o in ipairs(outputs) do outs[#outs + 1] = json_string(o) end
  local f = io.open(dir .. "/manifest.json", "w") or fail("cannot write '%s/manifest.json'", dir)
  f:write("{\n")
  f:write('  "format": ', json_string(export.FORMAT), ",\n")
  f:write('  "model": ', json_string(tostring(cfg.model.name)), ",\n")
  f:write('  "outputs": [', table.concat(outs, ", "), "],\n")
  f:write('  "columns": [', table.concat(cols, ", "), "],\n")
  f:write('  "step": ', tostring(info.step or 0), ",\n")
  f:write('  "source": ', json_string(info.source or ""), ",\n")
  f:write('  "files": {"config": "config.ckpt", "weights": "weights.ckpt"}\n')
  f:write("}\n")
  f:close()
end

-- Writes dir from a config and a built, trained Ranker (model.features is
-- its feature columns). info: {step =, source =} for the manifest.
function export.write(cfg, model, dir, info)
  info = info or {}
  if type(dir) ~= "string" or dir == "" then fail("expected an output directory") end
  train.mkdir_p(dir)
  local served = served_config(cfg)
  local F = model.features
  local outputs = export.outputs(model)
  mtl.save(dir .. "/config.ckpt", { format = export.FORMAT, config = served, fitted = plain(F.fitted, "fitted"),
                                    outputs = outputs, step = info.step })
  mtl.save(dir .. "/weights.ckpt", { model = model:state_dict(), tables = F:state().tables })
  write_manifest(dir, served, outputs, info)
  return dir
end

-- From a train.Run (after fit, or restored).
function export.run(run, dir)
  return export.write(run.cfg, run.model, dir, { step = run.step, source = run.model_dir })
end

-- From a config and a run checkpoint (mtl-run-1, written by Run:save_checkpoint):
-- the features and model are rebuilt from the checkpoint alone (no data is read).
function export.checkpoint(cfg, path, dir)
  local st = mtl.load(path)
  if type(st) ~= "table" or st.format ~= "mtl-run-1" then fail("'%s' is not an mtl run checkpoint", path) end
  local F = features.new(cfg.features, cfg.data)
  F:load_state(st.features)
  local model = train.Ranker(cfg, F)
  model:load_state_dict(st.model)
  return export.write(cfg, model, dir, { step = st.step, source = path })
end

return export
