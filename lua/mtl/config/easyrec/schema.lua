-- mtl.config.easyrec.schema: EasyRec's messages as mtl reads them (the subset
-- of easy_rec/python/protos that pipeline.config files use), and what the
-- reader does with the fields it does not map. Pure data: requiring it runs
-- nothing and raises nothing.
--
--   SCHEMA[message] = {fields = {name = spec}, oneofs = {group = {field, ...}}}
--     spec = {kind =, default =, rep = true (repeated), values = {...} (enum),
--             msg = "Message" (a message field; without msg its contents are
--             not checked: the field is rejected or a no-op)}
--     kind: "string", "uint", "int", "float", "bool", "enum" or "message"
--   NOOPS["Message.field"] = {why =, only =}: accepted and ignored, with the
--     reason it is harmless (`only`: accepted only with that value)
--   UNSUPPORTED["Message.field"] = why: reported when set. The messages of
--     one model (MMoE, PLE, ...) keep theirs in models/<name>.lua
--     (easyrec.unsupported).
local schema = {}

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
  "PAIRWISE_HINGE_LOSS", "LISTWISE_RANK_LOSS", "LISTWISE_DISTILL_LOSS", "ZILN_LOSS", "ORDER_CALIBRATE_LOSS",
  "BINARY_CROSS_ENTROPY_LOSS", "KL_DIVERGENCE_LOSS" }
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
    losses = rep(msg("Loss")), use_sample_weight = bool(true),
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
    hive_train_input = opaque(), binary_train_input = opaque(), parquet_train_input = str(),
    eval_input_path = str(), kafka_eval_input = opaque(), datahub_eval_input = opaque(),
    hive_eval_input = opaque(), binary_eval_input = opaque(), parquet_eval_input = str(),
    model_dir = str(), train_config = msg("TrainConfig"), eval_config = msg("EvalConfig"),
    data_config = msg("DatasetConfig"), feature_configs = rep(msg("FeatureConfig")),
    feature_config = msg("FeatureConfigV2"), model_config = msg("EasyRecModel"), export_config = opaque(),
    fg_json_path = str(),
  }, oneofs = {
    train_path = { "train_input_path", "kafka_train_input", "datahub_train_input", "hive_train_input",
      "binary_train_input", "parquet_train_input" },
    eval_path = { "eval_input_path", "kafka_eval_input", "datahub_eval_input", "hive_eval_input", "binary_eval_input",
      "parquet_eval_input" },
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
    auc = msg("AUC"), recall_at_topk = msg("RecallAtTopK"), mean_absolute_error = msg("Empty"),
    mean_squared_error = msg("Empty"), accuracy = msg("Empty"), max_f1 = msg("Empty"),
    root_mean_squared_error = msg("Empty"), gauc = msg("GAUC"), session_auc = msg("SessionAUC"),
  }, oneofs = { metric = { "auc", "recall_at_topk", "mean_absolute_error", "mean_squared_error", "accuracy", "max_f1",
    "root_mean_squared_error", "gauc", "session_auc" } } },
  Empty = { fields = {} },
  AUC = { fields = { num_thresholds = u32(200) } },
  VariationalDropoutLayer = { fields = { regularization_lambda = flt(0.01), embedding_wise_variational_dropout = bool(false) } },
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
    lookup_max_sel_elem_num = i32(10), max_partitions = i32(1), combiner = str("sum"), initializer = opaque(),
    precision = i32(-1), min_val = flt(0), max_val = flt(0), raw_input_dim = u32(1), sequence_combiner = opaque(),
    sub_feature_type = enum(FEATURE_TYPES, "IdFeature"), sequence_length = u32(1), expression = str(),
    use_embedding_variable = bool(false), normalizer_fn = str(),
  } },
  FeatureGroupConfig = { fields = { group_name = str(), feature_names = rep(str()),
    wide_deep = enum({ "DEEP", "WIDE", "WIDE_AND_DEEP" }, "DEEP"), sequence_features = rep(msg("SeqAttGroupConfig")),
    negative_sampler = bool(false) } },
  SeqAttGroupConfig = { fields = { group_name = str(), seq_att_map = rep(msg("SeqAttMap")), tf_summary = bool(false),
    seq_dnn = msg("DNN"), allow_key_search = bool(false), need_key_feature = bool(true),
    allow_key_transform = bool(false), transform_dnn = bool(false) } },
  SeqAttMap = { fields = { key = rep(str()), hist_seq = rep(str()), aux_hist_seq = rep(str()) } },
  EasyRecModel = { fields = {
    model_class = str(), model_name = str(), feature_groups = rep(msg("FeatureGroupConfig")),
    model_params = msg("ModelParams"), dummy = opaque(), wide_and_deep = opaque(), deepfm = opaque(), multi_tower = opaque(),
    fm = opaque(), dcn = opaque(), autoint = opaque(), dlrm = opaque(), cmbf = opaque(), uniter = opaque(),
    multi_tower_recall = opaque(), dssm = opaque(), mind = opaque(), dropoutnet = opaque(),
    metric_learning = opaque(), pdn = opaque(), mmoe = msg("MMoE"), esmm = msg("ESMM"), dbmtl = msg("DBMTL"),
    simple_multi_task = msg("SimpleMultiTask"), ple = msg("PLE"), rocket_launching = opaque(),
    seq_att_groups = rep(opaque()), embedding_regularization = flt(0), loss_type = enum(LOSS_TYPES, "CLASSIFICATION"),
    num_class = u32(1), ev_params = opaque(), kd = rep(opaque()), restore_filters = rep(str()),
    variational_dropout = msg("VariationalDropoutLayer"), losses = rep(opaque()),
    loss_weight_strategy = enum({ "Fixed", "Uncertainty", "Random" }, "Fixed"), backbone = msg("BackboneTower"),
  }, oneofs = { model = { "model_params", "dummy", "wide_and_deep", "deepfm", "multi_tower", "fm", "dcn", "autoint",
    "dlrm", "cmbf", "uniter", "multi_tower_recall", "dssm", "mind", "dropoutnet", "metric_learning", "pdn", "mmoe",
    "esmm", "dbmtl", "simple_multi_task", "ple", "rocket_launching" } } },
  ModelParams = { fields = { l2_regularization = flt(0), outputs = rep(str()), task_towers = rep(msg("BayesTaskTower")),
    user_tower_idx_in_output = i32(0), item_tower_idx_in_output = i32(1), simi_func = opaque(), temperature = flt(1),
    scale_simi = bool(false) } },
  BackboneTower = { fields = { packages = rep(opaque()), blocks = rep(msg("Block")), concat_blocks = rep(str()),
    output_blocks = rep(str()), top_mlp = msg("MLP") } },
  Block = { fields = { name = str(), inputs = rep(msg("Input")), input_concat_axis = i32(-1),
    merge_inputs_into_list = bool(false), extra_input_fn = str(), layers = rep(opaque()), input_layer = msg("InputLayer"),
    lambda = opaque(), keras_layer = msg("KerasLayer"), recurrent = opaque(), ["repeat"] = opaque(), raw_input = opaque(),
    embedding_layer = opaque() }, oneofs = { layer = { "input_layer", "lambda", "keras_layer", "recurrent", "repeat",
    "raw_input", "embedding_layer" } } },
  Input = { fields = { feature_group_name = str(), block_name = str(), package_name = str(), use_package_input = bool(false),
    input_fn = str(), input_slice = str(), ignore_input = bool(false), reset_input = opaque(), package_input = str(),
    package_input_fn = str() }, oneofs = { name = { "feature_group_name", "block_name", "package_name", "use_package_input" } } },
  InputLayer = { fields = { do_batch_norm = bool(false), do_layer_norm = bool(false), dropout_rate = flt(0),
    feature_dropout_rate = flt(0), only_output_feature_list = bool(false), only_output_3d_tensor = bool(false),
    output_2d_tensor_and_feature_list = bool(false), output_seq_and_normal_feature = bool(false), wide_output_dim = u32(),
    concat_seq_feature = bool(true) } },
  KerasLayer = { fields = { class_name = str(), st_params = opaque(), periodic_embedding = opaque(),
    auto_dis_embedding = opaque(), nary_dis_embedding = opaque(), fm = opaque(), mask_block = msg("MaskBlock"),
    masknet = msg("MaskNet"), senet = msg("SENet"), bilinear = opaque(), fibinet = opaque(), mlp = msg("MLP"),
    din = opaque(), bst = opaque(), mmoe = msg("MMoELayer"), seq_aug = opaque(), ppnet = opaque(), text_cnn = opaque(),
    highway = opaque(), overlap = opaque(), dot_product = opaque(), attention = opaque(), multi_head_attention = opaque(),
    transformer = opaque(), text_encoder = opaque(), gate = opaque(), aitm = msg("AITMTower"), cin = opaque() },
    oneofs = { params = { "st_params", "periodic_embedding", "auto_dis_embedding", "nary_dis_embedding", "fm",
    "mask_block", "masknet", "senet", "bilinear", "fibinet", "mlp", "din", "bst", "mmoe", "seq_aug", "ppnet", "text_cnn",
    "highway", "overlap", "dot_product", "attention", "multi_head_attention", "transformer", "text_encoder", "gate",
    "aitm", "cin" } } },
  MLP = { fields = { hidden_units = rep(u32()), dropout_ratio = rep(flt()), activation = str("relu"), use_bn = bool(true),
    use_final_bn = bool(true), final_activation = str("relu"), use_bias = bool(false), initializer = str("he_uniform"),
    use_bn_after_activation = bool(false), use_final_bias = bool(false), add_to_outputs = bool(false) } },
  MMoELayer = { fields = { num_task = u32(), expert_mlp = msg("MLP"), num_expert = u32() } },
  AITMTower = { fields = { project_dim = u32(), transfer_mlp = msg("MLP"), stop_gradient = bool(true) } },
  SENet = { fields = { reduction_ratio = u32(4), num_squeeze_group = u32(2), use_skip_connection = bool(true),
    use_output_layer_norm = bool(true) } },
  MaskBlock = { fields = { reduction_factor = flt(), output_size = u32(), aggregation_size = u32(),
    input_layer_norm = bool(false), projection_dim = u32() } },
  MaskNet = { fields = { mask_blocks = rep(msg("MaskBlock")), use_parallel = bool(true), mlp = msg("MLP"),
    input_layer_norm = bool(true) } },
  Loss = { fields = { loss_type = enum(LOSS_TYPES), weight = flt(1), loss_name = str(), learn_loss_weight = bool(false),
    f1_reweighted_loss = msg("F1ReweighedLoss"), softmax_loss = opaque(), circle_loss = opaque(), multi_simi_loss = opaque(),
    binary_focal_loss = opaque(), pairwise_loss = msg("PairwiseLoss"), pairwise_focal_loss = opaque(),
    pairwise_logistic_loss = opaque(), jrc_loss = msg("JRCLoss"), pairwise_hinge_loss = opaque(),
    listwise_rank_loss = opaque(), listwise_distill_loss = opaque(), ziln_loss = opaque() },
    oneofs = { loss_param = { "f1_reweighted_loss", "softmax_loss", "circle_loss", "multi_simi_loss", "binary_focal_loss",
      "pairwise_loss", "pairwise_focal_loss", "pairwise_logistic_loss", "jrc_loss", "pairwise_hinge_loss",
      "listwise_rank_loss", "listwise_distill_loss", "ziln_loss" } } },
  F1ReweighedLoss = { fields = { f1_beta_square = flt(1), label_smoothing = flt(0) } },
  PairwiseLoss = { fields = { margin = flt(0), session_name = str(), temperature = flt(1) } },
  JRCLoss = { fields = { session_name = str(), alpha = flt(0.5), same_label_loss = bool(true),
    loss_weight_strategy = str("fixed") } },
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
schema.SCHEMA = SCHEMA

