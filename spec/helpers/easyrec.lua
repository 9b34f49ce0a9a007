-- Small EasyRec pipeline.configs for the specs: pipeline(parts) is a
-- complete config whose sections the parts replace (top, train, eval, data,
-- features, model); map(parts) maps it as "t.config"; err_of(fn, ...) is the
-- error text fn raises; inputs("clk:INT32 buy:INT32 ...") is the
-- data_config of a CSV input with those fields, labels clk and buy.
local easyrec = require "mtl.config.easyrec"

local M = {}

function M.err_of(fn, ...) return tostring(require("helpers.check").error_of(fn, ...)) end

function M.inputs(fields)
  local out = { '  batch_size: 64\n  label_fields: ["clk", "buy"]\n  input_type: CSVInput\n' }
  for name, kind in fields:gmatch("(%S+):(%S+)") do
    out[#out + 1] = string.format('  input_fields { input_name: "%s" input_type: %s }\n', name, kind)
  end
  return table.concat(out)
end

-- A small pipeline.config; parts replace the defaults of its sections.
function M.pipeline(p)
  p = p or {}
  return table.concat({
    p.top or 'train_input_path: "train.csv"\neval_input_path: "test.csv"\nmodel_dir: "runs/x"\n',
    "train_config {\n", p.train or [[
  optimizer_config { adam_optimizer { learning_rate { constant_learning_rate { learning_rate: 0.01 } } } }
  num_steps: 100
]], "}\n",
    p.eval or "eval_config { metrics_set { auc {} } }\n",
    "data_config {\n", p.data or M.inputs("clk:INT32 buy:INT32 user_id:STRING item_id:INT64 tags:STRING")
      .. '  input_fields { input_name: "price" input_type: DOUBLE default_val: "1.5" }\n'
      .. '  input_fields { input_name: "stats" input_type: STRING }\n', "}\n",
    "feature_config {\n", p.features or [[
  features { input_names: "user_id" feature_type: IdFeature embedding_dim: 8 hash_bucket_size: 1000 }
  features { input_names: "item_id" feature_type: IdFeature embedding_dim: 8 num_buckets: 500 }
]], "}\n",
    "model_config {\n", p.model or [[
  model_class: "MMoE"
  feature_groups { group_name: "all" feature_names: ["user_id", "item_id"] wide_deep: DEEP }
  mmoe {
    expert_dnn { hidden_units: [32, 16] }
    num_expert: 2
    task_towers { tower_name: "ctr" label_name: "clk" dnn { hidden_units: [8] } }
    task_towers { tower_name: "cvr" label_name: "buy" dnn { hidden_units: [8] } }
    l2_regularization: 0
  }
]], "}\n",
  })
end

function M.map(p) return easyrec.parse(M.pipeline(p), "t.config") end

return M
