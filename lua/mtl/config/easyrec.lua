-- mtl.config.easyrec: EasyRec pipeline.config files mapped onto the mtl config
-- structure (docs/config.md has the full mapping table).
--
--   local easyrec = require "mtl.config.easyrec"
--   local cfg, notes = easyrec.load("mmoe_on_taobao.config")
--
-- Three stages:
--   1. protobuf_text parses the file into nodes with line:column;
--   2. decode checks every node against the EasyRec schema below (field names,
--      types, enum values, oneofs, repeated vs singular); unknown fields are
--      errors with a suggestion, as protobuf itself would reject them;
--   3. map builds the mtl table. Every field the file sets is either mapped,
--      listed in NOOPS (accepted and ignored, with the reason it is harmless),
--      or reported as unsupported with its file:line:column. A field set in
--      the file that none of these handle is reported too, so nothing is ever
--      silently ignored.
-- All problems are collected and raised together, one per line, sorted by
-- position. The file is only read, never executed.
local pt = require "mtl.config.protobuf_text"
local util = require "mtl.config.util"

local easyrec = {}

-- ==== the EasyRec schema (the subset of easy_rec/python/protos mtl reads) ====================
local function str(default) return { kind = "string", default = default } end
local function u32(default) return { kind = "uint", default = default } end
local function i32(default) return { kind = "int", default = default } end
local function flt(default) return { kind = "float", default = default } end
local function bool(default) return { kind = "bool", default = default } end
local function enum(values, default) return { kind = "enum", values = values, default = default } end
local function msg(name) return { kind = "message", msg = name } end
local function opaque() return { kind = "message" } end -- contents not checked (the field is rejected or a no-op)
local function rep(spec) spec.rep = true; return spec end

local LOSS_TYPES = { "CLASSIFICATION", "L2_LOSS", "SIGMOID_L2_LOSS", "CROSS_ENTROPY_LOSS", "SOFTMAX_CROSS_ENTROPY",
  "CIRCLE_LOSS", "MULTI_SIMILARITY_LOSS", "SOFTMAX_CROSS_ENTROPY_WITH_NEGATIVE_MINING", "PAIR_WISE_LOSS",
  "F1_REWEIGHTED_LOSS", "BINARY_FOCAL_LOSS", "PAIRWISE_FOCAL_LOSS", "PAIRWISE_LOGISTIC_LOSS", "JRC_LOSS",
  "PAIRWISE_HINGE_LOSS", "LISTWISE_RANK_LOSS", "LISTWISE_DISTILL_LOSS", "ZILN_LOSS" }
local FIELD_TYPES = { "INT32", "INT64", "STRING", "FLOAT", "DOUBLE", "BOOL" }
local INPUT_TYPES = { "CSVInput", "CSVInputV2", "CSVInputEx", "OdpsInput", "OdpsInputV2", "OdpsInputV3",
  "DataHubInput", "RTPInput", "RTPInputV2", "OdpsRTPInput", "OdpsRTPInputV2", "TFRecordInput",
  "BatchTFRecordInput", "DummyInput", "KafkaInput", "HiveInput", "HiveRTPInput", "HiveParquetInput", "CriteoInput",
  "ParquetInput", "ParquetInputV2", "ParquetInputV3" }
local FEATURE_TYPES = { "IdFeature", "RawFeature", "TagFeature", "ComboFeature", "LookupFeature", "SequenceFeature",
  "ExprFeature" }

local function task_tower_fields(bayes)
  local f = {
    tower_name = str(), label_name = str(), metrics_set = rep(msg("EvalMetrics")),
    loss_type = enum(LOSS_TYPES, "CLASSIFICATION"), num_class = u32(1), dnn = msg("DNN"), weight = flt(1.0),
    task_space_indicator_label = str(), in_task_space_weight = flt(1.0), out_task_space_weight = flt(1.0),
    losses = rep(opaque()), use_sample_weight = bool(true),
  }
  if bayes then
    f.relation_tower_names = rep(str())
    f.relation_dnn = msg("DNN")
  end
  return f
end

local function lr_holder() return { learning_rate = msg("LearningRate") } end
local function with(t, extra)
  for k, v in pairs(extra) do t[k] = v end
  return t
end

