-- EasyRec's feature groups (several; sequence_features; ESMM.groups;
-- variational_dropout) and SequenceFeature, mapped
-- onto mtl sequence features and groups (lua/mtl/config/easyrec/sequence.lua,
-- groups.lua), and their errors.
local H = require "helpers.easyrec"
local err_of, map = H.err_of, H.map

local DATA = H.inputs("clk:INT32 buy:INT32 brand:STRING cate:STRING hist_brand:STRING hist_cate:STRING")

local function model(groups)
  return [[
  model_class: "DBMTL"
]] .. groups .. [[
  dbmtl {
    task_towers { tower_name: "ctr" label_name: "clk" dnn { hidden_units: [8] } }
    task_towers { tower_name: "cvr" label_name: "buy" dnn { hidden_units: [8] } relation_tower_names: ["ctr"] }
  }
]]
end

local SEQ_GROUP = [[
  feature_groups {
    group_name: "all" feature_names: ["brand", "cate"] wide_deep: DEEP
    sequence_features {
      group_name: "seq_fea"
      seq_att_map { key: "brand" key: "cate" hist_seq: "hist_brand" hist_seq: "hist_cate" }
    }
  }
]]

local function features(brand_seq, cate_seq)
  return [[
  features { input_names: "brand" feature_type: IdFeature embedding_dim: 4 hash_bucket_size: 100 }
  features { input_names: "cate" feature_type: IdFeature embedding_dim: 4 hash_bucket_size: 100 }
  features { input_names: "hist_brand" feature_type: SequenceFeature embedding_dim: 4 ]] .. brand_seq .. [[ }
  features { input_names: "hist_cate" feature_type: SequenceFeature embedding_dim: 4 ]] .. (cate_seq or brand_seq) .. [[ }
]]
end

describe("EasyRec: SequenceFeature", function()
  it("maps hashed id sequences with values per step to seq columns and sequence features", function()
    local cfg = map { data = DATA, model = model(SEQ_GROUP),
                      features = features([[hash_bucket_size: 100 separator: "|" seq_multi_sep: ";" max_seq_len: 20]]) }
    assert.are.same({ name = "hist_brand", type = "seq", separator = "|", step_separator = ";", values = "string",
                      default = "" }, cfg.data.columns[5])
    assert.are.same({ name = "hist_brand", type = "sequence", column = "hist_brand", hash_bucket_size = 100, dim = 4,
                      combiner = "sum", max_len = 20 }, cfg.features[3])
    assert.are.same({ { name = "all", features = { "brand", "cate" }, sequences = { {
      name = "seq_fea", query = { "brand", "cate" }, history = { "hist_brand", "hist_cate" }, aux = {},
      attention = { hidden = { 128, 64, 32, 1 }, batch_norm = true }, need_query = true } } } }, cfg.groups)
  end)

  it("maps number sequences: boundaries, equal buckets of [min_val, max_val], or a projection", function()
    local cfg = map { data = DATA, model = model(SEQ_GROUP),
                      features = features([[sub_feature_type: RawFeature boundaries: [20, 10] ]],
                        [[sub_feature_type: RawFeature num_buckets: 4 min_val: 0 max_val: 100 ]]) }
    assert.are.same({ 10, 20 }, cfg.features[3].boundaries)   -- sorted, as EasyRec sorts them
    assert.are.same({ 0, 25, 50, 75 }, cfg.features[4].boundaries)
    assert.are.equal("float", cfg.data.columns[5].values)
    cfg = map { data = DATA, model = model(SEQ_GROUP),
                features = features([[sub_feature_type: RawFeature raw_input_dim: 2 sequence_length: 50]]) }
    assert.are.same({ name = "hist_brand", type = "sequence", column = "hist_brand", dim = 4, raw_dim = 2, length = 50,
                      combiner = "sum" }, cfg.features[3])
  end)

  it("maps a seq_dnn, need_key_feature and allow_key_transform", function()
    local cfg = map { data = DATA, features = features("hash_bucket_size: 100"), model = model([[
  feature_groups {
    group_name: "all" feature_names: ["brand"] wide_deep: DEEP
    sequence_features {
      group_name: "s" need_key_feature: false allow_key_transform: true allow_key_search: true tf_summary: false
      seq_dnn { hidden_units: [16, 1] use_bn: false }
      seq_att_map { key: "brand" hist_seq: "hist_brand" hist_seq: "hist_cate" }
    }
  }
]]) }
    local s = cfg.groups[1].sequences[1]
    assert.are.same({ hidden = { 16, 1 }, batch_norm = false }, s.attention)
    assert.is_false(s.need_query)
    assert.are.equal("auto", s.transform)
  end)

  it("names what EasyRec would reject", function()
    assert.are.equal("t.config:30:41: the keys are 4 wide and the hist_seqs 8: EasyRec's target attention needs them " ..
      "equal (or allow_key_transform: true)", err_of(map, { data = DATA, features = features("hash_bucket_size: 100"),
        model = model([[
  feature_groups {
    group_name: "all" feature_names: ["brand"] wide_deep: DEEP
    sequence_features { group_name: "s" seq_att_map { key: "brand" hist_seq: "hist_brand" hist_seq: "hist_cate" } }
  }
]]) }))
    assert.are.equal("t.config:29:5: 'hist_brand' is a SequenceFeature: mtl reads sequences through sequence_features " ..
      "(DIN attention), not through feature_names", err_of(map, { data = DATA, features = features("hash_bucket_size: 100"),
        model = model([[
  feature_groups { group_name: "all" feature_names: ["brand",
    "hist_brand"] }
]]) }))
    assert.are.equal("t.config:23:134: a SequenceFeature with sub_feature_type RawFeature cannot hash (EasyRec asserts " ..
      "sub_feature_type IdFeature for hash_bucket_size)", err_of(map, { data = DATA, model = model(SEQ_GROUP),
        features = features("sub_feature_type: RawFeature hash_bucket_size: 10", "hash_bucket_size: 10") }):match("^[^\n]*"))
  end)
end)