-- ==== fields accepted as no-ops, and why each is harmless ======================================
-- Key: "Message.field". `only`: accepted only with this value (another value is
-- reported as unsupported, with the reason given).
local NOOPS = {
  ["TrainConfig.sync_replicas"] = { why = "synchronizes distributed TF workers; mtl's data-parallel training is synchronous" },
  ["TrainConfig.sparse_accumulator_type"] = { why = "gradient accumulator of PAI-TF's sync replicas (distributed only)" },
  ["TrainConfig.startup_delay_steps"] = { why = "staggers the start of distributed TF workers" },
  ["TrainConfig.save_summary_steps"] = { why = "TensorBoard summaries; mtl writes metrics.jsonl every log_every steps" },
  ["TrainConfig.is_profiling"] = { why = "TF timeline profiling; it does not change training" },
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
  ["DatasetConfig.shard"] = { why = "splits files between distributed workers; mtl's ranks split every global batch's rows" },
  ["DatasetConfig.chief_redundant"] = { why = "distributed data assignment to the chief worker" },
  ["DatasetConfig.pai_worker_queue"] = { only = false, why = "PAI's global shuffle queue, for ODPS inputs only" },
  ["DatasetConfig.pai_worker_slice_num"] = { why = "used only with pai_worker_queue (ODPS inputs)" },
  ["DatasetConfig.rtp_separator"] = { why = "read only by RTPInput; mtl reads CSVInput" },
  ["DatasetConfig.data_compression_type"] = { why = "read only by TFRecord inputs; mtl reads CSVInput" },
  ["DatasetConfig.n_data_batch_tfrecord"] = { why = "read only by TFRecord inputs; mtl reads CSVInput" },
  ["FeatureConfig.max_partitions"] = { why = "partitions a TF variable over parameter servers; the table is the same" },
  ["FeatureConfig.lookup_max_sel_elem_num"] = { why = "bounds matches of a multi-valued lookup key; mtl's lookup key is single-valued" },
  ["SeqAttGroupConfig.tf_summary"] = { why = "writes the sequence embeddings to TensorBoard" },
  ["SeqAttGroupConfig.allow_key_search"] = { why = "lets EasyRec look a key up outside its group; mtl looks every key up by its feature" },
  ["EasyRecModel.model_name"] = { why = "a display name" },
  ["EasyRecModel.restore_filters"] = { why = "filters variables restored from fine_tune_checkpoint, which mtl does not read" },
  ["EvalConfig.eval_interval_secs"] = { why = "time between TF's evaluator runs; mtl evaluates every train.eval_every steps and at the end" },
  ["EvalConfig.max_evals"] = { why = "stops TF's continuous evaluator; mtl's evaluations end with training" },
  ["EvalConfig.save_graph"] = { why = "saves the eval graph for TensorBoard" },
  ["AUC.num_thresholds"] = { why = "the thresholds of TF's streaming AUC, an approximation; mtl computes the exact AUC (sorted scores, ties averaged)" },
  ["EasyRecConfig.export_config"] = { why = "options of TF's SavedModel export; `mtl export` writes its own model directory" },
}
schema.NOOPS = NOOPS