-- SCHEMA[message] = {fields = {name = spec}, oneofs = {group = {field, ...}}}
local SCHEMA = {
  EasyRecConfig = { fields = {
    train_input_path = str(), kafka_train_input = opaque(), datahub_train_input = opaque(),
    eval_input_path = str(), kafka_eval_input = opaque(), datahub_eval_input = opaque(),
    model_dir = str(), train_config = msg("TrainConfig"), eval_config = msg("EvalConfig"),
    data_config = msg("DatasetConfig"), feature_configs = rep(msg("FeatureConfig")),
    feature_config = msg("FeatureConfigV2"), model_config = msg("EasyRecModel"), export_config = opaque(),
    fg_json_path = str(),
  }, oneofs = {
    train_path = { "train_input_path", "kafka_train_input", "datahub_train_input" },
    eval_path = { "eval_input_path", "kafka_eval_input", "datahub_eval_input" },
  } },
  TrainConfig = { fields = {
    optimizer_config = rep(msg("Optimizer")), gradient_clipping_by_norm = flt(0), num_steps = u32(0),
    fine_tune_checkpoint = str(""), fine_tune_ckpt_var_map = str(""), sync_replicas = bool(true),
    sparse_accumulator_type = str("multi_map"), startup_delay_steps = flt(15), save_checkpoints_steps = u32(1000),
    save_checkpoints_secs = u32(), keep_checkpoint_max = u32(10), save_summary_steps = u32(1000),
    log_step_count_steps = u32(10), is_profiling = bool(false), force_restore_shape_compatible = bool(false),
    train_distribute = enum({ "NoStrategy", "PSStrategy", "MirroredStrategy", "CollectiveAllReduceStrategy",
      "ExascaleStrategy", "MultiWorkerMirroredStrategy", "HorovodStrategy", "SokStrategy",
      "EmbeddingParallelStrategy" }, "NoStrategy"),
    num_gpus_per_worker = i32(1), summary_model_vars = bool(false), protocol = str(),
    inter_op_parallelism_threads = i32(0), intra_op_parallelism_threads = i32(0), tensor_fuse = bool(false),
    write_graph = bool(true), freeze_gradient = rep(str()), incr_save_config = opaque(),
  } },
  Optimizer = { fields = {
    rms_prop_optimizer = msg("RMSPropOptimizer"), momentum_optimizer = msg("MomentumOptimizer"),
    adam_optimizer = msg("AdamOptimizer"), momentumw_optimizer = msg("MomentumWOptimizer"),
    adamw_optimizer = msg("AdamWOptimizer"), adam_async_optimizer = msg("AdamOptimizer"),
    adagrad_optimizer = msg("AdagradOptimizer"), ftrl_optimizer = msg("FtrlOptimizer"),
    adam_asyncw_optimizer = msg("AdamWOptimizer"), lazy_adam_optimizer = msg("AdamOptimizer"),
    use_moving_average = bool(false), moving_average_decay = flt(0.9999),
    embedding_learning_rate_multiplier = flt(),
  }, oneofs = { optimizer = { "rms_prop_optimizer", "momentum_optimizer", "adam_optimizer", "momentumw_optimizer",
    "adamw_optimizer", "adam_async_optimizer", "adagrad_optimizer", "ftrl_optimizer", "adam_asyncw_optimizer",
    "lazy_adam_optimizer" } } },
  RMSPropOptimizer = { fields = with(lr_holder(), { momentum_optimizer_value = flt(0.9), decay = flt(0.9), epsilon = flt(1.0) }) },
  MomentumOptimizer = { fields = with(lr_holder(), { momentum_optimizer_value = flt(0.9) }) },
  AdamOptimizer = { fields = with(lr_holder(), { beta1 = flt(0.9), beta2 = flt(0.999) }) },
  MomentumWOptimizer = { fields = with(lr_holder(), { weight_decay = flt(1e-6), momentum_optimizer_value = flt(0.9) }) },
  AdamWOptimizer = { fields = with(lr_holder(), { weight_decay = flt(1e-6), beta1 = flt(0.9), beta2 = flt(0.999) }) },
  AdagradOptimizer = { fields = with(lr_holder(), { initial_accumulator_value = flt(0.1) }) },
  FtrlOptimizer = { fields = with(lr_holder(), { learning_rate_power = flt(-0.5), initial_accumulator_value = flt(0.1),
    l1_reg = flt(0), l2_reg = flt(0), l2_shrinkage_reg = flt(0) }) },
  LearningRate = { fields = {
    constant_learning_rate = msg("ConstantLearningRate"),
    exponential_decay_learning_rate = msg("ExponentialDecayLearningRate"),
    manual_step_learning_rate = msg("ManualStepLearningRate"), cosine_decay_learning_rate = msg("CosineDecayLearningRate"),
    poly_decay_learning_rate = msg("PolyDecayLearningRate"), transformer_learning_rate = opaque(),
  }, oneofs = { learning_rate = { "constant_learning_rate", "exponential_decay_learning_rate",
    "manual_step_learning_rate", "cosine_decay_learning_rate", "poly_decay_learning_rate",
    "transformer_learning_rate" } } },
  ConstantLearningRate = { fields = { learning_rate = flt(0.002) } },
  ExponentialDecayLearningRate = { fields = { initial_learning_rate = flt(0.002), decay_steps = u32(4000000),
    decay_factor = flt(0.95), staircase = bool(true), burnin_learning_rate = flt(0.0), burnin_steps = u32(0),
    min_learning_rate = flt(0.0) } },
  ManualStepLearningRate = { fields = { initial_learning_rate = flt(0.002),
    schedule = rep(msg("LearningRateSchedule")), warmup = bool(false) } },
  LearningRateSchedule = { fields = { step = u32(), learning_rate = flt(0.002) } },
  CosineDecayLearningRate = { fields = { learning_rate_base = flt(0.002), total_steps = u32(4000000),
    warmup_learning_rate = flt(0.0002), warmup_steps = u32(10000), hold_base_rate_steps = u32(0) } },
  PolyDecayLearningRate = { fields = { learning_rate_base = flt(), total_steps = u32(), power = flt(),
    end_learning_rate = flt(0) } },
  EvalConfig = { fields = { num_examples = u32(0), eval_interval_secs = u32(300), max_evals = u32(0),
    save_graph = bool(false), metrics_set = rep(msg("EvalMetrics")), eval_online = bool(false) } },
  EvalMetrics = { fields = {
    auc = msg("Empty"), recall_at_topk = msg("RecallAtTopK"), mean_absolute_error = msg("Empty"),
    mean_squared_error = msg("Empty"), accuracy = msg("Empty"), max_f1 = msg("Empty"),
    root_mean_squared_error = msg("Empty"), gauc = msg("GAUC"), session_auc = msg("SessionAUC"),
  }, oneofs = { metric = { "auc", "recall_at_topk", "mean_absolute_error", "mean_squared_error", "accuracy", "max_f1",
    "root_mean_squared_error", "gauc", "session_auc" } } },
  Empty = { fields = {} },
  RecallAtTopK = { fields = { topk = u32(5) } },
  GAUC = { fields = { uid_field = str(), reduction = str("mean") } },
  SessionAUC = { fields = { session_id_field = str(), reduction = str("mean") } },
  DatasetConfig = { fields = {
    batch_size = u32(32), auto_expand_input_fields = bool(false), label_fields = rep(str()),
    label_sep = rep(str()), label_dim = rep(u32()), shuffle = bool(true), shuffle_buffer_size = i32(32),
    num_epochs = u32(0), prefetch_size = u32(32), shard = bool(false), input_type = enum(INPUT_TYPES),
    separator = str(","), num_parallel_calls = u32(8), selected_cols = str(""), selected_col_types = str(""),
    input_fields = rep(msg("Field")), rtp_separator = str(";"), ignore_error = bool(false),
    pai_worker_queue = bool(false), pai_worker_slice_num = i32(100), chief_redundant = bool(false),
    sample_weight = str(), data_compression_type = str(""), n_data_batch_tfrecord = u32(),
    with_header = bool(false), negative_sampler = opaque(), negative_sampler_v2 = opaque(),
    hard_negative_sampler = opaque(), hard_negative_sampler_v2 = opaque(), eval_batch_size = u32(),
    drop_remainder = bool(false),
  }, oneofs = { sampler = { "negative_sampler", "negative_sampler_v2", "hard_negative_sampler",
    "hard_negative_sampler_v2" } } },
  Field = { fields = { input_name = str(), input_type = enum(FIELD_TYPES, "STRING"), default_val = str(),
    input_dim = u32(1), input_shape = u32(1) } },
  FeatureConfigV2 = { fields = { features = rep(msg("FeatureConfig")) } },
  FeatureConfig = { fields = {
    feature_name = str(), input_names = rep(str()), feature_type = enum(FEATURE_TYPES, "IdFeature"),
    embedding_name = str(""), embedding_dim = u32(0), hash_bucket_size = u32(0), num_buckets = u32(0),
    boundaries = rep(flt()), separator = str("|"), kv_separator = str(), seq_multi_sep = str(),
    max_seq_len = u32(), vocab_file = str(), vocab_list = rep(str()), shared_names = rep(str()),
    lookup_max_sel_elem_num = i32(10), max_partitions = i32(1), combiner = str("mean"), initializer = opaque(),
    precision = i32(-1), min_val = flt(0), max_val = flt(0), raw_input_dim = u32(1), sequence_combiner = opaque(),
    sub_feature_type = enum(FEATURE_TYPES, "IdFeature"), sequence_length = u32(1), expression = str(),
    use_embedding_variable = bool(false), normalizer_fn = str(),
  } },
  FeatureGroupConfig = { fields = { group_name = str(), feature_names = rep(str()),
    wide_deep = enum({ "DEEP", "WIDE", "WIDE_AND_DEEP" }, "DEEP"), sequence_features = rep(opaque()) } },
  EasyRecModel = { fields = {
    model_class = str(), model_name = str(), feature_groups = rep(msg("FeatureGroupConfig")),
    model_params = opaque(), dummy = opaque(), wide_and_deep = opaque(), deepfm = opaque(), multi_tower = opaque(),
    fm = opaque(), dcn = opaque(), autoint = opaque(), dlrm = opaque(), cmbf = opaque(), uniter = opaque(),
    multi_tower_recall = opaque(), dssm = opaque(), mind = opaque(), dropoutnet = opaque(),
    metric_learning = opaque(), pdn = opaque(), mmoe = msg("MMoE"), esmm = msg("ESMM"), dbmtl = msg("DBMTL"),
    simple_multi_task = msg("SimpleMultiTask"), ple = msg("PLE"), rocket_launching = opaque(),
    seq_att_groups = rep(opaque()), embedding_regularization = flt(0), loss_type = enum(LOSS_TYPES, "CLASSIFICATION"),
    num_class = u32(1), ev_params = opaque(), kd = rep(opaque()), restore_filters = rep(str()),
    variational_dropout = opaque(), losses = rep(opaque()),
    loss_weight_strategy = enum({ "Fixed", "Uncertainty", "Random" }, "Fixed"), backbone = opaque(),
  }, oneofs = { model = { "model_params", "dummy", "wide_and_deep", "deepfm", "multi_tower", "fm", "dcn", "autoint",
    "dlrm", "cmbf", "uniter", "multi_tower_recall", "dssm", "mind", "dropoutnet", "metric_learning", "pdn", "mmoe",
    "esmm", "dbmtl", "simple_multi_task", "ple", "rocket_launching" } } },
  DNN = { fields = { hidden_units = rep(u32()), dropout_ratio = rep(flt()), activation = str("tf.nn.relu"),
    use_bn = bool(true) } },
  TaskTower = { fields = task_tower_fields(false) },
  BayesTaskTower = { fields = task_tower_fields(true) },
  ExpertTower = { fields = { expert_name = str(), dnn = msg("DNN") } },
  Tower = { fields = { input = str(), dnn = msg("DNN") } },
  MMoE = { fields = { experts = rep(msg("ExpertTower")), expert_dnn = msg("DNN"), num_expert = u32(0),
    task_towers = rep(msg("TaskTower")), l2_regularization = flt(1e-4) } },
  ESMM = { fields = { groups = rep(msg("Tower")), ctr_tower = msg("TaskTower"), cvr_tower = msg("TaskTower"),
    l2_regularization = flt(1e-4) } },
  DBMTL = { fields = { bottom_cmbf = opaque(), bottom_uniter = opaque(), bottom_dnn = msg("DNN"),
    expert_dnn = msg("DNN"), num_expert = u32(0), task_towers = rep(msg("BayesTaskTower")),
    l2_regularization = flt(1e-4), use_feature_bn = bool(false), sequence_dnn = msg("DNN") } },
  SimpleMultiTask = { fields = { task_towers = rep(msg("TaskTower")), l2_regularization = flt(1e-4) } },
  PLE = { fields = { extraction_networks = rep(msg("ExtractionNetwork")), task_towers = rep(msg("TaskTower")),
    l2_regularization = flt(1e-4) } },
  ExtractionNetwork = { fields = { network_name = str(), expert_num_per_task = u32(), share_num = u32(),
    task_expert_net = msg("DNN"), share_expert_net = msg("DNN") } },
}
easyrec.SCHEMA = SCHEMA

