-- mtl.config.easyrec.backbone: EasyRec's model_config.backbone (backbone.proto,
-- keras_layer.proto) mapped onto the blocks of mtl's backbone model
-- (models/backbone.lua, an nn.Graph of registered blocks).
--
--   backbone.map(mc, model, er)   model_config.backbone -> model.blocks, outputs, concat
--   backbone.mlp(obj)             a keras MLP message -> an mtl "mlp" option
--
-- A Block becomes {name, inputs, block, options, merge}: its inputs name
-- feature groups or blocks; an input_layer block is a group (its feature list
-- with only_output_feature_list); a keras_layer block is the registered block
-- of its class_name (KERAS below) with its params; a block with neither passes
-- its inputs on. output_blocks and concat_blocks say what the graph returns.
-- What mtl cannot run (lambdas and other Python, packages, recurrent and
-- repeated layers) is reported, at its position.
local util = require "mtl.config.util"
local dnn = require "mtl.config.easyrec.dnn"

local backbone = {}

-- The keras MLP block (layers/keras/blocks.py): dense (bias off by default) ->
-- BN -> activation on every layer, the last with use_final_bn and final_activation.
function backbone.mlp(obj)
  if not obj then return nil end
  local hidden = util.deep_copy(obj:get("hidden_units"))
  if #hidden == 0 then obj:err(nil, "'%s' needs hidden_units", obj.path) end
  local out = { hidden = hidden, batch_norm = obj:get("use_bn"), last_batch_norm = obj:get("use_final_bn"),
                bias = obj:get("use_bias") }
  local act = dnn.activation(obj, "activation")
  if act ~= "relu" then out.activation = act end
  local final = dnn.activation(obj, "final_activation")
  if final == "linear" then out.last_activation = false
  elseif final and act and final ~= act then
    obj:unsupported_value("final_activation", "mtl's MLP ends with its activation or none (linear)")
  end
  if obj:get("use_final_bias") ~= out.bias then
    obj:unsupported(obj:has("use_final_bias") and "use_final_bias" or "use_bias", "mtl's MLP has a bias on every layer or on none")
  end
  if obj:get("use_bn_after_activation") then obj:unsupported("use_bn_after_activation", "mtl normalizes before the activation") end
  if obj:get("add_to_outputs") then obj:unsupported("add_to_outputs", "mtl's outputs are the task towers'") end
  local rates = obj:get("dropout_ratio")
  if #rates > 0 then
    out.dropout = {}
    for i = 1, #hidden do out.dropout[i] = rates[i] or 0 end
  end
  obj:get("initializer") -- every dense layer starts at U(-1/sqrt(in), 1/sqrt(in)) (a listed difference)
  return out
end

-- keras_layer class_name -> {the registered block, its params field, their options}.
local KERAS = {
  MLP = { block = "MLP", field = "mlp", options = backbone.mlp },
  MMoE = { block = "MMoELayer", field = "mmoe", options = function(p)
    if not p.values.expert_mlp then p:err(nil, "'%s' needs expert_mlp (MMoE on its inputs as experts is not supported)", p.path) end
    return { tasks = p:get("num_task"), experts = p:get("num_expert"), expert = backbone.mlp(p:get("expert_mlp")) }
  end },
  AITMTower = { block = "AITMTower", field = "aitm", options = function(p)
    return { project_dim = p:get("project_dim"), transfer = backbone.mlp(p:get("transfer_mlp")),
             stop_gradient = p:get("stop_gradient") }
  end },
  SENet = { block = "SENet", field = "senet", options = function(p)
    return { reduction_ratio = p:get("reduction_ratio"), num_squeeze_group = p:get("num_squeeze_group"),
             use_skip_connection = p:get("use_skip_connection"), use_output_layer_norm = p:get("use_output_layer_norm") }
  end },
  MaskNet = { block = "MaskNet", field = "masknet", options = function(p)
    local blocks = {}
    for i, b in ipairs(p:get("mask_blocks")) do
      blocks[i] = { reduction_factor = b:get("reduction_factor"), output_size = b:get("output_size"),
                    aggregation_size = b:get("aggregation_size"), input_layer_norm = b:get("input_layer_norm"),
                    projection_dim = b:get("projection_dim") }
    end
    return { mask_blocks = blocks, use_parallel = p:get("use_parallel"), mlp = backbone.mlp(p:get("mlp")),
             input_layer_norm = p:get("input_layer_norm") }
  end },
}
backbone.KERAS = KERAS