-- ==== fields mtl does not support, and why (reported when set) ===============================
local UNSUPPORTED = {
  ["EasyRecConfig.kafka_train_input"] = "mtl reads files (train_input_path), not Kafka",
  ["EasyRecConfig.datahub_train_input"] = "mtl reads files (train_input_path), not DataHub",
  ["EasyRecConfig.kafka_eval_input"] = "mtl reads files (eval_input_path), not Kafka",
  ["EasyRecConfig.datahub_eval_input"] = "mtl reads files (eval_input_path), not DataHub",
  ["EasyRecConfig.fg_json_path"] = "mtl has no feature generation (fg) step",
  ["EasyRecConfig.hive_train_input"] = "mtl reads files: export the Hive table to CSV (its columns in input_fields order, no header) and give train_input_path: \"train.csv\" with data_config.input_type: CSVInput",
  ["EasyRecConfig.hive_eval_input"] = "mtl reads files: export the Hive table to CSV (its columns in input_fields order, no header) and give eval_input_path: \"eval.csv\" with data_config.input_type: CSVInput",
  ["EasyRecConfig.binary_train_input"] = "mtl reads delimited text files: give train_input_path with data_config.input_type: CSVInput",
  ["EasyRecConfig.binary_eval_input"] = "mtl reads delimited text files: give eval_input_path with data_config.input_type: CSVInput",
  ["EasyRecConfig.parquet_train_input"] = "mtl reads delimited text files: convert the Parquet files to CSV and give train_input_path with data_config.input_type: CSVInput",
  ["EasyRecConfig.parquet_eval_input"] = "mtl reads delimited text files: convert the Parquet files to CSV and give eval_input_path with data_config.input_type: CSVInput",
  ["TrainConfig.fine_tune_checkpoint"] = "mtl does not restore TensorFlow checkpoints",
  ["TrainConfig.fine_tune_ckpt_var_map"] = "mtl does not restore TensorFlow checkpoints",
  ["TrainConfig.save_checkpoints_secs"] = "mtl saves checkpoints by steps (save_checkpoints_steps)",
  ["TrainConfig.freeze_gradient"] = "mtl trains every parameter",
  ["TrainConfig.incr_save_config"] = "mtl has no incremental checkpoints",
  ["Optimizer.momentumw_optimizer"] = "mtl's sgd has L2 weight decay, not MomentumW's decoupled decay",
  ["LearningRate.transformer_learning_rate"] = "mtl has no transformer (noam) schedule",
  ["EvalConfig.eval_online"] = "mtl evaluates on eval_input_path only",
  ["EvalMetrics.recall_at_topk"] = "mtl's metrics are auc, gauc, logloss, calibration and max_f1",
  ["EvalMetrics.mean_absolute_error"] = "mtl's metrics are auc, gauc, logloss, calibration and max_f1",
  ["EvalMetrics.mean_squared_error"] = "mtl's metrics are auc, gauc, logloss, calibration and max_f1",
  ["EvalMetrics.root_mean_squared_error"] = "mtl's metrics are auc, gauc, logloss, calibration and max_f1",
  ["EvalMetrics.accuracy"] = "mtl's metrics are auc, gauc, logloss, calibration and max_f1",
  ["EvalMetrics.session_auc"] = "mtl's metrics are auc, gauc, logloss, calibration and max_f1",
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
  ["FeatureConfig.seq_multi_sep"] = "only a SequenceFeature splits its steps into values (seq_multi_sep)",
  ["FeatureConfig.max_seq_len"] = "only a SequenceFeature is cut to max_seq_len steps",
  ["FeatureConfig.sequence_combiner"] = "only a SequenceFeature read through feature_names is pooled by it",
  ["FeatureConfig.sub_feature_type"] = "only a SequenceFeature has a sub_feature_type",
  ["FeatureConfig.sequence_length"] = "only a RawFeature sequence is padded to sequence_length",
  ["FeatureConfig.expression"] = "ExprFeature is not supported",
  ["FeatureConfig.shared_names"] = "give each shared feature its own entry with the same embedding_name",
  ["FeatureConfig.initializer"] = "mtl initializes embeddings uniformly in [-0.05, 0.05]",
  ["FeatureConfig.precision"] = "float columns are not converted to ids",
  ["FeatureConfig.use_embedding_variable"] = "the EasyRec reader maps ids to fixed or hashed tables",
  ["FeatureConfig.raw_input_dim"] = "raw features are one number each",
  ["EasyRecModel.seq_att_groups"] = "model-level seq_att_groups are read by EasyRec's DIN-style ranking models; multi-task models take sequence_features in a feature group",
  ["EasyRecModel.ev_params"] = "embedding variables are not supported",
  ["EasyRecModel.kd"] = "knowledge distillation is not supported",
  ["EasyRecModel.losses"] = "mtl's task losses are binary cross-entropy (per task tower)",
}
schema.UNSUPPORTED = UNSUPPORTED

return schema