-- ==== fields accepted as no-ops, and why each is harmless ======================================
-- Key: "Message.field". `only`: accepted only with this value (another value is
-- reported as unsupported, with the reason given).
local NOOPS = {
  ["TrainConfig.sync_replicas"] = { why = "synchronizes distributed TF workers; mtl trains in one process" },
  ["TrainConfig.sparse_accumulator_type"] = { why = "gradient accumulator of PAI-TF's sync replicas (distributed only)" },
  ["TrainConfig.startup_delay_steps"] = { why = "staggers the start of distributed TF workers" },
  ["TrainConfig.save_summary_steps"] = { why = "TensorBoard summaries; mtl writes metrics.jsonl every log_every steps" },
  ["TrainConfig.is_profiling"] = { why = "TF timeline profiling; it does not change training" },
  ["TrainConfig.train_distribute"] = { only = "NoStrategy", why = "TF's distribution strategy; NoStrategy is one process, as in mtl" },
  ["TrainConfig.num_gpus_per_worker"] = { why = "GPU count of a TF worker; mtl runs on the CPU" },
  ["TrainConfig.summary_model_vars"] = { why = "TensorBoard histograms of the variables" },
  ["TrainConfig.protocol"] = { why = "RPC protocol of distributed TF (grpc++, star_server)" },
  ["TrainConfig.inter_op_parallelism_threads"] = { why = "TF's inter-op thread pool; mtl runs ops one after another (intra_op_parallelism_threads maps to train.threads)" },
  ["TrainConfig.tensor_fuse"] = { why = "PAI-TF's communication fusion (distributed only)" },
  ["TrainConfig.write_graph"] = { why = "writes graph.pbtxt for TensorBoard" },
  ["TrainConfig.force_restore_shape_compatible"] = { only = false, why = "applies only to fine_tune_checkpoint, which mtl does not read" },
  ["Optimizer.use_moving_average"] = { only = false, why = "mtl keeps no moving average of the weights" },
  ["Optimizer.moving_average_decay"] = { why = "used only when use_moving_average is true, which mtl rejects" },
  ["ExponentialDecayLearningRate.burnin_learning_rate"] = { why = "used only during burnin_steps, which must be 0 for mtl" },
  ["DatasetConfig.prefetch_size"] = { why = "tf.data prefetch depth; mtl's reader parses ahead in C on its own" },
  ["DatasetConfig.num_parallel_calls"] = { why = "tf.data parsing parallelism; it does not change the batches" },
  ["DatasetConfig.shard"] = { why = "splits files between distributed workers; one process reads them all" },
  ["DatasetConfig.chief_redundant"] = { why = "distributed data assignment to the chief worker" },
  ["DatasetConfig.pai_worker_queue"] = { only = false, why = "PAI's global shuffle queue, for ODPS inputs only" },
  ["DatasetConfig.pai_worker_slice_num"] = { why = "used only with pai_worker_queue (ODPS inputs)" },
  ["DatasetConfig.rtp_separator"] = { why = "read only by RTPInput; mtl reads CSVInput" },
  ["DatasetConfig.data_compression_type"] = { why = "read only by TFRecord inputs; mtl reads CSVInput" },
  ["DatasetConfig.n_data_batch_tfrecord"] = { why = "read only by TFRecord inputs; mtl reads CSVInput" },
  ["FeatureConfig.max_partitions"] = { why = "partitions a TF variable over parameter servers; the table is the same" },
  ["FeatureConfig.lookup_max_sel_elem_num"] = { why = "bounds matches of a multi-valued lookup key; mtl's lookup key is single-valued" },
  ["EasyRecModel.model_name"] = { why = "a display name" },
  ["EasyRecModel.restore_filters"] = { why = "filters variables restored from fine_tune_checkpoint, which mtl does not read" },
  ["EvalConfig.eval_interval_secs"] = { why = "time between TF's evaluator runs; mtl evaluates every train.eval_every steps and at the end" },
  ["EvalConfig.max_evals"] = { why = "stops TF's continuous evaluator; mtl's evaluations end with training" },
  ["EvalConfig.save_graph"] = { why = "saves the eval graph for TensorBoard" },
  ["EasyRecConfig.export_config"] = { why = "options of TF's SavedModel export; `mtl export` writes its own model directory" },
  ["DNN.activation"] = { only = "tf.nn.relu", why = "mtl's towers, experts and bottoms use ReLU" },
  ["DNN.use_bn"] = { only = false, why = "mtl's towers, experts and bottoms have no batch normalization (ESMM's towers excepted)" },
}
easyrec.NOOPS = NOOPS

-- ==== fields mtl does not support, and why (reported when set) ===============================
local UNSUPPORTED = {
  ["EasyRecConfig.kafka_train_input"] = "mtl reads files (train_input_path), not Kafka",
  ["EasyRecConfig.datahub_train_input"] = "mtl reads files (train_input_path), not DataHub",
  ["EasyRecConfig.kafka_eval_input"] = "mtl reads files (eval_input_path), not Kafka",
  ["EasyRecConfig.datahub_eval_input"] = "mtl reads files (eval_input_path), not DataHub",
  ["EasyRecConfig.fg_json_path"] = "mtl has no feature generation (fg) step",
  ["TrainConfig.fine_tune_checkpoint"] = "mtl does not restore TensorFlow checkpoints",
  ["TrainConfig.fine_tune_ckpt_var_map"] = "mtl does not restore TensorFlow checkpoints",
  ["TrainConfig.save_checkpoints_secs"] = "mtl saves checkpoints by steps (save_checkpoints_steps)",
  ["TrainConfig.freeze_gradient"] = "mtl trains every parameter",
  ["TrainConfig.incr_save_config"] = "mtl has no incremental checkpoints",
  ["Optimizer.momentumw_optimizer"] = "mtl's sgd has L2 weight decay, not MomentumW's decoupled decay",
  ["LearningRate.transformer_learning_rate"] = "mtl has no transformer (noam) schedule",
  ["EvalConfig.eval_online"] = "mtl evaluates on eval_input_path only",
  ["EvalMetrics.recall_at_topk"] = "mtl's metrics are auc, gauc, logloss and calibration",
  ["EvalMetrics.mean_absolute_error"] = "mtl's metrics are auc, gauc, logloss and calibration",
  ["EvalMetrics.mean_squared_error"] = "mtl's metrics are auc, gauc, logloss and calibration",
  ["EvalMetrics.root_mean_squared_error"] = "mtl's metrics are auc, gauc, logloss and calibration",
  ["EvalMetrics.accuracy"] = "mtl's metrics are auc, gauc, logloss and calibration",
  ["EvalMetrics.max_f1"] = "mtl's metrics are auc, gauc, logloss and calibration",
  ["EvalMetrics.session_auc"] = "mtl's metrics are auc, gauc, logloss and calibration",
  ["DatasetConfig.label_sep"] = "multi-dimensional labels are not supported (one number per label)",
  ["DatasetConfig.label_dim"] = "multi-dimensional labels are not supported (one number per label)",
  ["DatasetConfig.selected_cols"] = "read only by ODPS and RTP inputs; mtl reads CSVInput",
  ["DatasetConfig.selected_col_types"] = "read only by ODPS inputs; mtl reads CSVInput",
  ["DatasetConfig.ignore_error"] = "mtl stops at a bad row and names it (file:line:column)",
  ["DatasetConfig.negative_sampler"] = "mtl has no negative sampling (a retrieval-model feature)",
  ["DatasetConfig.negative_sampler_v2"] = "mtl has no negative sampling (a retrieval-model feature)",
  ["DatasetConfig.hard_negative_sampler"] = "mtl has no negative sampling (a retrieval-model feature)",
  ["DatasetConfig.hard_negative_sampler_v2"] = "mtl has no negative sampling (a retrieval-model feature)",
  ["DatasetConfig.eval_batch_size"] = "mtl evaluates with data.batch_size",
  ["DatasetConfig.drop_remainder"] = "mtl trains on the last, smaller batch too",
  ["FeatureConfig.seq_multi_sep"] = "sequence features are not supported",
  ["FeatureConfig.max_seq_len"] = "sequence features are not supported",
  ["FeatureConfig.sequence_combiner"] = "sequence features are not supported",
  ["FeatureConfig.sub_feature_type"] = "sequence features are not supported",
  ["FeatureConfig.sequence_length"] = "sequence features are not supported",
  ["FeatureConfig.expression"] = "ExprFeature is not supported",
  ["FeatureConfig.shared_names"] = "give each shared feature its own entry with the same embedding_name",
  ["FeatureConfig.initializer"] = "mtl initializes embeddings uniformly in [-0.05, 0.05]",
  ["FeatureConfig.precision"] = "float columns are not converted to ids",
  ["FeatureConfig.use_embedding_variable"] = "the EasyRec reader maps ids to fixed or hashed tables",
  ["FeatureConfig.raw_input_dim"] = "raw features are one number each",
  ["FeatureGroupConfig.sequence_features"] = "sequence features are not supported",
  ["EasyRecModel.seq_att_groups"] = "sequence features are not supported",
  ["EasyRecModel.ev_params"] = "embedding variables are not supported",
  ["EasyRecModel.kd"] = "knowledge distillation is not supported",
  ["EasyRecModel.variational_dropout"] = "variational dropout is not supported",
  ["EasyRecModel.losses"] = "mtl's task losses are binary cross-entropy (per task tower)",
  ["EasyRecModel.backbone"] = "EasyRec's backbone models are not supported",
  ["TaskTower.losses"] = "mtl's task losses are binary cross-entropy",
  ["BayesTaskTower.losses"] = "mtl's task losses are binary cross-entropy",
  ["DNN.dropout_ratio"] = "mtl's towers and experts have no dropout",
}
easyrec.UNSUPPORTED = UNSUPPORTED

-- Model classes (model_config.model_class) -> {field = the oneof field,
-- name = the mtl model, map = ..., unsupported = ...}: the `easyrec` table of
-- each model file (models/<name>.lua) that has one.
local function model_classes()
  local registry, out = require "mtl.models", {}
  for _, name in ipairs(registry.names()) do
    local ok, cls = pcall(registry.get, name)
    local spec = ok and rawget(cls, "easyrec")
    if spec then
      out[spec.class] = { field = spec.field, name = name, map = spec.map, unsupported = spec.unsupported or {},
                          maps_use_bn = spec.maps_use_bn }
    end
  end
  return out
end
easyrec.model_classes = model_classes

-- ==== decoding ======================================================================================
local Ctx = {}
Ctx.__index = Ctx