local function keras(b, k, spec)
  local class = k:get("class_name")
  local map = KERAS[class]
  if not map then
    k:unsupported_value("class_name", "mtl's backbone blocks are " .. table.concat(util.sorted_keys(KERAS), ", "))
    return
  end
  spec.block = map.block
  local params = k.values[map.field]
  k.used[map.field] = true
  if not params then
    k:err(nil, "keras_layer %s needs its params as '%s { ... }'", class, map.field)
    return
  end
  spec.options = map.options(params)
end

-- An input_layer block: a feature group, whole or as its feature list.
local function input_layer(l, spec, group)
  spec.inputs = nil
  if l:get("only_output_feature_list") then spec.list = group else spec.group = group end
  for _, f in ipairs({ "do_batch_norm", "do_layer_norm", "only_output_3d_tensor", "output_2d_tensor_and_feature_list",
                       "output_seq_and_normal_feature" }) do
    if l:get(f) then l:unsupported(f, "mtl's input blocks give a group's features as one tensor or as a list") end
  end
  for _, f in ipairs({ "dropout_rate", "feature_dropout_rate" }) do
    if l:get(f) > 0 then l:unsupported(f, "mtl's input blocks have no dropout (use variational_dropout)") end
  end
  if l:has("wide_output_dim") then l:unsupported("wide_output_dim", "mtl's feature groups are DEEP") end
  l:get("concat_seq_feature")
end

-- One Block -> a block spec; groups[name] = true for each feature group it reads.
local function map_block(b, groups)
  local spec = { name = b:get("name"), inputs = {} }
  if not b:has("name") then b:err(nil, "'%s' needs a name", b.path) end
  for _, i in ipairs(b:get("inputs")) do
    local g, n = i:get("feature_group_name"), i:get("block_name")
    if g then groups[g] = true end
    if g or n then spec.inputs[#spec.inputs + 1] = g or n
    else i:err(nil, "'%s' names no feature_group_name or block_name (packages are not supported)", i.path) end
    if i:get("ignore_input") then i:unsupported("ignore_input", "mtl's blocks read every input they name") end
  end
  if #spec.inputs == 0 then b:err(nil, "block '%s' takes at least one input", tostring(spec.name)) end
  if b:get("merge_inputs_into_list") then spec.merge = "list" end
  if b:get("input_concat_axis") ~= -1 then b:unsupported_value("input_concat_axis", "mtl concatenates inputs along the last axis") end
  if b.values.input_layer then
    if #spec.inputs ~= 1 or not groups[spec.inputs[1]] then b:err("input_layer", "input layer '%s' takes one feature_group_name", tostring(spec.name)) end
    input_layer(b:get("input_layer"), spec, spec.inputs[1])
  elseif b.values.keras_layer then
    keras(b, b:get("keras_layer"), spec)
  end
  return spec
end

function backbone.map(mc, model, er)
  local bb = mc.values.backbone
  mc.used.backbone = true
  if not bb then mc:err(nil, "model_class MultiTaskModel needs a backbone { blocks { ... } }") return end
  local groups, blocks = {}, {}
  for i, b in ipairs(bb:get("blocks")) do blocks[i] = map_block(b, groups) end
  if #blocks == 0 then bb:err(nil, "the backbone needs blocks") end
  model.blocks = blocks
  local outputs, concat = bb:get("output_blocks"), bb:get("concat_blocks")
  if #outputs > 0 then model.outputs = util.deep_copy(outputs) elseif #concat > 0 then model.concat = util.deep_copy(concat) end
  local names = util.sorted_keys(groups)
  for _, g in ipairs(names) do
    if not er.st.group_by_name[g] then mc:err("backbone", "the backbone reads feature group '%s', which model_config does not define", g) end
  end
  er.read_groups(names)
end

return backbone
