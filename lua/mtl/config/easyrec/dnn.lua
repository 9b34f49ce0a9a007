-- mtl.config.easyrec.dnn: EasyRec's DNN message (dnn.proto), the layers of
-- its towers, experts, bottoms and attention MLPs, mapped onto an mtl "mlp"
-- option {hidden =, batch_norm =, activation =, dropout =} (nn.MLP), as
-- easy_rec/python/layers/dnn.py builds it: per layer dense -> batch
-- normalization (use_bn, default true) -> activation -> dropout
-- (dropout_ratio[i], in training).
--
--   dnn.map(obj)          a DNN object -> the mlp option ({hidden = {}} without one)
--   dnn.activation(obj, field)   EasyRec's activation name -> mtl's, or nil (reported)
--   dnn.same(a, b)        two mapped DNNs are equal
local util = require "mtl.config.util"

local dnn = {}

-- EasyRec's activation names (utils/activation.py: short names lowercased,
-- else a Python path) -> mtl's (mtl.config.check.ACTIVATIONS). EasyRec's own
-- gelu is the tanh form; TF's tf.nn.gelu the exact one; TF's leaky_relu
-- slope is 0.2.
local ACTIVATION = {
  relu = "relu", linear = "linear", gelu = "gelu_tanh", leaky_relu = "leaky_relu:0.2", prelu = "prelu",
  dice = "dice", elu = "elu", selu = "selu", tanh = "tanh", swish = "swish", sigmoid = "sigmoid",
  ["tf.nn.relu"] = "relu", ["tf.nn.relu6"] = "relu6", ["tf.nn.elu"] = "elu", ["tf.nn.selu"] = "selu",
  ["tf.nn.gelu"] = "gelu", ["tf.nn.leaky_relu"] = "leaky_relu:0.2", ["tf.nn.sigmoid"] = "sigmoid",
  ["tf.sigmoid"] = "sigmoid", ["tf.math.sigmoid"] = "sigmoid", ["tf.nn.tanh"] = "tanh", ["tf.tanh"] = "tanh",
  ["tf.math.tanh"] = "tanh", ["tf.nn.swish"] = "swish", ["tf.nn.silu"] = "swish", ["tf.nn.softplus"] = "softplus",
  ["tf.math.softplus"] = "softplus", ["tf.nn.softsign"] = "softsign", ["tf.math.softsign"] = "softsign",
}
dnn.ACTIVATIONS = ACTIVATION

function dnn.activation(obj, field)
  local name = obj:get(field)
  local mapped = ACTIVATION[name] or ACTIVATION[name:lower():match("^[%w_]+$") and name:lower() or ""]
  if not mapped then
    obj:unsupported_value(field, "mtl's activations are EasyRec's " .. table.concat(util.sorted_keys(ACTIVATION), ", "))
  end
  return mapped
end

-- obj's hidden_units, each checked positive.
local function hidden(obj)
  local sizes = util.deep_copy(obj:get("hidden_units"))
  for i, h in ipairs(sizes) do
    if h < 1 then obj:verr("hidden_units", i, "'%s' must be positive, got %s", obj:field_path("hidden_units", i), util.show(h)) end
  end
  return sizes
end

-- dropout_ratio: EasyRec reads dropout_ratio[i] for layer i when the list is set.
local function dropout(obj, n)
  local ratios = obj:get("dropout_ratio")
  if #ratios == 0 then return nil end
  if #ratios < n then
    obj:verr("dropout_ratio", nil, "'%s' has %d entries for %d hidden_units (EasyRec reads one per layer)",
      obj:field_path("dropout_ratio"), #ratios, n)
  end
  for i, r in ipairs(ratios) do
    if not (r >= 0 and r < 1) then obj:verr("dropout_ratio", i, "'%s' must be in [0, 1), got %s", obj:field_path("dropout_ratio", i), util.show(r)) end
  end
  local out = {}
  for i = 1, n do out[i] = ratios[i] or 0 end
  return out
end

function dnn.map(obj)
  if not obj then return { hidden = {} } end
  local out = { hidden = hidden(obj), batch_norm = obj:get("use_bn") }
  local act = dnn.activation(obj, "activation")
  if act ~= "relu" then out.activation = act end
  out.dropout = dropout(obj, #out.hidden)
  return out
end

function dnn.same(a, b)
  local function eq(x, y)
    if type(x) ~= type(y) then return false end
    if type(x) ~= "table" then return x == y end
    for k, v in pairs(x) do if not eq(v, y[k]) then return false end end
    for k in pairs(y) do if x[k] == nil then return false end end
    return true
  end
  return eq(a, b)
end

return dnn
