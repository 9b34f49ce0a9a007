-- mtl.config.easyrec.data: EasyRec's data_config and feature configs mapped
-- onto mtl's data section (columns, labels, reading options) and features.
--
--   data.map_data(ctx, root, cfg, st)      data_config -> cfg.data; st.columns
--   data.map_features(root, st)            feature configs -> st.features
--   data.finish_features(ctx, cfg, st)     st.group -> cfg.features (shared tables)
--   data.type_columns(st, cfg.data)        cfg.data.columns, typed by their readers
--
-- Takes decoded objects (mtl.config.easyrec.decode) and st, the state the
-- mapping stages share: st.columns (name -> column; its roles: who reads it
-- as what), st.column_list (file order), st.features (name -> {name, spec,
-- obj, embedding_name}), st.feature_list, st.group (the model's feature
-- group, set by mtl.config.easyrec.model), st.sample_weight, st.num_epochs.
-- Fills cfg; raises nothing: problems go to the context through the objects'
-- err/verr/unsupported (each at its file position), and every field read is
-- marked as handled.
local util = require "mtl.config.util"
local mark_all = require("mtl.config.easyrec.decode").mark_all

local data = {}

local copy_list = util.deep_copy

-- ---- data_config ----------------------------------------------------------------------------------

-- "f[1-3]" -> f1, f2, f3 (auto_expand_input_fields)
local function expand_name(name)
  local pre, a, b, post = name:match("^(.-)%[(%d+)%-(%d+)%](.*)$")
  if not pre then return { name } end
  local out = {}
  for i = tonumber(a), tonumber(b) do out[#out + 1] = pre .. i .. post end
  return out
end

-- How the files are read: input_type, separator, header, batches, shuffling, epochs.
local function map_reading(dc, d, st)
  if not dc:has("input_type") then
    if not dc.bad.input_type then dc:err(nil, "data_config.input_type is required (mtl reads CSVInput)") end
  else
    local it = dc:get("input_type")
    if it ~= "CSVInput" then
      dc:unsupported_value("input_type", "mtl reads delimited text files: export the table to CSV and give input_type: CSVInput")
    end
  end
  local sep = dc:get("separator")
  if #sep ~= 1 then dc:unsupported_value("separator", "mtl's reader splits fields on one character") end
  d.separator = sep
  d.header = dc:get("with_header")
  d.batch_size = dc:get("batch_size")
  if d.batch_size < 1 then dc:verr("batch_size", nil, "'data_config.batch_size' must be positive, got 0") end
  local shuffle = dc:get("shuffle")
  local buffer = dc:get("shuffle_buffer_size")
  if shuffle and buffer < 0 then dc:verr("shuffle_buffer_size", nil, "'data_config.shuffle_buffer_size' must be >= 0, got %d", buffer) end
  d.shuffle_buffer = shuffle and math.max(buffer, 0) or 0
  local epochs = dc:get("num_epochs")
  st.num_epochs, st.epochs_obj = epochs, dc
end

-- input_fields -> st.columns and st.column_list, in file order.
local function map_columns(dc, st)
  local expand = dc:get("auto_expand_input_fields")
  st.columns, st.column_list = {}, {}
  local fields = dc:get("input_fields")
  if #fields == 0 then dc:err(nil, "data_config has no input_fields (the columns of the files, in order)") end
  for i, f in ipairs(fields) do
    if not f:has("input_name") then f:err(nil, "'%s' needs an input_name", f.path) end
    local names = { f:get("input_name") }
    if expand and names[1] then names = expand_name(names[1]) end
    local etype = f:get("input_type")
    if f:get("input_dim") ~= 1 then f:unsupported_value("input_dim", "each input field is one value") end
    if f:get("input_shape") ~= 1 then f:unsupported_value("input_shape", "each input field is one value") end
    for _, name in ipairs(names) do
      if st.columns[name] then
        f:verr("input_name", nil, "input field '%s' is listed twice (first as input_fields[%d])", name, st.columns[name].index)
      else
        local col = { name = name, etype = etype, field = f, index = i, roles = {} }
        if f:has("default_val") then col.default_val = f:get("default_val") end
        st.columns[name] = col
        st.column_list[#st.column_list + 1] = col
      end
    end
  end
end

-- label_fields -> d.labels; sample_weight -> st.sample_weight.
local function map_labels(dc, d, st)
  d.labels = {}
  for i, l in ipairs(dc:get("label_fields")) do
    local col = st.columns[l]
    if not col then
      dc:verr("label_fields", i, "label field '%s' is not in data_config.input_fields%s", l, util.did_you_mean(l, st.columns))
    else
      if col.etype == "STRING" or col.etype == "BOOL" then
        dc:verr("label_fields", i, "label field '%s' has input_type %s; mtl's labels are numbers (0/1)", l, col.etype)
      end
      col.label = true
      d.labels[#d.labels + 1] = l
    end
  end
  if #d.labels == 0 then dc:err(nil, "data_config.label_fields is empty (the multi-task labels, e.g. clk and buy)") end
  if dc:has("sample_weight") then
    local w = dc:get("sample_weight")
    if not st.columns[w] then
      dc:verr("sample_weight", nil, "sample_weight field '%s' is not in data_config.input_fields%s", w, util.did_you_mean(w, st.columns))
    else
      st.sample_weight = w
      table.insert(st.columns[w].roles, { type = "float", why = "the sample weight", obj = dc, field = "sample_weight" })
    end
  end
end

-- data_config -> cfg.data (its columns are typed later, by type_columns).
-- Without a data_config, st.columns stays nil and nothing else is mapped.
function data.map_data(ctx, root, cfg, st)
  local dc = root.values.data_config
  root.used.data_config = true
  if not dc then
    ctx:add(1, 1, "data_config is missing (mtl needs input_fields, label_fields and input_type: CSVInput)")
    return
  end
  map_reading(dc, cfg.data, st)
  map_columns(dc, st)
  map_labels(dc, cfg.data, st)
end

-- Records that a reader (obj's field, i-th value) reads column name; role:
-- {type =, why =, ...}: how. Returns the column, or nil (reported).
local function use_column(st, obj, field, i, name, role)
  local col = st.columns[name]
  if not col then
    obj:verr(field, i, "input field '%s' is not in data_config.input_fields%s", name, util.did_you_mean(name, st.columns))
    return nil
  end
  role.obj, role.field, role.index = obj, field, i
  table.insert(col.roles, role)
  return col
end

-- ---- features -------------------------------------------------------------------------------------
-- Every feature below gets x = {st, fc (the FeatureConfig), f (its entry:
-- f.spec becomes the mtl feature), name, ftype, inputs, dim}.

-- The FeatureConfig objects: feature_config.features or feature_configs.
local function feature_configs(root)
  local v1 = root:get("feature_configs")
  local v2 = root.values.feature_config
  root.used.feature_config = true
  if #v1 > 0 and v2 then
    root:err("feature_config", "feature_configs and feature_config are both set; give the features in one of them")
  end
  if v2 then return v2:get("features") end
  return v1
end

-- A feature's entry and name; registered in st unless the name is missing or taken.
local function new_feature(st, fc, inputs)
  local name = fc:get("feature_name") or inputs[1]
  local f = { obj = fc }
  if not name then
    fc:err(nil, "'%s' needs input_names (and optionally feature_name)", fc.path)
  elseif st.features[name] then
    local line = st.features[name].obj.node.line
    fc:err(fc:has("feature_name") and "feature_name" or "input_names",
      "feature '%s' is defined twice (first at line %d)", name, line)
  else
    st.features[name] = f
    st.feature_list[#st.feature_list + 1] = f
  end
  f.name = name
  return f, name
end

local function check_input_count(x)
  local fc, ftype, inputs = x.fc, x.ftype, x.inputs
  local n_inputs = ftype == "ComboFeature" and ">= 2" or (ftype == "LookupFeature" and "2" or "1")
  if (n_inputs == "1" and #inputs ~= 1) or (n_inputs == "2" and #inputs ~= 2) or (n_inputs == ">= 2" and #inputs < 2) then
    local why = ftype == "TagFeature" and #inputs == 2 and " (a separate tag-weight field is not supported; use kv_separator)" or ""
    fc:err(#inputs > 0 and "input_names" or nil, "a %s reads %s input field%s, '%s' has %d%s", ftype, n_inputs,
      n_inputs == "1" and "" or "s", tostring(x.name), #inputs, why)
  end
end

local TABLE_FIELDS = { "hash_bucket_size", "vocab_list", "vocab_file", "num_buckets" }

-- The table size: EasyRec's precedence is hash_bucket_size, vocab_list,
-- vocab_file, num_buckets. Returns "hash", "vocab", "identity" or nil.
local function table_size(x)
  local fc, spec = x.fc, x.f.spec
  local given = {}
  for _, k in ipairs(TABLE_FIELDS) do
    if fc:has(k) and not (k == "hash_bucket_size" and fc.values[k] == 0) and not (k == "num_buckets" and fc.values[k] == 0) then
      given[#given + 1] = k
    end
  end
  for _, k in ipairs(TABLE_FIELDS) do fc.used[k] = true end
  if #given > 1 then
    fc:err(given[2], "'%s' sets %s; EasyRec would use %s only, so give one", fc.path, table.concat(given, " and "), given[1])
  end
  local k = given[1]
  if k == "hash_bucket_size" then spec.hash_bucket_size = fc.values[k]; return "hash"
  elseif k == "vocab_list" then spec.vocab = copy_list(fc.values[k]); return "vocab"
  elseif k == "vocab_file" then spec.vocab_file = fc.values[k]; return "vocab"
  elseif k == "num_buckets" then spec.num_buckets = fc.values[k]; return "identity" end
  fc:err(nil, "%s '%s' needs hash_bucket_size, num_buckets, vocab_list or vocab_file", x.ftype, tostring(x.name))
  return nil
end

local function need_dim(x)
  local fc = x.fc
  if x.dim < 1 then fc:err(fc:has("embedding_dim") and "embedding_dim" or nil, "%s '%s' needs embedding_dim > 0", x.ftype, tostring(x.name)) end
  x.f.spec.dim = x.dim
end

-- A field this feature type does not take: unsupported when set.
local function no(fc, field, why) if fc:has(field) then fc:unsupported(field, why) end end

-- An embedded feature of one column (id, tag): its type, column, dim and
-- table; returns the table kind (table_size).
local function embedded(x, type)
  x.f.spec.type = type
  x.f.spec.column = x.inputs[1]
  need_dim(x)
  return table_size(x)
end

local function id_feature(x)
  local fc, spec, inputs = x.fc, x.f.spec, x.inputs
  local size = embedded(x, "id")
  local multi = fc:has("separator") or fc:has("kv_separator")
  if fc:has("kv_separator") then fc:unsupported("kv_separator", "weighted ids are TagFeatures in mtl (TagFeature with kv_separator)") end
  if multi then
    spec.combiner = fc:get("combiner")
    use_column(x.st, fc, "input_names", 1, inputs[1] or "?", { type = "ids", separator = fc:get("separator"),
      strings = size ~= "identity", why = "a multi-valued IdFeature" })
  else
    if fc:has("combiner") then spec.combiner = fc:get("combiner") end
    use_column(x.st, fc, "input_names", 1, inputs[1] or "?", { type = size == "identity" and "int" or "key",
      why = size == "identity" and "an IdFeature with num_buckets (ids are rows)" or "an IdFeature" })
  end
end

local function tag_feature(x)
  local fc, spec, inputs = x.fc, x.f.spec, x.inputs
  local size = embedded(x, "tag")
  spec.combiner = fc:get("combiner")
  local kv = fc:has("kv_separator")
  use_column(x.st, fc, "input_names", 1, inputs[1] or "?", { type = kv and "kv" or "ids", separator = fc:get("separator"),
    kv_separator = kv and fc:get("kv_separator") or nil, strings = size ~= "identity", why = "a TagFeature" })
end

local function combo_feature(x)
  local fc, spec, inputs = x.fc, x.f.spec, x.inputs
  spec.type = "combo"
  spec.columns = copy_list(inputs)
  need_dim(x)
  if not fc:has("hash_bucket_size") or fc.values.hash_bucket_size == 0 then
    fc:err(nil, "ComboFeature '%s' needs hash_bucket_size", tostring(x.name))
  end
  spec.hash_bucket_size = fc:get("hash_bucket_size")
  for _, k in ipairs({ "vocab_list", "vocab_file", "num_buckets" }) do
    no(fc, k, "a ComboFeature hashes the crossed values (hash_bucket_size)")
  end
  for i, c in ipairs(inputs) do
    use_column(x.st, fc, "input_names", i, c, { type = "key", why = "a ComboFeature input" })
  end
  no(fc, "separator", "mtl crosses single-valued columns")
end

-- A raw feature's normalizer_fn (only log1p, and not with boundaries) and min_val/max_val.
local function raw_normalizer(fc, spec, bounds, minmax_read)
  local nf = fc.values.normalizer_fn
  if nf ~= nil then
    fc.used.normalizer_fn = true
    if nf == "tf.math.log1p" or nf == "log1p" or nf == "tf.log1p" then
      if #bounds > 0 then fc:unsupported("normalizer_fn", "mtl bucketizes the raw value, not its log1p")
      else spec.normalize = "log1p" end
    else
      fc:unsupported_value("normalizer_fn", "mtl's raw normalizers are log1p (tf.math.log1p), zscore and minmax")
    end
  end
  local lo, hi = fc:get("min_val"), fc:get("max_val")
  if (lo ~= 0 or hi ~= 0) and not minmax_read then
    fc:unsupported(fc:has("max_val") and "max_val" or "min_val",
      "mtl's minmax normalization uses the minimum and maximum fitted on the training data")
    fc.used.min_val, fc.used.max_val = true, true
  end
end

-- Table-size fields a RawFeature does not read, as EasyRec's parse_raw_feature
-- ignores them (num_buckets counts only with min_val < max_val): ignored, noted once.
local function raw_ignored(x, fields)
  local fc = x.fc
  for _, k in ipairs(fields) do
    if fc:has(k) then
      fc.used[k] = true
      x.st.raw_ignored = x.st.raw_ignored or {}
      table.insert(x.st.raw_ignored, string.format("%s.%s", tostring(x.name), k))
    end
  end
end

-- A RawFeature, as EasyRec's parse_raw_feature reads it: bucketized by its
-- boundaries (sorted), or by num_buckets equal buckets of [min_val, max_val];
-- else, with embedding_dim, the value times a learned vector; else the number.
local function raw_feature(x)
  local fc, spec, inputs = x.fc, x.f.spec, x.inputs
  spec.type = "raw"
  spec.column = inputs[1]
  local bounds, n = fc:get("boundaries"), fc:get("num_buckets")
  local lo, hi = fc:get("min_val"), fc:get("max_val")
  if fc:get("raw_input_dim") ~= 1 then
    fc:unsupported("raw_input_dim", string.format("raw_input_dim %d is a vector of numbers per row (such as a pretrained " ..
      "image or text embedding); mtl's raw features are one number each", fc:get("raw_input_dim")))
    fc.used.separator, fc.used.embedding_dim = true, true
  end
  if #bounds > 0 then
    spec.boundaries = copy_list(bounds)
    table.sort(spec.boundaries)
    need_dim(x)
    raw_ignored(x, { "hash_bucket_size", "vocab_list", "vocab_file", "num_buckets" })
  elseif n > 1 and hi > lo then
    spec.boundaries = {}
    for k = 0, n - 1 do spec.boundaries[k + 1] = lo + (hi - lo) * k / n end
    need_dim(x)
    x.minmax_read = true
    raw_ignored(x, { "hash_bucket_size", "vocab_list", "vocab_file" })
  else
    if x.dim > 0 then spec.dim = x.dim end
    raw_ignored(x, { "hash_bucket_size", "vocab_list", "vocab_file", "num_buckets" })
  end
  raw_normalizer(fc, spec, spec.boundaries or {}, x.minmax_read)
  if fc:get("raw_input_dim") == 1 then no(fc, "separator", "a RawFeature with raw_input_dim 1 is one number") end
  use_column(x.st, fc, "input_names", 1, inputs[1] or "?", { type = "float", why = "a RawFeature" })
end

local function lookup_feature(x)
  local fc, spec, inputs, st = x.fc, x.f.spec, x.inputs, x.st
  spec.type = "lookup"
  spec.column = inputs[1]
  spec.key = inputs[2]
  if x.dim > 0 then fc:unsupported("embedding_dim", "mtl's lookup feature gives the looked-up number itself") end
  for _, k in ipairs({ "hash_bucket_size", "vocab_list", "vocab_file", "num_buckets", "boundaries" }) do
    no(fc, k, "mtl's lookup feature gives the looked-up number itself")
  end
  local key_col = inputs[2] and st.columns[inputs[2]]
  local strings = not key_col or key_col.etype == "STRING" or key_col.etype == "BOOL"
  use_column(st, fc, "input_names", 1, inputs[1] or "?", { type = "kv", separator = fc:get("separator"),
    kv_separator = fc.values.kv_separator or ":", strings = strings, why = "a LookupFeature map" })
  fc.used.kv_separator = true
  if inputs[2] then use_column(st, fc, "input_names", 2, inputs[2], { type = "key", why = "a LookupFeature key" }) end
end

-- What a SequenceFeature's mapping (easyrec/sequence.lua) uses of this file.
local seq_helpers = { need_dim = need_dim, table_size = table_size, use_column = use_column, no = no }
local function sequence_feature(x) require("mtl.config.easyrec.sequence").feature(x, seq_helpers) end

local FEATURES = { IdFeature = id_feature, TagFeature = tag_feature, ComboFeature = combo_feature,
                   RawFeature = raw_feature, LookupFeature = lookup_feature, SequenceFeature = sequence_feature }

-- What every feature type shares: combiner, embedding_name.
local function feature_common(x)
  local fc, ftype = x.fc, x.ftype
  if fc:has("combiner") and ftype ~= "IdFeature" and ftype ~= "TagFeature" then
    fc:unsupported("combiner", "a combiner applies to multi-valued id and tag features")
  end
  if fc:has("combiner") and not ({ sum = true, mean = true, sqrtn = true })[fc.values.combiner] then
    fc:unsupported_value("combiner", "mtl's combiners are sum, mean and sqrtn")
  end
  if fc:has("embedding_name") and fc.values.embedding_name ~= "" then x.f.embedding_name = fc:get("embedding_name") end
  fc.used.embedding_name = true
  fc.used.embedding_dim = true
end

-- The feature configs -> st.features and st.feature_list (f.spec: the mtl
-- feature; its place in cfg.features comes from the feature group).
function data.map_features(root, st)
  local list = feature_configs(root)
  st.features, st.feature_list = {}, {}
  for _, fc in ipairs(list) do
    local inputs = fc:get("input_names")
    local f, name = new_feature(st, fc, inputs)
    local x = { st = st, fc = fc, f = f, name = name, ftype = fc:get("feature_type"), inputs = inputs,
                dim = fc:get("embedding_dim") }
    check_input_count(x)
    f.spec = { name = name }
    local map = FEATURES[x.ftype]
    if map then
      map(x)
    else
      fc:unsupported_value("feature_type", "expression features are not supported")
      mark_all(fc) -- its other fields need no second report
    end
    feature_common(x)
  end
end

-- Features in group order -> cfg.features; embedding_name -> shared.
function data.finish_features(ctx, cfg, st)
  local owners = {}
  for _, f in ipairs(st.group or {}) do
    local s = f.spec
    if f.embedding_name then
      local owner = owners[f.embedding_name]
      if owner then
        if owner.spec.type == "raw" or s.type == "raw" or owner.spec.type == "lookup" or s.type == "lookup" then
          f.obj:err("embedding_name", "embedding_name '%s' joins features that have no table of the same kind", f.embedding_name)
        elseif owner.spec.dim ~= s.dim then
          f.obj:err("embedding_dim", "features sharing embedding_name '%s' need the same embedding_dim (%s has %s, %s has %s)",
            f.embedding_name, owner.name, tostring(owner.spec.dim), f.name, tostring(s.dim))
        end
        s.shared = owner.name
        s.hash_bucket_size, s.num_buckets, s.vocab, s.vocab_file = nil, nil, nil, nil
      else
        owners[f.embedding_name] = f
      end
    end
    cfg.features[#cfg.features + 1] = s
  end
  if st.raw_ignored then
    ctx:note("EasyRec ignores these fields of RawFeatures, and so does mtl: %s", table.concat(st.raw_ignored, ", "))
  end
  local in_group = {}
  for _, f in ipairs(st.group or {}) do in_group[f] = true end
  local unused = {}
  for _, f in ipairs(st.feature_list) do if not in_group[f] then unused[#unused + 1] = f.name end end
  if #unused > 0 and st.group and #st.group > 0 then
    ctx:note("features in no feature group (unused, as in EasyRec): %s", table.concat(unused, ", "))
  end
end

data.type_columns = require("mtl.config.easyrec.columns").type_columns

return data