describe("EasyRec: several feature groups", function()
  local FEATURES = [[
  features { input_names: "brand" feature_type: IdFeature embedding_dim: 4 hash_bucket_size: 100 }
  features { input_names: "cate" feature_type: IdFeature embedding_dim: 4 hash_bucket_size: 100 }
]]
  local function esmm(groups, extra)
    return [[
  model_class: "ESMM"
  feature_groups { group_name: "user" feature_names: ["brand"] }
  feature_groups { group_name: "item" feature_names: ["cate"] }
  esmm {
]] .. groups .. [[
    ctr_tower { tower_name: "ctr" label_name: "clk" dnn { hidden_units: [8] } }
    cvr_tower { tower_name: "cvr" label_name: "buy" dnn { hidden_units: [8] } }
  }
]] .. (extra or "")
  end

  it("maps ESMM's groups: each feature group through its DNN", function()
    local cfg = map { data = DATA, features = FEATURES, model = esmm([[
    groups { input: "user" dnn { hidden_units: [16] } }
    groups { input: "item" dnn { hidden_units: [8, 4] use_bn: false } }
]], [[
  variational_dropout { regularization_lambda: 0.1 embedding_wise_variational_dropout: true }
]]) }
    assert.are.same({ { input = "user", hidden = { 16 }, batch_norm = true },
                      { input = "item", hidden = { 8, 4 }, batch_norm = false } }, cfg.model.groups)
    assert.are.same({ { name = "user", features = { "brand" }, sequences = {}, variational_dropout = { lambda = 0.1, per_dim = true } },
                      { name = "item", features = { "cate" }, sequences = {}, variational_dropout = { lambda = 0.1, per_dim = true } } },
      cfg.groups)
  end)

  it("names a group that does not exist, and a missing 'all' for models that read it", function()
    assert.are.equal("t.config:29:21: no feature group is named 'items' (did you mean 'item'?)", err_of(map, {
      data = DATA, features = FEATURES, model = esmm([[
    groups { input: "items" dnn { hidden_units: [16] } }
]]) }))
    assert.are.equal("t.config:26:3: model_class ESMM reads the feature group named 'all'; this config has item, user",
      err_of(map, { data = DATA, features = FEATURES, model = esmm("") }))
  end)
end)
