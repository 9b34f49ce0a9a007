-- EasyRec's tower losses, num_class 2, metrics and inputs mtl reads otherwise
-- (lua/mtl/config/easyrec/losses.lua, data.lua).
local easyrec = require "mtl.config.easyrec"
local H = require "helpers.easyrec"

local SAMPLES = "spec/fixtures/easyrec/samples/"

describe("EasyRec: tower losses", function()
  it("maps CLASSIFICATION, PAIR_WISE_LOSS, F1_REWEIGHTED_LOSS and JRC_LOSS with num_class 2", function()
    local cfg = easyrec.load(SAMPLES .. "dbmtl_on_taobao_with_multi_loss.config")
    assert.are.same({
      { name = "ctr", output = "ctr", label = "clk", type = "f1_reweighted", weight = 1, beta_square = 1, label_smoothing = 0 },
      { name = "ctr_pairwise", output = "ctr", label = "clk", type = "pairwise", weight = 1 },
      { name = "cvr", output = "cvr", label = "buy", type = "jrc", weight = 1, session = "user_id", alpha = 0.5 },
    }, cfg.losses)
    assert.are.equal(2, cfg.model.tasks[2].classes)
    assert.are.equal("dice", cfg.model.bottom.activation)
    cfg = easyrec.load(SAMPLES .. "mmoe_on_taobao_with_multi_loss.config")
    assert.are.same({ "ctr", "ctr_pairwise", "cvr" }, { cfg.losses[1].name, cfg.losses[2].name, cfg.losses[3].name })
    assert.are.equal("bce", cfg.losses[1].type)
    assert.is_nil(cfg.losses[3].type)  -- the tower without losses keeps its BCE
  end)

  it("notes an ORDER_CALIBRATE_LOSS without relations, and maps max_f1", function()
    local cfg, notes = easyrec.load(SAMPLES .. "aitm_on_taobao.config")
    assert.are.same({ type = "order_calibrate", name = "cvr_order_calibrate", output = "cvr", label = "buy", weight = 1,
                      relations = {} }, cfg.losses[3])
    local found = false
    for _, n in ipairs(notes) do found = found or n:find("ORDER_CALIBRATE_LOSS of tower 'cvr' adds nothing", 1, true) ~= nil end
    assert.is_true(found)
    cfg = H.map { eval = "eval_config { metrics_set { auc { num_thresholds: 1000 } } metrics_set { max_f1 {} } }\n" }
    assert.are.same({ "auc", "max_f1" }, cfg.eval.metrics)
  end)

  it("maps a RawFeature's embedding_dim (the value times a vector) and notes the fields EasyRec ignores", function()
    local cfg, notes = H.map { features = [[
  features { input_names: "user_id" feature_type: IdFeature embedding_dim: 8 hash_bucket_size: 1000 }
  features { input_names: "price" feature_type: RawFeature embedding_dim: 4 hash_bucket_size: 400 }
  features { input_names: "item_id" feature_type: RawFeature embedding_dim: 4 num_buckets: 4 min_val: 0 max_val: 100 }
]], model = H.pipeline():match("model_config {\n(.-)}\n$"):gsub('"user_id", "item_id"', '"user_id", "price", "item_id"') }
    assert.are.same({ name = "price", type = "raw", column = "price", dim = 4 }, cfg.features[2])
    assert.are.same({ name = "item_id", type = "raw", column = "item_id", dim = 4, boundaries = { 0, 25, 50, 75 } }, cfg.features[3])
    assert.are.equal("EasyRec ignores these fields of RawFeatures, and so does mtl: price.hash_bucket_size", notes[1])
  end)

  it("names the CSV equivalent of a Hive input", function()
    local err = H.err_of(easyrec.load, SAMPLES .. "mmoe_census_income.config")
    assert.are.equal(SAMPLES .. "mmoe_census_income.config:1:1: unsupported field 'hive_train_input': mtl reads files: " ..
      "export the Hive table to CSV (its columns in input_fields order, no header) and give train_input_path: " ..
      "\"train.csv\" with data_config.input_type: CSVInput", err:match("^[^\n]*"))
  end)
end)
