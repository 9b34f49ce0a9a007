-- mtl.config.easyrec.groups: EasyRec's feature_groups mapped onto mtl's
-- feature groups (cfg.groups, docs/config.md) or, for a model that reads one
-- plain group, onto the order of cfg.features.
--
--   groups.map(mc, st)          model_config.feature_groups -> st.groups, st.main_group
--   groups.read(st, names)      the groups the model reads (default: the main one)
--   groups.finish(ctx, cfg, st) st.group (the features used), cfg.groups when needed
--
-- A group's sequence_features (SeqAttGroupConfig) become its sequences: the
-- keys of all its seq_att_maps, concatenated, are the query, their hist_seqs
-- the history, their aux_hist_seqs the aux (as EasyRec's SeqInputLayer joins
-- them); seq_dnn the attention MLP (default [128, 64, 32, 1] with batch
-- normalization, EasyRec's DNN defaults); need_key_feature, and
-- allow_key_transform with transform_dnn, the query's place in the output
-- and how a query of another width meets the history. Takes decoded objects
-- and st.features (mtl.config.easyrec.data); problems go to the context.
local util = require "mtl.config.util"

local groups = {}

-- The width of a feature in a group's x, as far as the config tells it.
local function width(f)
  local s = f.spec
  if s.dim then return s.dim end
  return 1
end

-- A feature named by obj's field (i-th value): its entry, or nil (reported).
local function feature_ref(st, obj, field, i, fname, what)
  local f = st.features[fname]
  if not f then
    local names = {}
    for _, e in ipairs(st.feature_list) do names[#names + 1] = e.name end
    obj:verr(field, i, "%s '%s' is not defined in feature_config%s", what, fname, util.did_you_mean(fname, names))
  end
  return f
end

-- The attention MLP: seq_dnn, or EasyRec's default DNN.
local function attention(q, map_dnn)
  local dnn = q.values.seq_dnn
  q.used.seq_dnn = true
  if not dnn then return { hidden = { 128, 64, 32, 1 }, batch_norm = true } end
  local a = map_dnn(dnn)
  if a.hidden[#a.hidden] ~= 1 then
    dnn:verr("hidden_units", #a.hidden, "the last of '%s' must be 1 (the attention score), got %s",
      dnn:field_path("hidden_units"), util.show(a.hidden[#a.hidden]))
  end
  return a
end

-- One SeqAttGroupConfig -> {name, query = {entries}, history, aux, attention, need_query, transform}.
local function map_sequence(st, q, i, map_dnn)
  local seq = { name = q:get("group_name") or ("seq" .. i), query = {}, history = {}, aux = {}, obj = q }
  if not q:has("group_name") then q:err(nil, "'%s' needs a group_name", q.path) end
  for _, m in ipairs(q:get("seq_att_map")) do
    for field, list in pairs({ key = seq.query, hist_seq = seq.history, aux_hist_seq = seq.aux }) do
      for j, n in ipairs(m:get(field)) do
        local f = feature_ref(st, m, field, j, n, field)
        if f and (field == "key") == (f.spec.type == "sequence") then
          m:verr(field, j, "%s '%s' %s a SequenceFeature", field, n, field == "key" and "must not be" or "must be")
        elseif f then
          list[#list + 1] = f
        end
      end
    end
  end
  if #seq.query == 0 or #seq.history == 0 then q:err(nil, "'%s' needs seq_att_map with key and hist_seq", q.path) end
  seq.attention = attention(q, map_dnn)
  seq.need_query = q:get("need_key_feature")
  local transform = q:get("allow_key_transform")
  seq.transform = transform and (q:get("transform_dnn") and "dense" or "auto") or nil
  q.used.transform_dnn = true
  return seq
end

-- Query and history widths must meet (EasyRec's target attention tiles the key over the history).
local function check_widths(seq)
  local dq, dh = 0, 0
  for _, f in ipairs(seq.query) do dq = dq + width(f) end
  for _, f in ipairs(seq.history) do dh = dh + width(f) end
  if dq ~= dh and not seq.transform then
    seq.obj:err("seq_att_map", "the keys are %d wide and the hist_seqs %d: EasyRec's target attention needs them equal (or allow_key_transform: true)",
      dq, dh)
  end
end

-- One FeatureGroupConfig -> {name, obj, features = {entries}, sequences = {...}}.
local function map_group(st, g, map_dnn)
  local group = { name = g:get("group_name") or "?", obj = g, features = {}, sequences = {} }
  if not g:has("group_name") then g:err(nil, "'%s' needs a group_name", g.path) end
  if g:get("wide_deep") ~= "DEEP" then g:unsupported_value("wide_deep", "mtl's multi-task models read deep features (DEEP)") end
  if g:get("negative_sampler") then g:unsupported("negative_sampler", "mtl has no negative sampling (a retrieval-model feature)") end
  local seen = {}
  for i, fname in ipairs(g:get("feature_names")) do
    local f = feature_ref(st, g, "feature_names", i, fname, "feature")
    if f and seen[fname] then
      g:verr("feature_names", i, "feature '%s' is listed twice in the group", fname)
    elseif f and f.spec.type == "sequence" then
      g:verr("feature_names", i, "'%s' is a SequenceFeature: mtl reads sequences through sequence_features (DIN attention), not through feature_names", fname)
    elseif f then
      seen[fname] = true
      group.features[#group.features + 1] = f
    end
  end
  for i, q in ipairs(g:get("sequence_features")) do
    local seq = map_sequence(st, q, i, map_dnn)
    check_widths(seq)
    group.sequences[#group.sequences + 1] = seq
  end
  return group
end

function groups.map(mc, st, map_dnn)
  local list = mc:get("feature_groups")
  if #list == 0 then
    mc:err(nil, "model_config has no feature_groups (EasyRec's multi-task models read the group named 'all')")
  end
  st.groups, st.group_by_name = {}, {}
  for _, g in ipairs(list) do
    local group = map_group(st, g, map_dnn)
    if st.group_by_name[group.name] then g:verr("group_name", nil, "feature group '%s' is defined twice", group.name) end
    st.groups[#st.groups + 1] = group
    st.group_by_name[group.name] = group
  end
  st.main_group = #list == 1 and st.groups[1].name or "all"
  st.read = { st.main_group }
  st.groups_obj = mc
end

-- The model reads these groups (ESMM's towers), not the main one.
function groups.read(st, names) st.read = names end

-- st.group: every feature the read groups use, in first-use order; cfg.groups
-- when a group has sequences or variational dropout, or the model reads groups.
function groups.finish(ctx, cfg, st, reads_groups)
  if not reads_groups and st.groups and #st.groups > 1 and not st.group_by_name.all then
    st.groups_obj:err("feature_groups", "model_class %s reads the feature group named 'all'; this config has %s",
      tostring(st.groups_obj.values.model_class), table.concat(util.sorted_keys(st.group_by_name), ", "))
  end
  local used, seen, out = {}, {}, {}
  local function use(f) if not seen[f] then seen[f] = true; used[#used + 1] = f end end
  local plain = not reads_groups and not st.variational_dropout
  for _, name in ipairs(st.read or {}) do
    local g = st.group_by_name[name]
    if g then
      for _, f in ipairs(g.features) do use(f) end
      local entry = { name = g.name, features = {}, sequences = {}, variational_dropout = st.variational_dropout }
      for i, f in ipairs(g.features) do entry.features[i] = f.name end
      for _, q in ipairs(g.sequences) do
        plain = false
        local s = { name = q.name, query = {}, history = {}, aux = {}, attention = q.attention, need_query = q.need_query,
                    transform = q.transform }
        for k, list in pairs({ query = q.query, history = q.history, aux = q.aux }) do
          for i, f in ipairs(list) do use(f); s[k][i] = f.name end
        end
        entry.sequences[#entry.sequences + 1] = s
      end
      out[#out + 1] = entry
    end
  end
  st.group = used
  local unread = {}
  for _, g in ipairs(st.groups or {}) do
    local read = false
    for _, n in ipairs(st.read or {}) do read = read or n == g.name end
    if not read then unread[#unread + 1] = g.name end
  end
  if #unread > 0 then ctx:note("feature groups the model does not read (unused, as in EasyRec): %s", table.concat(unread, ", ")) end
  if not plain then cfg.groups = out end
end

return groups