function Ctx:add(line, col, fmt, ...)
  local args, n = { ... }, select("#", ...)
  for i = 1, n do args[i] = util.clip(args[i]) end
  self.errs[#self.errs + 1] = { line = line or 1, col = col or 1, text = string.format(fmt, unpack(args, 1, n)) }
end

local Obj = {}
Obj.__index = Obj

local function new_ctx(file)
  return setmetatable({ file = file, errs = {}, objects = {}, notes = {} }, Ctx)
end

-- Converts a scalar token for a field spec; returns value or nil, message.
local function convert(spec, tok)
  local k = spec.kind
  if k == "string" then
    if tok.type ~= "string" then return nil, "a quoted string" end
    return tok.value
  elseif k == "int" or k == "uint" then
    local v = tok.value
    if tok.type ~= "number" or v ~= v or v == math.huge or v == -math.huge or v ~= math.floor(v)
      or (tok.text:find("[%.eE]") and not tok.text:lower():find("^%-?0x")) then
      return nil, k == "uint" and "a non-negative integer" or "an integer"
    end
    if k == "uint" and v < 0 then return nil, "a non-negative integer" end
    return v
  elseif k == "float" then
    if tok.type == "number" then return tok.value end
    if tok.type == "ident" then
      local l = tok.value:lower()
      if l == "inf" or l == "infinity" then return math.huge end
      if l == "nan" then return 0 / 0 end
    end
    return nil, "a number"
  elseif k == "bool" then
    if tok.type == "ident" then
      local m = ({ ["true"] = true, True = true, t = true, ["false"] = false, False = false, f = false })[tok.value]
      if m ~= nil then return m end
    elseif tok.type == "number" and (tok.value == 0 or tok.value == 1) and not tok.text:find("[%.eE]") then
      return tok.value == 1
    end
    return nil, "true or false"
  elseif k == "enum" then
    if tok.type == "ident" then
      for _, v in ipairs(spec.values) do if v == tok.value then return v end end
    end
    return nil, "one of " .. table.concat(spec.values, ", ")
  end
  error("easyrec: unknown field kind " .. tostring(k))
end

local function token_text(tok)
  if tok.type == "string" then return string.format("%q", tok.value) end
  return tok.text or tostring(tok.value)
end

-- Decodes a message node against SCHEMA[type]; returns an Obj.
local function decode(ctx, node, type_name, path)
  local schema = SCHEMA[type_name]
  local obj = setmetatable({ type = type_name, path = path, node = node, values = {}, nodes = {}, used = {},
                             bad = {}, ctx = ctx }, Obj)
  ctx.objects[#ctx.objects + 1] = obj
  local oneof_of = {}
  for group, names in pairs(schema.oneofs or {}) do
    for _, n in ipairs(names) do oneof_of[n] = group end
  end
  local oneof_seen = {}
  local names = util.sorted_keys(schema.fields)
  for _, child in ipairs(node.fields) do
    local spec = schema.fields[child.name]
    local fpath = path == "" and child.name or (path .. "." .. child.name)
    if not spec then
      ctx:add(child.line, child.col, "unknown field '%s' in %s%s", child.name, path == "" and "the top level" or path,
        util.did_you_mean(child.name, names))
    else
      local value, ok = nil, true
      local group = oneof_of[child.name]
      local prev = group and oneof_seen[group]
      if prev and prev.name ~= child.name then
        ctx:add(child.line, child.col, "'%s' and '%s' are both set, but only one of them may be (oneof %s)",
          fpath, prev.name, group)
        ok = false
      elseif group then
        oneof_seen[group] = child
      end
      if ok and not spec.rep and obj.nodes[child.name] then
        local first = obj.nodes[child.name]
        ctx:add(child.line, child.col, "'%s' is set twice (first at line %d, column %d); it is not a repeated field",
          fpath, first.line, first.col)
        ok = false
      end
      if not ok then -- skipped
      elseif spec.kind == "message" then
        if child.kind ~= "message" then
          ctx:add(child.vline, child.vcol, "'%s' is a message: write %s { ... }, got %s", fpath, child.name,
            token_text(child.value))
          ok = false
          obj.bad[child.name] = true
        elseif spec.msg then
          local index = spec.rep and ("[" .. ((obj.values[child.name] and #obj.values[child.name] or 0) + 1) .. "]") or ""
          value = decode(ctx, child, spec.msg, fpath .. index)
        else
          value = child -- opaque
        end
      else
        if child.kind ~= "scalar" then
          local what = ({ string = "a quoted string", uint = "a non-negative integer", int = "an integer",
                          float = "a number", bool = "true or false", enum = "an enum value" })[spec.kind]
          ctx:add(child.vline, child.vcol, "'%s' expects %s, got a message { ... }", fpath, what)
          obj.bad[child.name] = true
          ok = false
        else
          local why
          value, why = convert(spec, child.value)
          if value == nil then
            ok = false
            obj.bad[child.name] = true
            local extra = ""
            if spec.kind == "enum" and child.value.type == "ident" then extra = util.did_you_mean(child.value.value, spec.values) end
            ctx:add(child.value.line, child.value.col, "'%s' expects %s, got %s%s", fpath, why, token_text(child.value), extra)
          end
        end
      end
      if ok then
        if spec.rep then
          obj.values[child.name] = obj.values[child.name] or {}
          obj.nodes[child.name] = obj.nodes[child.name] or {}
          table.insert(obj.values[child.name], value)
          table.insert(obj.nodes[child.name], child)
        else
          obj.values[child.name] = value
          obj.nodes[child.name] = child
        end
        if child.in_list and not spec.rep then
          ctx:add(child.line, child.col, "'%s' is not a repeated field; [ ... ] gives it several values", fpath)
        end
      end
    end
  end
  return obj
end

-- ---- accessors ---------------------------------------------------------------------------------
-- get(name): the value, or the schema default (a list for repeated fields);
-- marks the field as handled.
function Obj:get(name)
  local spec = SCHEMA[self.type].fields[name]
  assert(spec, "easyrec: no field " .. name .. " in " .. self.type)
  self.used[name] = true
  local v = self.values[name]
  if v ~= nil then return v end
  if spec.rep then return {} end
  return spec.default
end

function Obj:has(name) return self.values[name] ~= nil end

-- line, col of a field (its i-th occurrence), or of the message itself.
function Obj:pos(name, i)
  local n = name and self.nodes[name]
  if n and n.name == nil then n = n[i or 1] end
  if n then return n.line, n.col end
  return self.node.line, self.node.col
end

-- line, col of a field's value.
function Obj:vpos(name, i)
  local n = name and self.nodes[name]
  if n and n.name == nil then n = n[i or 1] end
  if n then return n.vline, n.vcol end
  return self.node.vline or self.node.line, self.node.vcol or self.node.col
end

function Obj:field_path(name, i)
  local p = self.path == "" and name or (self.path .. "." .. name)
  if i and SCHEMA[self.type].fields[name].rep then p = p .. "[" .. i .. "]" end
  return p
end

-- An error at a field (or at the message when name is nil).
function Obj:err(name, fmt, ...)
  if name then self.used[name] = true end
  local line, col = self:pos(name)
  self.ctx:add(line, col, fmt, ...)
end

-- An error at a field's value.
function Obj:verr(name, i, fmt, ...)
  if name then self.used[name] = true end
  local line, col = self:vpos(name, i)
  self.ctx:add(line, col, fmt, ...)
end

-- Reports a set field as unsupported (reason: why).
function Obj:unsupported(name, why)
  self:mark(name)
  local line, col = self:pos(name)
  self.ctx:add(line, col, "unsupported field '%s': %s", self:field_path(name), why)
end

-- Reports a field's value as unsupported.
function Obj:unsupported_value(name, why)
  self:mark(name)
  local line, col = self:vpos(name)
  local v = self.values[name]
  self.ctx:add(line, col, "unsupported value %s for '%s': %s", util.show(v), self:field_path(name), why)
end

-- Marks a field's value(s) and everything inside them as handled (after an
-- error about the field itself, so its contents are not reported again).
local function mark_all(obj)
  for name, v in pairs(obj.values) do
    obj.used[name] = true
    local list = (type(v) == "table" and getmetatable(v) ~= Obj and v.kind == nil) and v or { v }
    for _, x in ipairs(list) do
      if getmetatable(x) == Obj then mark_all(x) end
    end
  end
end
easyrec.mark_all = mark_all

function Obj:mark(name)
  self.used[name] = true
  local v = self.values[name]
  local list = (type(v) == "table" and getmetatable(v) ~= Obj and v.kind == nil) and v or { v }
  for _, x in ipairs(list) do
    if getmetatable(x) == Obj then mark_all(x) end
  end
end

function Ctx:note(fmt, ...) self.notes[#self.notes + 1] = string.format(fmt, ...) end

-- ==== mapping ======================================================================================
local function same_list(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

local function copy_list(t)
  local out = {}
  for i, v in ipairs(t) do out[i] = v end
  return out
end

-- The hidden sizes of a DNN message ({} without one). use_bn, dropout_ratio
-- and activation are left to NOOPS/UNSUPPORTED (ESMM reads use_bn itself).
local function dnn_sizes(dnn)
  if not dnn then return {} end
  local sizes = copy_list(dnn:get("hidden_units"))
  for i, h in ipairs(sizes) do
    if h < 1 then dnn:verr("hidden_units", i, "'%s' must be positive, got %s", dnn:field_path("hidden_units", i), util.show(h)) end
  end
  if dnn.values.activation == "relu" then dnn.used.activation = true end -- tf.nn.relu under its short name
  return sizes
end

-- ---- data -----------------------------------------------------------------------------------------
local EASYREC_TYPE = { INT32 = "int", INT64 = "int", FLOAT = "float", DOUBLE = "float", STRING = "string", BOOL = "string" }

-- "f[1-3]" -> f1, f2, f3 (auto_expand_input_fields)
local function expand_name(name)
  local pre, a, b, post = name:match("^(.-)%[(%d+)%-(%d+)%](.*)$")
  if not pre then return { name } end
  local out = {}
  for i = tonumber(a), tonumber(b) do out[#out + 1] = pre .. i .. post end
  return out
end

local function map_data(ctx, root, cfg, st)
  local dc = root.values.data_config
  root.used.data_config = true
  if not dc then
    ctx:add(1, 1, "data_config is missing (mtl needs input_fields, label_fields and input_type: CSVInput)")
    return
  end
  local data = cfg.data
  if not dc:has("input_type") then
    if not dc.bad.input_type then dc:err(nil, "data_config.input_type is required (mtl reads CSVInput)") end
  else
    local it = dc:get("input_type")
    if it ~= "CSVInput" then dc:unsupported_value("input_type", "mtl reads delimited text files (CSVInput)") end
  end
  local sep = dc:get("separator")
  if #sep ~= 1 then dc:unsupported_value("separator", "mtl's reader splits fields on one character") end
  data.separator = sep
  data.header = dc:get("with_header")
  data.batch_size = dc:get("batch_size")
  if data.batch_size < 1 then dc:verr("batch_size", nil, "'data_config.batch_size' must be positive, got 0") end
  local shuffle = dc:get("shuffle")
  local buffer = dc:get("shuffle_buffer_size")
  if shuffle and buffer < 0 then dc:verr("shuffle_buffer_size", nil, "'data_config.shuffle_buffer_size' must be >= 0, got %d", buffer) end
  data.shuffle_buffer = shuffle and math.max(buffer, 0) or 0
  local epochs = dc:get("num_epochs")
  st.num_epochs, st.epochs_obj = epochs, dc
  -- columns, in file order
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
  -- labels
  data.labels = {}
  for i, l in ipairs(dc:get("label_fields")) do
    local col = st.columns[l]
    if not col then
      dc:verr("label_fields", i, "label field '%s' is not in data_config.input_fields%s", l, util.did_you_mean(l, st.columns))
    else
      if col.etype == "STRING" or col.etype == "BOOL" then
        dc:verr("label_fields", i, "label field '%s' has input_type %s; mtl's labels are numbers (0/1)", l, col.etype)
      end
      col.label = true
      data.labels[#data.labels + 1] = l
    end
  end
  if #data.labels == 0 then dc:err(nil, "data_config.label_fields is empty (the multi-task labels, e.g. clk and buy)") end
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

-- Records that feature obj reads column name as mtl column type t (with options).
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
local function map_features(ctx, root, st)
  local list = {}
  local v1 = root:get("feature_configs")
  local v2 = root.values.feature_config
  root.used.feature_config = true
  if #v1 > 0 and v2 then
    root:err("feature_config", "feature_configs and feature_config are both set; give the features in one of them")
  end
  if v2 then list = v2:get("features") else list = v1 end
  st.features, st.feature_list = {}, {}
  for _, fc in ipairs(list) do
    local inputs = fc:get("input_names")
    local name = fc:get("feature_name") or inputs[1]
    local ftype = fc:get("feature_type")
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
    local dim = fc:get("embedding_dim")
    local n_inputs = ftype == "ComboFeature" and ">= 2" or (ftype == "LookupFeature" and "2" or "1")
    if (n_inputs == "1" and #inputs ~= 1) or (n_inputs == "2" and #inputs ~= 2) or (n_inputs == ">= 2" and #inputs < 2) then
      local why = ftype == "TagFeature" and #inputs == 2 and " (a separate tag-weight field is not supported; use kv_separator)" or ""
      fc:err(#inputs > 0 and "input_names" or nil, "a %s reads %s input field%s, '%s' has %d%s", ftype, n_inputs,
        n_inputs == "1" and "" or "s", tostring(name), #inputs, why)
    end
    -- the table size: EasyRec's precedence is hash_bucket_size, vocab_list, vocab_file, num_buckets
    local function table_size(str_values)
      local given = {}
      for _, k in ipairs({ "hash_bucket_size", "vocab_list", "vocab_file", "num_buckets" }) do
        if fc:has(k) and not (k == "hash_bucket_size" and fc.values[k] == 0) and not (k == "num_buckets" and fc.values[k] == 0) then
          given[#given + 1] = k
        end
      end
      for _, k in ipairs({ "hash_bucket_size", "vocab_list", "vocab_file", "num_buckets" }) do fc.used[k] = true end
      if #given > 1 then
        fc:err(given[2], "'%s' sets %s; EasyRec would use %s only, so give one", fc.path, table.concat(given, " and "), given[1])
      end
      local k = given[1]
      if k == "hash_bucket_size" then f.spec.hash_bucket_size = fc.values[k]; return "hash"
      elseif k == "vocab_list" then f.spec.vocab = copy_list(fc.values[k]); return "vocab"
      elseif k == "vocab_file" then f.spec.vocab_file = fc.values[k]; return "vocab"
      elseif k == "num_buckets" then f.spec.num_buckets = fc.values[k]; return "identity" end
      fc:err(nil, "%s '%s' needs hash_bucket_size, num_buckets, vocab_list or vocab_file", ftype, tostring(name))
      return nil
    end
    local function need_dim()
      if dim < 1 then fc:err(fc:has("embedding_dim") and "embedding_dim" or nil, "%s '%s' needs embedding_dim > 0", ftype, tostring(name)) end
      f.spec.dim = dim
    end
    local function no(field, why) if fc:has(field) then fc:unsupported(field, why) end end
    f.spec = { name = name }
    if ftype == "IdFeature" then
      f.spec.type = "id"
      f.spec.column = inputs[1]
      need_dim()
      local size = table_size()
      local multi = fc:has("separator") or fc:has("kv_separator")
      if fc:has("kv_separator") then fc:unsupported("kv_separator", "weighted ids are TagFeatures in mtl (TagFeature with kv_separator)") end
      if multi then
        f.spec.combiner = fc:get("combiner")
        use_column(st, fc, "input_names", 1, inputs[1] or "?", { type = "ids", separator = fc:get("separator"),
          strings = size ~= "identity", why = "a multi-valued IdFeature" })
      else
        if fc:has("combiner") then f.spec.combiner = fc:get("combiner") end
        use_column(st, fc, "input_names", 1, inputs[1] or "?", { type = size == "identity" and "int" or "key",
          why = size == "identity" and "an IdFeature with num_buckets (ids are rows)" or "an IdFeature" })
      end
    elseif ftype == "TagFeature" then
      f.spec.type = "tag"
      f.spec.column = inputs[1]
      need_dim()
      local size = table_size()
      f.spec.combiner = fc:get("combiner")
      local kv = fc:has("kv_separator")
      use_column(st, fc, "input_names", 1, inputs[1] or "?", { type = kv and "kv" or "ids", separator = fc:get("separator"),
        kv_separator = kv and fc:get("kv_separator") or nil, strings = size ~= "identity", why = "a TagFeature" })
    elseif ftype == "ComboFeature" then
      f.spec.type = "combo"
      f.spec.columns = copy_list(inputs)
      need_dim()
      if not fc:has("hash_bucket_size") or fc.values.hash_bucket_size == 0 then
        fc:err(nil, "ComboFeature '%s' needs hash_bucket_size", tostring(name))
      end
      f.spec.hash_bucket_size = fc:get("hash_bucket_size")
      for _, k in ipairs({ "vocab_list", "vocab_file", "num_buckets" }) do
        no(k, "a ComboFeature hashes the crossed values (hash_bucket_size)")
      end
      for i, c in ipairs(inputs) do
        use_column(st, fc, "input_names", i, c, { type = "key", why = "a ComboFeature input" })
      end
      no("separator", "mtl crosses single-valued columns")
    elseif ftype == "RawFeature" then
      f.spec.type = "raw"
      f.spec.column = inputs[1]
      local bounds = fc:get("boundaries")
      if #bounds > 0 then
        f.spec.boundaries = copy_list(bounds)
        for i = 2, #bounds do
          if not (bounds[i] > bounds[i - 1]) then
            fc:verr("boundaries", i, "'%s' must increase, got %s after %s", fc:field_path("boundaries"), util.show(bounds[i]), util.show(bounds[i - 1]))
            break
          end
        end
        need_dim()
      elseif dim > 0 then
        fc:unsupported("embedding_dim", "a RawFeature without boundaries is fed to the model as the number itself")
      end
      local nf = fc.values.normalizer_fn
      if nf ~= nil then
        fc.used.normalizer_fn = true
        if nf == "tf.math.log1p" or nf == "log1p" or nf == "tf.log1p" then
          if #bounds > 0 then fc:unsupported("normalizer_fn", "mtl bucketizes the raw value, not its log1p")
          else f.spec.normalize = "log1p" end
        else
          fc:unsupported_value("normalizer_fn", "mtl's raw normalizers are log1p (tf.math.log1p), zscore and minmax")
        end
      end
      local lo, hi = fc:get("min_val"), fc:get("max_val")
      if lo ~= 0 or hi ~= 0 then
        fc:unsupported(fc:has("max_val") and "max_val" or "min_val",
          "mtl's minmax normalization uses the minimum and maximum fitted on the training data")
        fc.used.min_val, fc.used.max_val = true, true
      end
      for _, k in ipairs({ "hash_bucket_size", "vocab_list", "vocab_file", "num_buckets" }) do
        no(k, "a RawFeature is a number, or bucketized by its boundaries")
      end
      no("separator", "a RawFeature is one number")
      use_column(st, fc, "input_names", 1, inputs[1] or "?", { type = "float", why = "a RawFeature" })
    elseif ftype == "LookupFeature" then
      f.spec.type = "lookup"
      f.spec.column = inputs[1]
      f.spec.key = inputs[2]
      if dim > 0 then fc:unsupported("embedding_dim", "mtl's lookup feature gives the looked-up number itself") end
      for _, k in ipairs({ "hash_bucket_size", "vocab_list", "vocab_file", "num_buckets", "boundaries" }) do
        no(k, "mtl's lookup feature gives the looked-up number itself")
      end
      local key_col = inputs[2] and st.columns[inputs[2]]
      local strings = not key_col or key_col.etype == "STRING" or key_col.etype == "BOOL"
      use_column(st, fc, "input_names", 1, inputs[1] or "?", { type = "kv", separator = fc:get("separator"),
        kv_separator = fc.values.kv_separator or ":", strings = strings, why = "a LookupFeature map" })
      fc.used.kv_separator = true
      if inputs[2] then use_column(st, fc, "input_names", 2, inputs[2], { type = "key", why = "a LookupFeature key" }) end
    else
      fc:unsupported_value("feature_type", ftype == "SequenceFeature" and "sequence features are not supported"
        or "expression features are not supported")
      mark_all(fc) -- its other fields need no second report
    end
    if fc:has("combiner") and ftype ~= "IdFeature" and ftype ~= "TagFeature" then
      fc:unsupported("combiner", "a combiner applies to multi-valued id and tag features")
    end
    if fc:has("combiner") and not ({ sum = true, mean = true, sqrtn = true })[fc.values.combiner] then
      fc:unsupported_value("combiner", "mtl's combiners are sum, mean and sqrtn")
    end
    if fc:has("embedding_name") and fc.values.embedding_name ~= "" then f.embedding_name = fc:get("embedding_name") end
    fc.used.embedding_name = true
    fc.used.embedding_dim = true
  end
end

-- Column types from what reads each column; conflicts are errors.
local NUMERIC = { INT32 = true, INT64 = true, FLOAT = true, DOUBLE = true }
local INTEGER = { INT32 = true, INT64 = true }

local function type_columns(ctx, st, data)
  data.columns = {}
  for _, col in ipairs(st.column_list) do
    local out = { name = col.name, type = EASYREC_TYPE[col.etype] or "string" }
    local chosen
    for _, role in ipairs(col.roles) do
      local want, values = role.type, nil
      local bad
      if want == "key" then
        if INTEGER[col.etype] then want = "int"
        elseif NUMERIC[col.etype] then bad = "an integer or string field" else want = "string" end
      elseif want == "int" then
        if NUMERIC[col.etype] and not INTEGER[col.etype] then bad = "integer ids" end
      elseif want == "ids" or want == "kv" then
        if role.strings and not NUMERIC[col.etype] then values = "string" end
      end
      if bad then
        role.obj:verr(role.field, role.index, "input field '%s' has input_type %s; %s needs %s", col.name, col.etype, role.why, bad)
      elseif chosen then
        local c = chosen
        if c.want ~= want or c.role.separator ~= role.separator or c.role.kv_separator ~= role.kv_separator or c.values ~= values then
          local line = c.role.obj:pos(c.role.field, c.role.index)
          role.obj:verr(role.field, role.index,
            "input field '%s' is read as %s (%s, line %d) and as %s (%s); mtl reads a column one way",
            col.name, c.want, c.role.why, line, want, role.why)
        end
      else
        chosen = { want = want, role = role, values = values }
        out.type = want
        if want == "ids" or want == "kv" then
          out.separator, out.kv_separator, out.values = role.separator, role.kv_separator, values
        end
      end
    end
    if col.label and out.type ~= "int" and out.type ~= "float" then
      col.field:verr("input_name", nil, "label field '%s' cannot also be read as %s", col.name, out.type)
    end
    -- defaults: default_val, else EasyRec's (0 for numbers, "" for strings and bags)
    local dv = col.default_val
    if out.type == "int" or out.type == "float" then
      if dv ~= nil and dv ~= "" then
        local n = tonumber(dv)
        if not n or (out.type == "int" and n ~= math.floor(n)) then
          col.field:verr("default_val", nil, "default_val %s of '%s' is not %s", util.show(dv), col.name,
            out.type == "int" and "an integer" or "a number")
        end
        out.default = n
      else
        out.default = 0
      end
    else
      out.default = dv or ""
    end
    col.field.used.default_val = true
    data.columns[#data.columns + 1] = out
  end
end

-- ---- model ------------------------------------------------------------------------------------------
local function map_metrics(ctx, st, list, where)
  for _, m in ipairs(list) do
    if m:has("auc") then m:get("auc"); st.metrics.auc = true
    elseif m:has("gauc") then
      local g = m:get("gauc")
      local uid = g:get("uid_field")
      local red = g:get("reduction")
      if not g:has("uid_field") then g:err(nil, "'%s' needs uid_field (the user id field)", g.path) end
      if not ({ mean = true, mean_by_sample_num = true, mean_by_positive_num = true })[red] then
        g:unsupported_value("reduction", "the reductions are mean, mean_by_sample_num and mean_by_positive_num")
      end
      if uid then
        if st.gauc and (st.gauc.group ~= uid or st.gauc.reduction ~= red) then
          g:err("uid_field", "a second gauc (uid_field '%s', reduction %s) differs from the first (uid_field '%s', reduction %s); mtl computes one gauc",
            uid, red, st.gauc.group, st.gauc.reduction)
        elseif not st.columns[uid] then
          g:verr("uid_field", nil, "uid_field '%s' is not in data_config.input_fields%s", uid, util.did_you_mean(uid, st.columns))
        else
          if not st.gauc then
            table.insert(st.columns[uid].roles, { type = "key", why = "the gauc uid_field", obj = g, field = "uid_field" })
          end
          st.gauc = { group = uid, reduction = red }
        end
      end
      st.metrics.gauc = true
    end
    -- other metrics are left unhandled: UNSUPPORTED reports them
  end
end

-- A task (tower) of any multi-task model -> an mtl task.
local function map_task(ctx, st, tower, i, label_fields, bayes)
  local t = {}
  if not tower:has("tower_name") then tower:err(nil, "'%s' needs a tower_name", tower.path) end
  t.name = tower:get("tower_name") or ("task" .. i)
  if tower:has("label_name") then
    t.label = tower:get("label_name")
    local known = false
    for _, l in ipairs(label_fields) do if l == t.label then known = true end end
    if not known then
      tower:verr("label_name", nil, "label_name '%s' is not in data_config.label_fields%s", t.label, util.did_you_mean(t.label, label_fields))
    end
  else
    t.label = label_fields[i]
    if not t.label then
      tower:err(nil, "'%s' has no label_name and data_config.label_fields has no field %d", tower.path, i)
    end
  end
  if tower:get("loss_type") ~= "CLASSIFICATION" then
    tower:unsupported_value("loss_type", "mtl's tasks are binary classification (CLASSIFICATION)")
  end
  if tower:get("num_class") ~= 1 then tower:unsupported_value("num_class", "mtl's tasks are binary (num_class: 1)") end
  t.tower = dnn_sizes(tower.values.dnn)
  tower.used.dnn = true
  local w = tower:get("weight")
  if w < 0 then tower:verr("weight", nil, "'%s' must be >= 0, got %s", tower:field_path("weight"), util.show(w)) end
  local indicator = tower.values.task_space_indicator_label
  local win, wout = tower:get("in_task_space_weight"), tower:get("out_task_space_weight")
  tower.used.task_space_indicator_label = true
  if indicator then
    local known = false
    for _, l in ipairs(label_fields) do if l == indicator then known = true end end
    if not known then
      tower:verr("task_space_indicator_label", nil, "task_space_indicator_label '%s' is not in data_config.label_fields%s",
        indicator, util.did_you_mean(indicator, label_fields))
    end
    if win == wout then
      w = w * win -- every row has the same weight: the indicator changes nothing
    elseif wout == 0 and win > 0 then
      t.mask = indicator -- the loss covers the task space, averaged over it
      w = w * win
    else
      tower:unsupported(tower:has("out_task_space_weight") and "out_task_space_weight" or "in_task_space_weight",
        string.format("mtl restricts a loss to its task space (out_task_space_weight: 0) or not at all; got in %s, out %s",
          util.show(win), util.show(wout)))
    end
  elseif tower:has("in_task_space_weight") or tower:has("out_task_space_weight") then
    tower:err(tower:has("in_task_space_weight") and "in_task_space_weight" or "out_task_space_weight",
      "'%s' sets task-space weights without task_space_indicator_label", tower.path)
  end
  t.weight = w
  if st.sample_weight and tower:get("use_sample_weight") then t.sample_weight = st.sample_weight end
  tower.used.use_sample_weight = true
  map_metrics(ctx, st, tower:get("metrics_set"), tower.path)
  if bayes then
    local rel = tower:get("relation_tower_names")
    if #rel > 0 then t.relations = copy_list(rel) end
    if tower.values.relation_dnn then t.relation = dnn_sizes(tower.values.relation_dnn) end
    tower.used.relation_dnn = true
  end
  t.obj = tower
  return t
end

local function check_task_names(st, tasks)
  local seen = {}
  for _, t in ipairs(tasks) do
    if seen[t.name] then t.obj:verr("tower_name", nil, "tower_name '%s' is used twice", t.name) end
    seen[t.name] = true
  end
  for _, t in ipairs(tasks) do
    for j, r in ipairs(t.relations or {}) do
      if r == t.name then t.obj:verr("relation_tower_names", j, "task '%s' cannot depend on itself", r)
      elseif not seen[r] then
        local names = {}
        for _, x in ipairs(tasks) do names[#names + 1] = x.name end
        t.obj:verr("relation_tower_names", j, "relation_tower_names names an unknown tower '%s'%s", r, util.did_you_mean(r, names))
      end
    end
  end
end

local function strip(tasks)
  for _, t in ipairs(tasks) do t.obj = nil end
  return tasks
end

-- What a model file's easyrec.map gets besides its model_config object and
-- cfg.model: the reader's shared helpers and state.
local function helpers(ctx, cfg, st)
  local labels = cfg.data.labels or {}
  local er = { cfg = cfg, st = st, ctx = ctx, dnn_sizes = dnn_sizes, same_list = same_list }
  -- one tower -> an mtl task (t.obj: the tower, for messages)
  function er.map_task(tower, i, opts) return map_task(ctx, st, tower, i, labels, opts and opts.bayes) end
  -- m.task_towers -> the model's task list (opts.bayes: DBMTL's relation fields)
  function er.task_towers(m, opts)
    local towers, tasks = m:get("task_towers"), {}
    if #towers == 0 then m:err(nil, "'%s' has no task_towers", m.path) end
    for i, tower in ipairs(towers) do tasks[i] = er.map_task(tower, i, opts) end
    check_task_names(st, tasks)
    return strip(tasks)
  end
  return er
end

-- The feature group: one group of features, concatenated (st.group).
local function map_feature_group(mc, st)
  local groups = mc:get("feature_groups")
  if #groups == 0 then
    mc:err(nil, "model_config has no feature_groups (EasyRec's multi-task models read the group named 'all')")
  end
  if #groups > 1 then
    mc:err("feature_groups", "mtl's multi-task models read one feature group (all features concatenated); this config has %d", #groups)
  end
  local g = groups[1]
  st.group = {}
  if g then
    if g:get("wide_deep") ~= "DEEP" then g:unsupported_value("wide_deep", "mtl's multi-task models have no wide part (DEEP only)") end
    g:get("group_name")
    local seen = {}
    for i, fname in ipairs(g:get("feature_names")) do
      if not st.features[fname] then
        local names = {}
        for _, f in ipairs(st.feature_list) do names[#names + 1] = f.name end
        g:verr("feature_names", i, "feature '%s' is not defined in feature_config%s", fname, util.did_you_mean(fname, names))
      elseif seen[fname] then
        g:verr("feature_names", i, "feature '%s' is listed twice in the group", fname)
      else
        seen[fname] = true
        st.group[#st.group + 1] = st.features[fname]
      end
    end
  end
end

local function map_model(ctx, root, cfg, st)
  local mc = root.values.model_config
  root.used.model_config = true
  if not mc then ctx:add(1, 1, "model_config is missing") return end
  local class = mc:get("model_class")
  local classes = model_classes()
  local known = util.sorted_keys(classes)
  local model = cfg.model
  local spec = class and classes[class]
  if not class then
    mc:err(nil, "model_config.model_class is required (%s)", table.concat(known, ", "))
    mark_all(mc)
    return
  end
  if not spec then
    mc:verr("model_class", nil, "unsupported model_class %q: mtl reads the multi-task models %s%s", class,
      table.concat(known, ", "), util.did_you_mean(class, known))
    mark_all(mc)
    return
  end
  model.name = spec.name
  st.model_spec = spec
  local m = mc.values[spec.field]
  for _, other in ipairs(SCHEMA.EasyRecModel.oneofs.model) do
    if other ~= spec.field and mc:has(other) then
      mc:err(other, "model_class is %s, but the model options are given as '%s' (expected '%s')", class, other, spec.field)
      mc:mark(other)
    end
  end
  mc.used[spec.field] = true
  if not m then
    mc:err(nil, "model_class is %s but model_config has no '%s { ... }'", class, spec.field)
    mark_all(mc)
    return
  end
  if mc:get("loss_type") ~= "CLASSIFICATION" then mc:unsupported_value("loss_type", "mtl's tasks are binary classification") end
  if mc:get("num_class") ~= 1 then mc:unsupported_value("num_class", "mtl's tasks are binary (num_class: 1)") end
  if mc:get("loss_weight_strategy") ~= "Fixed" then
    mc:unsupported_value("loss_weight_strategy", "the EasyRec reader gives tasks fixed weights (Fixed)")
  end
  st.l2 = m:get("l2_regularization")
  st.l2_set = m:has("l2_regularization")
  st.l2_obj = m
  st.emb_reg = mc:get("embedding_regularization")
  st.emb_reg_obj = mc
  map_feature_group(mc, st)
  spec.map(m, model, helpers(ctx, cfg, st))
end

-- ---- optimizer and schedule ---------------------------------------------------------------------
local OPTIMIZER_KINDS = {
  adam_optimizer = "adam", lazy_adam_optimizer = "adam", adam_async_optimizer = "adam",
  adamw_optimizer = "adamw", adam_asyncw_optimizer = "adamw", momentum_optimizer = "sgd",
  adagrad_optimizer = "adagrad", ftrl_optimizer = "ftrl", rms_prop_optimizer = "rmsprop",
}

local function map_learning_rate(ctx, holder, cfg)
  local lr = holder:get("learning_rate")
  if not lr then
    holder:err(nil, "'%s' needs a learning_rate { ... }", holder.path)
    return 1e-3
  end
  local sched = cfg.optimizer.schedule
  if lr:has("constant_learning_rate") then
    local c = lr:get("constant_learning_rate")
    sched.name = "constant"
    return c:get("learning_rate")
  elseif lr:has("exponential_decay_learning_rate") then
    local e = lr:get("exponential_decay_learning_rate")
    if e:get("burnin_steps") > 0 then e:unsupported("burnin_steps", "mtl's exponential decay has no burn-in") end
    sched.name = "exponential_decay"
    sched.decay_steps = e:get("decay_steps")
    sched.decay_factor = e:get("decay_factor")
    sched.staircase = e:get("staircase")
    sched.min_lr = e:get("min_learning_rate")
    if sched.decay_steps < 1 then e:verr("decay_steps", nil, "'%s' must be >= 1", e:field_path("decay_steps")) end
    return e:get("initial_learning_rate")
  elseif lr:has("manual_step_learning_rate") then
    local ms = lr:get("manual_step_learning_rate")
    local init = ms:get("initial_learning_rate")
    local steps = ms:get("schedule")
    if #steps == 0 then
      ms:err(nil, "'%s' has no schedule entries (use constant_learning_rate for a fixed rate)", ms.path)
      return init
    end
    local boundaries, values = {}, { init }
    for i, s in ipairs(steps) do
      if not s:has("step") then s:err(nil, "'%s' needs a step", s.path) end
      boundaries[i] = s:get("step") or 0
      values[i + 1] = s:get("learning_rate")
      if boundaries[i] < 1 or (i > 1 and boundaries[i] <= boundaries[i - 1]) then
        s:verr("step", nil, "'%s' steps must be positive and increasing, got %s", ms:field_path("schedule"), util.show(boundaries[i]))
      end
    end
    if ms:get("warmup") then
      if #steps > 1 then
        ms:unsupported("warmup", "mtl warms up linearly into a constant rate; a warmup with more than one schedule step is not supported")
      end
      sched.name = "linear_warmup"
      sched.warmup_steps = boundaries[1]
      sched.start_lr = init
      return values[2]
    end
    sched.name = "manual"
    sched.boundaries, sched.values = boundaries, values
    return init
  elseif lr:has("cosine_decay_learning_rate") then
    local c = lr:get("cosine_decay_learning_rate")
    if c:get("hold_base_rate_steps") > 0 then c:unsupported("hold_base_rate_steps", "mtl's cosine schedule does not hold the base rate") end
    sched.name = "cosine"
    sched.total_steps = c:get("total_steps")
    sched.warmup_steps = c:get("warmup_steps")
    sched.start_lr = c:get("warmup_learning_rate")
    sched.min_lr = 0
    if sched.total_steps <= sched.warmup_steps then
      c:err(c:has("total_steps") and "total_steps" or nil, "'%s': total_steps (%d) must be greater than warmup_steps (%d)",
        c.path, sched.total_steps, sched.warmup_steps)
    end
    return c:get("learning_rate_base")
  elseif lr:has("poly_decay_learning_rate") then
    local p = lr:get("poly_decay_learning_rate")
    for _, k in ipairs({ "learning_rate_base", "total_steps", "power" }) do
      if not p:has(k) then p:err(nil, "'%s' needs %s (a required field)", p.path, k) end
    end
    sched.name = "polynomial"
    sched.decay_steps = p:get("total_steps") or 1
    sched.power = p:get("power") or 1
    sched.end_lr = p:get("end_learning_rate")
    if sched.decay_steps < 1 then p:verr("total_steps", nil, "'%s' must be >= 1", p:field_path("total_steps")) end
    return p:get("learning_rate_base") or 1e-3
  elseif lr:has("transformer_learning_rate") then
    return 1e-3 -- reported by UNSUPPORTED
  end
  lr:err(nil, "'%s' is empty (constant_learning_rate, exponential_decay_learning_rate, manual_step_learning_rate, cosine_decay_learning_rate or poly_decay_learning_rate)", lr.path)
  return 1e-3
end

local function map_train(ctx, root, cfg, st)
  local tc = root.values.train_config
  root.used.train_config = true
  local train = cfg.train
  if not tc then ctx:add(1, 1, "train_config is missing (mtl needs the optimizer and num_steps or num_epochs)") return end
  local steps = tc:get("num_steps")
  if steps > 0 then train.steps = steps end
  train.checkpoint_every = tc:get("save_checkpoints_steps")
  if train.checkpoint_every < 1 then train.checkpoint_every = false end
  train.keep_checkpoints = tc:get("keep_checkpoint_max")
  if train.keep_checkpoints < 1 then
    tc:unsupported_value("keep_checkpoint_max", "mtl keeps the last N >= 1 checkpoints")
    train.keep_checkpoints = 1
  end
  train.log_every = math.max(tc:get("log_step_count_steps"), 1)
  local threads = tc:get("intra_op_parallelism_threads")
  if threads > 0 then train.threads = threads end
  local clip = tc:get("gradient_clipping_by_norm")
  if clip > 0 then cfg.optimizer.clip_norm = clip end
  for _, k in ipairs({ "fine_tune_checkpoint", "fine_tune_ckpt_var_map" }) do
    if tc:has(k) and tc.values[k] == "" then tc.used[k] = true end -- the default: no checkpoint
  end
  -- epochs: data_config.num_epochs (0: until num_steps)
  local epochs = st.num_epochs or 0
  if epochs > 0 then
    train.epochs = epochs
    cfg.data.epochs = epochs
  elseif train.steps then
    train.epochs = math.huge
    cfg.data.epochs = math.huge
  elseif st.epochs_obj and not st.epochs_obj.bad.num_epochs and not tc.bad.num_steps then
    st.epochs_obj:err(st.epochs_obj:has("num_epochs") and "num_epochs" or nil,
      "data_config.num_epochs is 0 and train_config.num_steps is 0: EasyRec would train forever; set one of them")
  end
  -- the optimizer
  local list = tc:get("optimizer_config")
  if #list == 0 then
    if not tc.bad.optimizer_config then tc:err(nil, "train_config needs an optimizer_config") end
    return
  end
  if #list > 1 then
    local line, col = tc:pos("optimizer_config", 2)
    ctx:add(line, col, "unsupported field 'train_config.optimizer_config' given twice: mtl's EasyRec reader takes one optimizer (embeddings use it too, with embedding_learning_rate_multiplier)")
    for i = 2, #list do mark_all(list[i]) end
  end
  local o = list[1]
  local which
  for _, k in ipairs(SCHEMA.Optimizer.oneofs.optimizer) do if o:has(k) then which = k end end
  if not which then
    o:err(nil, "'%s' names no optimizer (adam_optimizer, adamw_optimizer, momentum_optimizer, adagrad_optimizer, ftrl_optimizer or rms_prop_optimizer)", o.path)
    return
  end
  local kind = OPTIMIZER_KINDS[which]
  if not kind then return end -- momentumw: reported by UNSUPPORTED
  local k = o:get(which)
  local dense = { name = kind }
  local lr = map_learning_rate(ctx, k, cfg)
  dense.lr = lr
  if lr <= 0 then k:err("learning_rate", "the learning rate must be > 0, got %s", util.show(lr)) end
  if kind == "adam" or kind == "adamw" then
    dense.beta1, dense.beta2 = k:get("beta1"), k:get("beta2")
  elseif kind == "sgd" then
    dense.momentum = k:get("momentum_optimizer_value")
  elseif kind == "adagrad" then
    dense.initial_accumulator = k:get("initial_accumulator_value")
  elseif kind == "ftrl" then
    dense.lr_power = k:get("learning_rate_power")
    dense.initial_accumulator = k:get("initial_accumulator_value")
    dense.l1, dense.l2 = k:get("l1_reg"), k:get("l2_reg")
    if k:get("l2_shrinkage_reg") ~= 0 then k:unsupported("l2_shrinkage_reg", "mtl's ftrl has no L2 shrinkage") end
  elseif kind == "rmsprop" then
    dense.alpha = k:get("decay")
    dense.momentum = k:get("momentum_optimizer_value")
    dense.eps = k:get("epsilon")
  end
  local sparse = {}
  for key, v in pairs(dense) do sparse[key] = v end
  -- regularization: l2_regularization on dense weights, embedding_regularization on embeddings
  local l2, emb = st.l2 or 0, st.emb_reg or 0
  if kind == "adamw" then
    -- TF's decoupled decay subtracts wd * w per step; mtl's adamw subtracts lr * wd * w
    local wd = k:get("weight_decay")
    dense.weight_decay = wd / lr
    sparse.weight_decay = wd / lr
    if st.l2_set and l2 > 0 then
      st.l2_obj:unsupported("l2_regularization", "mtl's adamw has only its decoupled weight_decay; set l2_regularization: 0 or use adam_optimizer")
    end
    if emb > 0 then
      st.emb_reg_obj:unsupported("embedding_regularization", "mtl's adamw has only its decoupled weight_decay")
    end
  elseif kind == "ftrl" then
    if l2 > 0 and st.l2_set then st.l2_obj:unsupported("l2_regularization", "mtl's ftrl takes l1_reg and l2_reg") end
    if emb > 0 then st.emb_reg_obj:unsupported("embedding_regularization", "mtl's ftrl takes l1_reg and l2_reg") end
  else
    if l2 > 0 then dense.weight_decay = l2 end
    sparse.weight_decay = emb > 0 and emb or nil
  end
  if st.l2_obj then st.l2_obj.used.l2_regularization = true end
  if st.emb_reg_obj then st.emb_reg_obj.used.embedding_regularization = true end
  if o:has("embedding_learning_rate_multiplier") then
    local mult = o:get("embedding_learning_rate_multiplier")
    if mult <= 0 then o:verr("embedding_learning_rate_multiplier", nil, "'%s' must be > 0", o:field_path("embedding_learning_rate_multiplier"))
    elseif cfg.optimizer.schedule.name == "manual" then
      o:unsupported("embedding_learning_rate_multiplier", "a manual_step schedule gives absolute rates to every parameter")
    else
      sparse.lr = lr * mult
    end
  end
  cfg.optimizer.dense, cfg.optimizer.sparse = dense, sparse
end

local function map_eval(ctx, root, cfg, st)
  local ec = root.values.eval_config
  root.used.eval_config = true
  if ec then
    if ec:get("num_examples") > 0 then ec:unsupported_value("num_examples", "mtl evaluates every row of eval_input_path") end
    map_metrics(ctx, st, ec:get("metrics_set"), ec.path)
  end
  local metrics = {}
  if st.metrics.auc or not st.metrics.gauc then metrics[#metrics + 1] = "auc" end
  if st.metrics.gauc then metrics[#metrics + 1] = "gauc" end
  cfg.eval.metrics = metrics
  cfg.eval.gauc = st.gauc
end

-- Features in group order, embedding_name -> shared.
local function finish_features(ctx, cfg, st)
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
  local in_group = {}
  for _, f in ipairs(st.group or {}) do in_group[f] = true end
  local unused = {}
  for _, f in ipairs(st.feature_list) do if not in_group[f] then unused[#unused + 1] = f.name end end
  if #unused > 0 and st.group and #st.group > 0 then
    ctx:note("features in no feature group (unused, as in EasyRec): %s", table.concat(unused, ", "))
  end
end

-- After mapping: every set field not handled is a no-op, unsupported, or an
-- error. The reasons a field is unsupported: UNSUPPORTED and the model files'.
local function check_unhandled(ctx)
  local reasons = {}
  for k, v in pairs(UNSUPPORTED) do reasons[k] = v end
  for _, spec in pairs(model_classes()) do
    for k, v in pairs(spec.unsupported) do reasons[k] = v end
  end
  for _, obj in ipairs(ctx.objects) do
    for name in pairs(obj.nodes) do
      if not obj.used[name] then
        local key = obj.type .. "." .. name
        local noop = NOOPS[key]
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

-- Maps a parsed file (root node) to {cfg, notes}; raises all problems together.
function easyrec.map(tree, file)
  file = file or tree.file or "(config)"
  local ctx = new_ctx(file)
  local root = decode(ctx, tree, "EasyRecConfig", "")
  local cfg = { data = {}, features = {}, model = {}, optimizer = { schedule = {} }, train = {}, eval = {} }
  local st = { metrics = {} }
  if root:has("train_input_path") then cfg.data.train = root:get("train_input_path")
  elseif not root:has("kafka_train_input") and not root:has("datahub_train_input") then
    ctx:add(1, 1, "train_input_path is missing (the training CSV files)")
  end
  if root:has("eval_input_path") then cfg.data.eval = root:get("eval_input_path") end
  if root:has("model_dir") then cfg.model_dir = root:get("model_dir") else ctx:add(1, 1, "model_dir is missing (a required field)") end
  map_data(ctx, root, cfg, st)
  if st.columns then
    map_features(ctx, root, st)
    map_model(ctx, root, cfg, st)
    map_train(ctx, root, cfg, st)
    map_eval(ctx, root, cfg, st)
    finish_features(ctx, cfg, st)
    type_columns(ctx, st, cfg.data)
    -- masks are labels already (task_space_indicator_label must be a label field)
    if st.column_list then
      local uses_default_bn = false
      for _, obj in ipairs(ctx.objects) do
        if obj.type == "DNN" and not obj:has("use_bn") and not (st.model_spec and st.model_spec.maps_use_bn) then uses_default_bn = true end
      end
      if uses_default_bn then
        ctx:note("DNN blocks without 'use_bn' default to batch normalization in EasyRec; mtl's towers, experts and bottoms have none")
      end
    end
  end
  if not st.columns then mark_all(root) end -- without data_config nothing else was mapped
  check_unhandled(ctx)
  if #ctx.errs > 0 then
    table.sort(ctx.errs, function(a, b)
      if a.line ~= b.line then return a.line < b.line end
      return a.col < b.col
    end)
    local lines, seen = {}, {}
    for _, e in ipairs(ctx.errs) do
      local s = string.format("%s:%d:%d: %s", file, e.line, e.col, e.text)
      if not seen[s] then seen[s] = true; lines[#lines + 1] = s end
    end
    error(table.concat(lines, "\n"), 0)
  end
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
