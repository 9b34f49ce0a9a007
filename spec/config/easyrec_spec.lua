-- EasyRec pipeline.config -> the mtl config structure (lua/mtl/config/easyrec/).
-- The two shared Taobao configs are checked field by field; small inline
-- configs cover the other models, features, optimizers, schedules and metrics;
-- broken configs give file:line:column errors.
local config = require "mtl.config"
local easyrec = require "mtl.config.easyrec"

local FIX = "spec/fixtures/easyrec/"

local H = require "helpers.easyrec"
local err_of, pipeline, map = H.err_of, H.pipeline, H.map

-- A DNN as the reader maps it: its layers, with EasyRec's default batch normalization.
local function D(sizes, extra)
  local d = { hidden = sizes, batch_norm = true }
  for k, v in pairs(extra or {}) do d[k] = v end
  return d
end

describe("EasyRec: the shared MMoE config", function()
  local cfg, notes = easyrec.load(FIX .. "mmoe_on_taobao.config")

  it("maps paths, data and the 20 columns", function()
    assert.are.equal("data/test/tb_data/taobao_train_data", cfg.data.train)
    assert.are.equal("data/test/tb_data/taobao_test_data", cfg.data.eval)
    assert.are.equal("experiments/mmoe_taobao_ckpt", cfg.model_dir)
    assert.are.equal(4096, cfg.data.batch_size)
    assert.are.equal(",", cfg.data.separator)
    assert.is_false(cfg.data.header) -- CSVInput files have no header row
    assert.are.equal(32, cfg.data.shuffle_buffer) -- shuffle defaults to true, buffer 32
    assert.are.same({ "clk", "buy" }, cfg.data.labels)
    assert.are.equal(20, #cfg.data.columns)
    assert.are.same({ name = "clk", type = "int", default = 0 }, cfg.data.columns[1])
    assert.are.same({ name = "buy", type = "int", default = 0 }, cfg.data.columns[2])
    assert.are.same({ name = "pid", type = "string", default = "" }, cfg.data.columns[3])
    assert.are.same({ name = "final_gender_code", type = "string", default = "" }, cfg.data.columns[12])
    assert.are.same({ name = "tag_category_list", type = "ids", separator = "|", values = "string", default = "" },
      cfg.data.columns[18])
    assert.are.same({ name = "tag_brand_list", type = "ids", separator = "|", values = "string", default = "" },
      cfg.data.columns[19])
    assert.are.same({ name = "price", type = "int", default = 0 }, cfg.data.columns[20])
  end)

  it("maps the features in the group's order; final_gender_code (in no group) is left out", function()
    local names = {}
    for i, f in ipairs(cfg.features) do names[i] = f.name end
    assert.are.same({ "user_id", "cms_segid", "cms_group_id", "age_level", "pvalue_level", "shopping_level",
      "occupation", "new_user_class_level", "adgroup_id", "cate_id", "campaign_id", "customer", "brand", "price",
      "pid", "tag_category_list", "tag_brand_list" }, names)
    assert.are.same({ name = "user_id", type = "id", column = "user_id", hash_bucket_size = 100000, dim = 16 },
      cfg.features[1])
    assert.are.same({ name = "pid", type = "id", column = "pid", hash_bucket_size = 10, dim = 16 }, cfg.features[15])
    assert.are.same({ name = "price", type = "id", column = "price", num_buckets = 50, dim = 16 }, cfg.features[14])
    assert.are.same({ name = "tag_category_list", type = "tag", column = "tag_category_list", hash_bucket_size = 100000,
      dim = 16, combiner = "sum" }, cfg.features[16])
    assert.are.same({ "features in no feature group (unused, as in EasyRec): final_gender_code" }, notes)
  end)

  it("maps the model, tasks and towers", function()
    assert.are.same({
      name = "mmoe", experts = 4, expert = D { 256, 192, 128, 64 },
      tasks = {
        { name = "ctr", label = "clk", weight = 1, tower = D { 256, 192, 128, 64 } },
        { name = "cvr", label = "buy", weight = 1, tower = D { 256, 192, 128, 64 } },
      },
    }, cfg.model)
    assert.is_nil(cfg.losses)
  end)

  it("maps the optimizer, the regularization and the schedule", function()
    assert.are.same({ name = "adam", lr = 0.001, beta1 = 0.9, beta2 = 0.999, weight_decay = 1e-6 },
      { name = cfg.optimizer.dense.name, lr = cfg.optimizer.dense.lr, beta1 = cfg.optimizer.dense.beta1,
        beta2 = cfg.optimizer.dense.beta2, weight_decay = cfg.optimizer.dense.weight_decay })
    assert.is_true(math.abs(cfg.optimizer.dense.beta1 - 0.9) < 1e-12)
    assert.are.equal("adam", cfg.optimizer.sparse.name)
    assert.are.equal(0.001, cfg.optimizer.sparse.lr)
    assert.are.equal(5e-5, cfg.optimizer.sparse.weight_decay) -- embedding_regularization
    -- EasyRec's exponential decay is staircase unless it says otherwise
    assert.are.same({ name = "exponential_decay", decay_steps = 1000, decay_factor = 0.5, staircase = true, min_lr = 1e-7 },
      cfg.optimizer.schedule)
    assert.is_nil(cfg.optimizer.clip_norm)
  end)

  it("maps train and eval", function()
    assert.are.same({ steps = 5000, epochs = math.huge, checkpoint_every = 100, keep_checkpoints = 10, log_every = 100 },
      cfg.train)
    assert.are.equal(math.huge, cfg.data.epochs) -- num_epochs 0: until num_steps
    assert.are.same({ metrics = { "auc" } }, cfg.eval)
  end)

  it("passes mtl's validation, which fills in the rest", function()
    local v = config.load(FIX .. "mmoe_on_taobao.config")
    assert.are.equal("csv", v.data.format)
    assert.are.equal(0, v.train.seed)
    assert.are.equal(1, v.train.threads)
    assert.are.same({ alpha = 1 }, v.rank)
  end)
end)

describe("EasyRec: the shared DBMTL config", function()
  local cfg = easyrec.load(FIX .. "dbmtl_on_taobao.config")

  it("maps the bottom, the towers and the relations", function()
    assert.are.same({
      name = "dbmtl", bottom = D { 1024, 512, 256 },
      tasks = {
        { name = "ctr", label = "clk", weight = 1, tower = D { 256, 128, 64, 32 }, relation = D { 32 } },
        { name = "cvr", label = "buy", weight = 1, tower = D { 256, 128, 64, 32 }, relation = D { 32 }, relations = { "ctr" } },
      },
    }, cfg.model)
  end)

  it("maps the same data and the dbmtl regularization", function()
    assert.are.equal(20, #cfg.data.columns)
    assert.are.equal(17, #cfg.features)
    assert.are.equal(1e-6, cfg.optimizer.dense.weight_decay)
    assert.are.equal(5e-6, cfg.optimizer.sparse.weight_decay)
    assert.are.equal("experiments/dbmtl_taobao_ckpt", cfg.model_dir)
    local v = config.load(FIX .. "dbmtl_on_taobao.config", { "train.steps=10" })
    assert.are.equal(10, v.train.steps)
  end)
end)

describe("EasyRec: errors", function()
  it("names a misspelt field with its line and column and a suggestion", function()
    assert.are.equal(FIX .. "typo_hiden_units.config:254:7: unknown field 'hiden_units' in " ..
      "model_config.dbmtl.bottom_dnn (did you mean 'hidden_units'?)",
      err_of(config.load, FIX .. "typo_hiden_units.config"))
  end)

  it("gives a syntax error's position", function()
    assert.are.equal(FIX .. "syntax_error.config:264:33: expected ',' or ']', got \"64\"",
      err_of(config.load, FIX .. "syntax_error.config"))
  end)

  it("lists every unsupported field at once, by position", function()
    assert.are.equal(table.concat({
      FIX .. "unsupported.config:10:25: unsupported value true for 'train_config.optimizer_config[1].use_moving_average': " ..
        "only false is accepted (mtl keeps no moving average of the weights)",
      FIX .. "unsupported.config:13:3: unsupported field 'train_config.fine_tune_checkpoint': mtl does not restore TensorFlow checkpoints",
      FIX .. "unsupported.config:18:17: unsupported field 'eval_config.metrics_set[2].recall_at_topk': " ..
        "mtl's metrics are auc, gauc, logloss, calibration and max_f1",
      FIX .. "unsupported.config:36:65: 'clicks' is a SequenceFeature: mtl reads sequences through sequence_features " ..
        "(DIN attention), not through feature_names",
      FIX .. "unsupported.config:41:66: unsupported value \"L2_LOSS\" for 'model_config.mmoe.task_towers[2].loss_type': " ..
        "mtl's tasks are binary classification (CLASSIFICATION, or losses)",
    }, "\n"), err_of(config.load, FIX .. "unsupported.config"))
  end)

  it("checks field types, enum values, repeats and oneofs", function()
    assert.are.equal('t.config:6:14: \'train_config.num_steps\' expects a non-negative integer, got "100"',
      err_of(map, { train = [[
  optimizer_config { adam_optimizer { learning_rate { constant_learning_rate { learning_rate: 0.01 } } } }
  num_steps: "100"
]] }))
    assert.are.equal("t.config:6:14: 'train_config.num_steps' expects a non-negative integer, got 1.5",
      err_of(map, { train = [[
  optimizer_config { adam_optimizer { learning_rate { constant_learning_rate { learning_rate: 0.01 } } } }
  num_steps: 1.5
]] }))
    local data = pipeline():match("data_config {\n(.-)}\nfeature_config")
    assert.are.equal("t.config:12:15: 'data_config.input_type' expects one of CSVInput, CSVInputV2, CSVInputEx, " ..
      "OdpsInput, OdpsInputV2, OdpsInputV3, DataHubInput, RTPInput, RTPInputV2, OdpsRTPInput, OdpsRTPInputV2, " ..
      "TFRecordInput, BatchTFRecordInput, DummyInput, KafkaInput, HiveInput, HiveRTPInput, HiveParquetInput, " ..
      "CriteoInput, ParquetInput, ParquetInputV2, ParquetInputV3, got CSVInputt (did you mean 'CSVInput'?)",
      err_of(map, { data = data:gsub("CSVInput", "CSVInputt") }))
    assert.are.equal("t.config:11:3: 'data_config.batch_size' is set twice (first at line 10, column 3); it is not a repeated field",
      err_of(map, { data = data:gsub("batch_size: 64", "batch_size: 64\n  batch_size: 32") }))
    assert.are.equal("t.config:6:3: 'train_config.optimizer_config[1].adagrad_optimizer' and 'adam_optimizer' are both set, " ..
      "but only one of them may be (oneof optimizer)",
      err_of(map, { train = [[
  optimizer_config { adam_optimizer { learning_rate { constant_learning_rate { learning_rate: 0.01 } } }
  adagrad_optimizer { learning_rate { constant_learning_rate { learning_rate: 0.01 } } } }
  num_steps: 100
]] }))
    assert.are.equal("t.config:5:21: 'train_config.optimizer_config' is a message: write optimizer_config { ... }, got 3",
      err_of(map, { train = "  optimizer_config: 3\n  num_steps: 10\n" }))
  end)

  it("checks names across sections", function()
    local model = pipeline():match("model_config {\n(.-)}\n$")
    assert.are.equal("t.config:27:65: feature 'item' is not defined in feature_config (did you mean 'item_id'?)",
      err_of(map, { model = model:gsub('"item_id"%]', '"item"]') }))
    assert.are.equal("t.config:31:49: label_name 'click' is not in data_config.label_fields (did you mean 'clk'?)",
      err_of(map, { model = model:gsub('label_name: "clk"', 'label_name: "click"') }))
    assert.are.equal("t.config:22:27: input field 'user' is not in data_config.input_fields (did you mean 'user_id'?)\n" ..
      "t.config:27:54: feature 'user_id' is not defined in feature_config (did you mean 'user'?)",
      err_of(map, { features = [[
  features { input_names: "user" feature_type: IdFeature embedding_dim: 8 hash_bucket_size: 1000 }
  features { input_names: "item_id" feature_type: IdFeature embedding_dim: 8 num_buckets: 500 }
]] }))
    assert.are.equal("t.config:26:16: unsupported model_class \"DeepFM\": mtl reads the multi-task models DBMTL, ESMM, " ..
      "MMoE, MultiTaskModel, PLE, SimpleMultiTask",
      err_of(map, { model = '  model_class: "DeepFM"\n  deepfm { }\n' }))
  end)

  -- Found by fuzzing: a 1.2 MB feature name made the "did you mean" distance
  -- run for 15 s (a table of #name x #candidate cells per candidate). The
  -- distance is now computed only for words and candidates that could be a
  -- typo of each other; counted here as the cells the distance tables hold.
  it("reports a megabyte-long undefined name briefly, without a distance table per candidate", function()
    local util = require "mtl.config.util"
    local distance, cells = util.distance, 0
    util.distance = function(a, b)
      cells = cells + #a * #b
      return distance(a, b)
    end
    local model = pipeline():match("model_config {\n(.-)}\n$")
    local long = ("1:1,"):rep(250000)
    local ok, e = pcall(err_of, map, { model = model:gsub('"item_id"%]', '"' .. long .. '"]') })
    local long_cells = cells
    -- a long name next to a long candidate: the prefix suggestion, not a 10^8-cell distance
    cells = 0
    local short = long:sub(1, 10000)
    local ok2, s = pcall(util.suggest, short .. "x", { "user_id", short })
    util.distance = distance
    assert(ok, e)
    assert(ok2, s)
    -- the message shows the first 1,000 bytes of the name and its length
    assert.are.equal("t.config:27:65: feature '" .. long:sub(1, 1000) .. "... (1000000 bytes)' is not defined in feature_config", e)
    assert.are.equal(0, long_cells)
    assert.are.equal(short, s)
    assert.are.equal(0, cells)
    -- short words still get their typo suggestion
    assert.are.equal("item_id", util.suggest("itme_id", { "user_id", "item_id" }))
  end)

  it("needs num_steps or num_epochs, since EasyRec would train forever", function()
    assert.are.equal("t.config:8:1: data_config.num_epochs is 0 and train_config.num_steps is 0: EasyRec would train forever; set one of them",
      err_of(map, { train = [[
  optimizer_config { adam_optimizer { learning_rate { constant_learning_rate { learning_rate: 0.01 } } } }
]] }))
  end)

  it("rejects input fields read two ways", function()
    assert.are.equal("t.config:23:52: input field 'user_id' is read as string (an IdFeature, line 22) and as ids " ..
      "(a TagFeature); mtl reads a column one way",
      err_of(map, { features = [[
  features { input_names: "user_id" feature_type: IdFeature embedding_dim: 8 hash_bucket_size: 1000 }
  features { feature_name: "user_bag" input_names: "user_id" feature_type: TagFeature embedding_dim: 8 hash_bucket_size: 1000 }
  features { input_names: "item_id" feature_type: IdFeature embedding_dim: 8 num_buckets: 500 }
]] }))
  end)
end)

describe("EasyRec: DNN options and what the optimizer cannot apply", function()
  it("maps use_bn, activations and dropout_ratio; rejects what mtl lacks", function()
    local model = pipeline():match("model_config {\n(.-)}\n$")
    local cfg = map({ model = model:gsub("expert_dnn { hidden_units: %[32, 16%] }",
        'expert_dnn { hidden_units: [32, 16] use_bn: false activation: "dice" dropout_ratio: [0.1, 0.2] }')
      :gsub('label_name: "buy" dnn { hidden_units: %[8%] }', 'label_name: "buy" dnn { hidden_units: [8] activation: "tf.nn.leaky_relu" }') })
    assert.are.same({ hidden = { 32, 16 }, batch_norm = false, activation = "dice", dropout = { 0.1, 0.2 } }, cfg.model.expert)
    assert.are.same(D({ 8 }, { activation = "leaky_relu:0.2" }), cfg.model.tasks[2].tower)
    assert.are.same(D({ 8 }, { activation = "gelu_tanh" }), map({ model = model:gsub('label_name: "buy" dnn { hidden_units: %[8%] }',
      'label_name: "buy" dnn { hidden_units: [8] activation: "gelu" }') }).model.tasks[2].tower)
    assert.are.equal("t.config:29:53: unsupported value \"tf.nn.crelu\" for 'model_config.mmoe.expert_dnn.activation': " ..
      "mtl's activations are EasyRec's dice, elu, gelu, leaky_relu, linear, prelu, relu, selu, sigmoid, swish, tanh, " ..
      "tf.math.sigmoid, tf.math.softplus, tf.math.softsign, tf.math.tanh, tf.nn.elu, tf.nn.gelu, tf.nn.leaky_relu, tf.nn.relu, " ..
      "tf.nn.relu6, tf.nn.selu, tf.nn.sigmoid, tf.nn.silu, tf.nn.softplus, tf.nn.softsign, tf.nn.swish, tf.nn.tanh, " ..
      "tf.sigmoid, tf.tanh\n" ..
      "t.config:29:83: 'model_config.mmoe.expert_dnn.dropout_ratio' has 1 entries for 2 hidden_units (EasyRec reads one per layer)",
      err_of(map, { model = model:gsub("expert_dnn { hidden_units: %[32, 16%] }",
        'expert_dnn { hidden_units: [32, 16] activation: "tf.nn.crelu" dropout_ratio: [0.5] }') }))
    assert.are.equal("t.config:33:5: unsupported field 'model_config.mmoe.l2_regularization': mtl's adamw has only its " ..
      "decoupled weight_decay; set l2_regularization: 0 or use adam_optimizer",
      err_of(map, { model = model:gsub("l2_regularization: 0", "l2_regularization: 1e-5"), train = [[
  optimizer_config { adamw_optimizer { learning_rate { constant_learning_rate { learning_rate: 0.01 } } } }
  num_steps: 100
]] }))
    assert.are.equal("t.config:6:39: unsupported value 0 for 'train_config.keep_checkpoint_max': mtl keeps the last N >= 1 checkpoints",
      err_of(map, { train = [[
  optimizer_config { adam_optimizer { learning_rate { constant_learning_rate { learning_rate: 0.01 } } } }
  num_steps: 100 keep_checkpoint_max: 0
]] }))
  end)
end)

describe("EasyRec: models", function()
  it("maps SimpleMultiTask to shared_bottom without shared layers", function()
    local cfg = map({ model = [[
  model_class: "SimpleMultiTask"
  feature_groups { group_name: "all" feature_names: ["user_id", "item_id"] }
  simple_multi_task {
    task_towers { tower_name: "ctr" label_name: "clk" dnn { hidden_units: [32, 16] } weight: 2.0 }
    task_towers { tower_name: "cvr" label_name: "buy" dnn { hidden_units: [16] } }
    l2_regularization: 1e-5
  }
]] })
    assert.are.same({ name = "shared_bottom", bottom = {}, tasks = {
      { name = "ctr", label = "clk", weight = 2, tower = D { 32, 16 } },
      { name = "cvr", label = "buy", weight = 1, tower = D { 16 } },
    } }, cfg.model)
    assert.are.equal(1e-5, cfg.optimizer.dense.weight_decay)
  end)

  it("maps task-space indicators to masks, and equal weights to no mask", function()
    local cfg = map({ model = [[
  model_class: "SimpleMultiTask"
  feature_groups { group_name: "all" feature_names: ["user_id", "item_id"] }
  simple_multi_task {
    task_towers { tower_name: "ctr" label_name: "clk" dnn { hidden_units: [8] }
                  task_space_indicator_label: "buy" in_task_space_weight: 3 out_task_space_weight: 3 }
    task_towers { tower_name: "cvr" label_name: "buy" dnn { hidden_units: [8] } weight: 0.5
                  task_space_indicator_label: "clk" in_task_space_weight: 2.0 out_task_space_weight: 0.0 }
  }
]] })
    assert.are.same({ name = "ctr", label = "clk", weight = 3, tower = D { 8 } }, cfg.model.tasks[1])
    assert.are.same({ name = "cvr", label = "buy", weight = 1, tower = D { 8 }, mask = "clk" }, cfg.model.tasks[2])
    assert.are.equal("t.config:30:89: unsupported field 'model_config.simple_multi_task.task_towers[2].out_task_space_weight': " ..
      "mtl restricts a loss to its task space (out_task_space_weight: 0) or not at all; got in 1, out 0.5",
      err_of(map, { model = [[
  model_class: "SimpleMultiTask"
  feature_groups { group_name: "all" feature_names: ["user_id", "item_id"] }
  simple_multi_task {
    task_towers { tower_name: "ctr" label_name: "clk" dnn { hidden_units: [8] } }
    task_towers { tower_name: "cvr" label_name: "buy" task_space_indicator_label: "clk" out_task_space_weight: 0.5 }
  }
]] }))
  end)

  it("maps ESMM's towers (each with its DNN) and weights (as explicit losses)", function()
    local cfg = map({ model = [[
  model_class: "ESMM"
  feature_groups { group_name: "all" feature_names: ["user_id", "item_id"] }
  esmm {
    ctr_tower { tower_name: "ctr" label_name: "clk" dnn { hidden_units: [64, 32] } weight: 1.0 }
    cvr_tower { tower_name: "cvr" label_name: "buy" dnn { hidden_units: [64, 32] } weight: 2.0 }
    l2_regularization: 1e-6
  }
]] })
    assert.are.same({ name = "esmm", tower = D { 64, 32 }, ctr = { name = "ctr", label = "clk" },
      cvr = { name = "cvr", label = "buy" } }, cfg.model)
    assert.are.same({
      { name = "ctr", output = "ctr", label = "clk", on = "prob", weight = 1 },
      { name = "ctcvr", output = "ctcvr", label = { "clk", "buy" }, on = "prob", weight = 2 },
    }, cfg.losses)
    local v = config.validate(cfg)
    assert.are.equal("esmm", v.model.name)
    assert.are.same(D { 32 }, map({ model = [[
  model_class: "ESMM"
  feature_groups { group_name: "all" feature_names: ["user_id", "item_id"] }
  esmm {
    ctr_tower { tower_name: "ctr" label_name: "clk" dnn { hidden_units: [64, 32] } }
    cvr_tower { tower_name: "cvr" label_name: "buy" dnn { hidden_units: [32] } }
  }
]] }).model.cvr_tower)
  end)

  it("maps PLE's extraction networks", function()
    local cfg = map({ model = [[
  model_class: "PLE"
  feature_groups { group_name: "all" feature_names: ["user_id", "item_id"] }
  ple {
    extraction_networks { network_name: "layer1" expert_num_per_task: 3 share_num: 2
      task_expert_net { hidden_units: [64, 32] } share_expert_net { hidden_units: [64, 32] } }
    extraction_networks { network_name: "layer2" expert_num_per_task: 3 share_num: 2
      task_expert_net { hidden_units: [16] } share_expert_net { hidden_units: [16] } }
    task_towers { tower_name: "ctr" label_name: "clk" dnn { hidden_units: [8] } }
    task_towers { tower_name: "cvr" label_name: "buy" dnn { hidden_units: [8] } }
  }
]] })
    assert.are.same({ name = "ple", levels = 2, specific = 3, shared = 2, expert = { D { 64, 32 }, D { 16 } }, tasks = {
      { name = "ctr", label = "clk", weight = 1, tower = D { 8 } },
      { name = "cvr", label = "buy", weight = 1, tower = D { 8 } },
    } }, cfg.model)
    assert.are.equal(1e-4, cfg.optimizer.dense.weight_decay) -- PLE's default l2_regularization
    assert.are.equal(2, config.validate(cfg).model.levels)
  end)

  it("maps DBMTL's optional MMoE bottom", function()
    local cfg = map({ model = [[
  model_class: "DBMTL"
  feature_groups { group_name: "all" feature_names: ["user_id", "item_id"] }
  dbmtl {
    expert_dnn { hidden_units: [32] }
    num_expert: 3
    task_towers { tower_name: "ctr" label_name: "clk" dnn { hidden_units: [16] } }
    task_towers { tower_name: "cvr" label_name: "buy" dnn { hidden_units: [16] } relation_tower_names: "ctr"
                  relation_dnn { hidden_units: [8] } }
  }
]] })
    assert.are.same({ name = "dbmtl", bottom = false, mmoe = { experts = 3, expert = D { 32 } }, tasks = {
      { name = "ctr", label = "clk", weight = 1, tower = D { 16 } },
      { name = "cvr", label = "buy", weight = 1, tower = D { 16 }, relations = { "ctr" }, relation = D { 8 } },
    } }, cfg.model)
    assert.is_false(config.validate(cfg).model.bottom)
  end)
end)

describe("EasyRec: features and data", function()
  it("maps raw, bucketized, tag (kv), combo, lookup, vocabulary and shared features", function()
    local cfg = map({
      data = [[
  batch_size: 64
  label_fields: ["clk", "buy"]
  input_type: CSVInput
  separator: "\t"
  with_header: true
  shuffle: false
  num_epochs: 2
  sample_weight: "w"
  input_fields { input_name: "clk" input_type: INT32 }
  input_fields { input_name: "buy" input_type: INT32 }
  input_fields { input_name: "user_id" input_type: STRING }
  input_fields { input_name: "item_id" input_type: INT64 }
  input_fields { input_name: "trigger_id" input_type: INT64 }
  input_fields { input_name: "tags" input_type: STRING }
  input_fields { input_name: "price" input_type: DOUBLE default_val: "1.5" }
  input_fields { input_name: "stats" input_type: STRING }
  input_fields { input_name: "cate" input_type: STRING }
  input_fields { input_name: "w" input_type: FLOAT }
]],
      features = [[
  features { input_names: "user_id" feature_type: IdFeature embedding_dim: 8 vocab_list: ["a", "b"] }
  features { input_names: "item_id" feature_type: IdFeature embedding_dim: 8 num_buckets: 500 embedding_name: "items" }
  features { input_names: "trigger_id" feature_type: IdFeature embedding_dim: 8 num_buckets: 500 embedding_name: "items" }
  features { input_names: "tags" feature_type: TagFeature embedding_dim: 4 hash_bucket_size: 100 kv_separator: ":"
             separator: ";" combiner: "sum" }
  features { feature_name: "price_bin" input_names: "price" feature_type: RawFeature embedding_dim: 4 boundaries: [1, 10, 100] }
  features { feature_name: "price_log" input_names: "price" feature_type: RawFeature normalizer_fn: "tf.math.log1p" }
  features { feature_name: "user_x_cate" input_names: ["user_id", "cate"] feature_type: ComboFeature embedding_dim: 4
             hash_bucket_size: 1000 }
  features { feature_name: "cate_ctr" input_names: ["stats", "cate"] feature_type: LookupFeature }
]],
      model = [[
  model_class: "SimpleMultiTask"
  feature_groups { group_name: "all" feature_names: ["user_id", "item_id", "trigger_id", "tags", "price_bin",
                                                     "price_log", "user_x_cate", "cate_ctr"] }
  simple_multi_task {
    task_towers { tower_name: "ctr" label_name: "clk" dnn { hidden_units: [8] } }
    task_towers { tower_name: "cvr" label_name: "buy" dnn { hidden_units: [8] } use_sample_weight: false }
  }
]],
    })
    assert.are.same({
      { name = "user_id", type = "id", column = "user_id", vocab = { "a", "b" }, dim = 8 },
      { name = "item_id", type = "id", column = "item_id", num_buckets = 500, dim = 8 },
      { name = "trigger_id", type = "id", column = "trigger_id", dim = 8, shared = "item_id" },
      { name = "tags", type = "tag", column = "tags", hash_bucket_size = 100, dim = 4, combiner = "sum" },
      { name = "price_bin", type = "raw", column = "price", boundaries = { 1, 10, 100 }, dim = 4 },
      { name = "price_log", type = "raw", column = "price", normalize = "log1p" },
      { name = "user_x_cate", type = "combo", columns = { "user_id", "cate" }, hash_bucket_size = 1000, dim = 4 },
      { name = "cate_ctr", type = "lookup", column = "stats", key = "cate" },
    }, cfg.features)
    assert.are.same({
      { name = "clk", type = "int", default = 0 }, { name = "buy", type = "int", default = 0 },
      { name = "user_id", type = "string", default = "" }, { name = "item_id", type = "int", default = 0 },
      { name = "trigger_id", type = "int", default = 0 },
      { name = "tags", type = "kv", separator = ";", kv_separator = ":", values = "string", default = "" },
      { name = "price", type = "float", default = 1.5 },
      { name = "stats", type = "kv", separator = "|", kv_separator = ":", values = "string", default = "" },
      { name = "cate", type = "string", default = "" }, { name = "w", type = "float", default = 0 },
    }, cfg.data.columns)
    assert.are.equal("\t", cfg.data.separator)
    assert.is_true(cfg.data.header)
    assert.are.equal(0, cfg.data.shuffle_buffer)
    assert.are.equal(2, cfg.data.epochs)
    assert.are.equal(2, cfg.train.epochs)
    assert.are.equal("w", cfg.model.tasks[1].sample_weight)
    assert.is_nil(cfg.model.tasks[2].sample_weight)
    local v = config.validate(cfg)
    assert.are.equal(8, #v.features)
  end)

  it("expands auto_expand_input_fields", function()
    local cfg = map({ data = [[
  label_fields: ["clk", "buy"]
  input_type: CSVInput
  auto_expand_input_fields: true
  input_fields { input_name: "clk" input_type: INT32 }
  input_fields { input_name: "buy" input_type: INT32 }
  input_fields { input_name: "user_id" input_type: STRING }
  input_fields { input_name: "item_id" input_type: INT64 }
  input_fields { input_name: "d[1-3]" input_type: FLOAT }
]] })
    local names = {}
    for i, c in ipairs(cfg.data.columns) do names[i] = c.name end
    assert.are.same({ "clk", "buy", "user_id", "item_id", "d1", "d2", "d3" }, names)
    assert.are.equal(32, cfg.data.batch_size) -- EasyRec's default batch size
  end)
end)

describe("EasyRec: optimizers and schedules", function()
  local function with_optimizer(text)
    return map({ train = "  optimizer_config {\n" .. text .. "\n  }\n  num_steps: 1000\n  gradient_clipping_by_norm: 5.0\n" ..
      "  keep_checkpoint_max: 3\n  save_checkpoints_steps: 50\n  log_step_count_steps: 20\n  intra_op_parallelism_threads: 4\n" })
  end

  it("maps train_config's steps, checkpoints, logging, threads and clipping", function()
    local cfg = with_optimizer("adam_optimizer { learning_rate { constant_learning_rate { learning_rate: 0.01 } } }")
    assert.are.same({ steps = 1000, epochs = math.huge, checkpoint_every = 50, keep_checkpoints = 3, log_every = 20, threads = 4 },
      cfg.train)
    assert.are.equal(5, cfg.optimizer.clip_norm)
    assert.are.same({ name = "constant" }, cfg.optimizer.schedule)
  end)

  it("maps each optimizer kind", function()
    local function dense(text) return with_optimizer(text).optimizer.dense end
    local lr = "learning_rate { constant_learning_rate { learning_rate: 0.5 } }"
    assert.are.same({ name = "sgd", lr = 0.5, momentum = 0.5 }, dense("momentum_optimizer { " .. lr .. " momentum_optimizer_value: 0.5 }"))
    assert.are.same({ name = "adagrad", lr = 0.5, initial_accumulator = 0.1 }, dense("adagrad_optimizer { " .. lr .. " }"))
    assert.are.same({ name = "ftrl", lr = 0.5, lr_power = -0.5, initial_accumulator = 0.25, l1 = 0.5, l2 = 0 },
      dense("ftrl_optimizer { " .. lr .. " initial_accumulator_value: 0.25 l1_reg: 0.5 }"))
    assert.are.same({ name = "rmsprop", lr = 0.5, alpha = 0.5, momentum = 0, eps = 1 },
      dense("rms_prop_optimizer { " .. lr .. " decay: 0.5 momentum_optimizer_value: 0 }"))
    assert.are.same({ name = "adam", lr = 0.5, beta1 = 0.5, beta2 = 0.999 }, dense("lazy_adam_optimizer { " .. lr .. " beta1: 0.5 }"))
    -- TF's AdamW subtracts wd * w per step, mtl's adamw lr * wd * w
    assert.are.same({ name = "adamw", lr = 0.5, beta1 = 0.5, beta2 = 0.5, weight_decay = 2e-6 },
      dense("adamw_optimizer { " .. lr .. " weight_decay: 1e-6 beta1: 0.5 beta2: 0.5 }"))
  end)

  it("gives embeddings their own learning rate", function()
    local cfg = with_optimizer("adam_optimizer { learning_rate { constant_learning_rate { learning_rate: 0.5 } } }\n" ..
      "embedding_learning_rate_multiplier: 4")
    assert.are.equal(0.5, cfg.optimizer.dense.lr)
    assert.are.equal(2, cfg.optimizer.sparse.lr)
  end)

  it("maps every learning rate schedule", function()
    local function sched(text)
      local cfg = with_optimizer("adam_optimizer { learning_rate { " .. text .. " } }")
      return cfg.optimizer.schedule, cfg.optimizer.dense.lr
    end
    local s, lr = sched("exponential_decay_learning_rate { initial_learning_rate: 0.1 decay_steps: 10 decay_factor: 0.9 staircase: false }")
    assert.are.same({ name = "exponential_decay", decay_steps = 10, decay_factor = 0.9, staircase = false, min_lr = 0 }, s)
    assert.are.equal(0.1, lr)
    s, lr = sched("manual_step_learning_rate { initial_learning_rate: 0.1 schedule { step: 100 learning_rate: 0.01 } " ..
      "schedule { step: 200 learning_rate: 0.001 } }")
    assert.are.same({ name = "manual", boundaries = { 100, 200 }, values = { 0.1, 0.01, 0.001 } }, s)
    s, lr = sched("manual_step_learning_rate { initial_learning_rate: 0.0 schedule { step: 100 learning_rate: 0.01 } warmup: true }")
    assert.are.same({ name = "linear_warmup", warmup_steps = 100, start_lr = 0 }, s)
    assert.are.equal(0.01, lr)
    s, lr = sched("cosine_decay_learning_rate { learning_rate_base: 0.1 total_steps: 1000 warmup_steps: 100 warmup_learning_rate: 0.01 }")
    assert.are.same({ name = "cosine", total_steps = 1000, warmup_steps = 100, start_lr = 0.01, min_lr = 0 }, s)
    assert.are.equal(0.1, lr)
    s, lr = sched("poly_decay_learning_rate { learning_rate_base: 0.1 total_steps: 500 power: 2 end_learning_rate: 0.001 }")
    assert.are.same({ name = "polynomial", decay_steps = 500, power = 2, end_lr = 0.001 }, s)
    assert.are.equal(0.1, lr)
  end)

  it("reports what the schedules and optimizers cannot express", function()
    assert.are.equal("t.config:7:29: unsupported field 'train_config.optimizer_config[1].adam_optimizer.learning_rate." ..
      "exponential_decay_learning_rate.burnin_steps': mtl's exponential decay has no burn-in",
      err_of(with_optimizer, "adam_optimizer { learning_rate { exponential_decay_learning_rate {\n" ..
        "                            burnin_steps: 10 } } }"))
    assert.are.equal("t.config:6:1: unsupported field 'train_config.optimizer_config[1].momentumw_optimizer': " ..
      "mtl's sgd has L2 weight decay, not MomentumW's decoupled decay",
      err_of(with_optimizer, "momentumw_optimizer { learning_rate { constant_learning_rate { learning_rate: 0.5 } } }"))
    assert.are.equal("t.config:7:3: unsupported field 'train_config.optimizer_config' given twice: mtl's EasyRec reader " ..
      "takes one optimizer (embeddings use it too, with embedding_learning_rate_multiplier)",
      err_of(map, { train = [[
  optimizer_config { adam_optimizer { learning_rate { constant_learning_rate { learning_rate: 0.01 } } } }
  num_steps: 10
  optimizer_config { adagrad_optimizer { learning_rate { constant_learning_rate { learning_rate: 0.01 } } } }
]] }))
  end)
end)

describe("EasyRec: metrics and no-ops", function()
  it("maps auc and gauc (from eval_config and the towers)", function()
    local cfg = map({ eval = [[
eval_config {
  metrics_set { auc {} }
  metrics_set { gauc { uid_field: "user_id" reduction: "mean_by_positive_num" } }
  eval_interval_secs: 600
}
]] })
    assert.are.same({ metrics = { "auc", "gauc" }, gauc = { group = "user_id", reduction = "mean_by_positive_num" } }, cfg.eval)
    local v = config.validate(cfg)
    assert.are.same({ "auc", "gauc" }, v.eval.metrics)
  end)

  it("accepts the listed no-ops and names each with its reason", function()
    for key, entry in pairs(easyrec.NOOPS) do
      assert.is_string(entry.why, key)
      local msg_name, field = key:match("^(%w+)%.([%w_]+)$")
      assert.is_truthy(easyrec.SCHEMA[msg_name] and easyrec.SCHEMA[msg_name].fields[field], key)
    end
    for key, why in pairs(easyrec.UNSUPPORTED) do
      local msg_name, field = key:match("^(%w+)%.([%w_]+)$")
      assert.is_truthy(easyrec.SCHEMA[msg_name] and easyrec.SCHEMA[msg_name].fields[field], key)
      assert.is_string(why)
    end
    local cfg = map({ train = [[
  optimizer_config { adam_optimizer { learning_rate { constant_learning_rate { learning_rate: 0.01 } } }
                     use_moving_average: false moving_average_decay: 0.99 }
  num_steps: 100
  sync_replicas: true
  save_summary_steps: 10
  train_distribute: NoStrategy
]] })
    assert.are.equal(100, cfg.train.steps)
    assert.is_nil(cfg.train.table_placement)
  end)

  it("maps every train_distribute strategy to a table placement, one process with a note", function()
    local strategies = easyrec.SCHEMA.TrainConfig.fields.train_distribute.values
    assert.are.equal(9, #strategies)
    for _, strategy in ipairs(strategies) do
      local cfg, notes = map { train = [[
  optimizer_config { adam_optimizer { learning_rate { constant_learning_rate { learning_rate: 0.01 } } } }
  num_steps: 100
  train_distribute: ]] .. strategy .. "\n" }
      local want = ({ NoStrategy = "nil", PSStrategy = "auto", EmbeddingParallelStrategy = "auto", SokStrategy = "auto" })[strategy]
        or "replicated"
      assert.are.equal(want, tostring(cfg.train.table_placement), strategy)
      assert.are.same(strategy == "NoStrategy" and {} or
        { "train_distribute " .. strategy .. " runs as one process (under mpirun: data-parallel over the ranks)" }, notes)
    end
  end)

  it("under mpirun, notes the data-parallel training on the ranks #slow", function()
    local mpirun = require "dist.mpirun"
    local text = pipeline { train = "  num_steps: 10\n  train_distribute: HorovodStrategy\n" .. [[
  optimizer_config { adam_optimizer { learning_rate { constant_learning_rate { learning_rate: 0.01 } } } }
]] }
    local dir = require("helpers.shell").tmpdir()
    local path = require("helpers.shell").write(dir .. "/t.config", text)
    local status, stdout, stderr = mpirun.run(2, string.format([[-e 'local cfg, notes = require("mtl.config.easyrec").load("%s")
      print("r" .. require("mtl").dist.rank() .. " " .. cfg.train.table_placement .. " " .. notes[1])']], path))
    require("helpers.shell").rm_rf(dir)
    assert(status == 0, string.format("status %s\n%s\n%s", tostring(status), stdout, stderr))
    for r = 0, 1 do
      assert.truthy(stdout:find("r" .. r .. ' replicated train_distribute HorovodStrategy: data-parallel training on 2 ranks, ' ..
        'train.table_placement = "replicated"', 1, true), stdout)
    end
  end)
end)
