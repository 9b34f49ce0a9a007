-- mtl.config.easyrec.sequence: EasyRec's SequenceFeature mapped onto an mtl
-- sequence feature (docs/features.md) and its column onto a seq column.
--
--   sequence.feature(x)    the FEATURES entry of mtl.config.easyrec.data
--
-- As EasyRec's feature_column.py and input.py read them:
--   sub_feature_type IdFeature (default): ids hashed (hash_bucket_size), from
--     a vocabulary (vocab_list, vocab_file) or used as rows (num_buckets);
--   sub_feature_type RawFeature: numbers bucketized by boundaries, or by
--     num_buckets equal buckets of [min_val, max_val] (EasyRec normalizes the
--     value and cuts [0, 1] at k / num_buckets: the same boundaries
--     min_val + (max_val - min_val) k / num_buckets here), or, with neither,
--     projected: the raw_input_dim numbers of a step times raw_input_dim
--     learned vectors, the sequence padded to sequence_length;
--   separator between steps, seq_multi_sep between the values of a step
--   (pooled by combiner), max_seq_len cuts sequences to their first steps.
-- Takes x = {st, fc, f, name, ftype, inputs, dim} (see data.lua) and the
-- helpers h = {need_dim, table_size, use_column, no}; fills x.f.spec.
local util = require "mtl.config.util"

local sequence = {}

-- seq_multi_sep -> the step separator (one character).
local function step_separator(fc)
  if not fc:has("seq_multi_sep") then return nil end
  local s = fc:get("seq_multi_sep")
  if #s ~= 1 then fc:unsupported_value("seq_multi_sep", "mtl's reader splits the values of a step on one character") end
  return s
end

-- RawFeature sub-type: boundaries, equal buckets of [min_val, max_val], or a projection.
local function raw_values(x, h)
  local fc, spec = x.fc, x.f.spec
  if fc:get("hash_bucket_size") > 0 then
    fc:verr("hash_bucket_size", nil, "a SequenceFeature with sub_feature_type RawFeature cannot hash (EasyRec asserts sub_feature_type IdFeature for hash_bucket_size)")
    return
  end
  for _, k in ipairs({ "vocab_list", "vocab_file" }) do h.no(fc, k, "a RawFeature sequence holds numbers") end
  fc.used.hash_bucket_size = true
  local bounds, n = fc:get("boundaries"), fc:get("num_buckets")
  local lo, hi = fc:get("min_val"), fc:get("max_val")
  if #bounds > 0 then
    spec.boundaries = util.deep_copy(bounds)
    table.sort(spec.boundaries)
    fc.used.num_buckets, fc.used.min_val, fc.used.max_val = true, true, true
  elseif n > 1 and hi > lo then
    spec.boundaries = {}
    for k = 0, n - 1 do spec.boundaries[k + 1] = lo + (hi - lo) * k / n end
  elseif n > 1 then
    fc:unsupported("num_buckets", "a RawFeature sequence with num_buckets needs max_val > min_val (its equal buckets)")
  else
    spec.raw_dim = fc:get("raw_input_dim")
    spec.length = fc:get("sequence_length")
    fc.used.min_val, fc.used.max_val = true, true
  end
  return "float"
end

function sequence.feature(x, h)
  local fc, spec, inputs = x.fc, x.f.spec, x.inputs
  spec.type = "sequence"
  spec.column = inputs[1]
  h.need_dim(x)
  local sub = fc:get("sub_feature_type")
  local values
  if sub == "IdFeature" then
    local size = h.table_size(x)
    values = size ~= "identity" and "string" or "int"
    if fc:get("min_val") ~= 0 or fc:get("max_val") ~= 0 then
      h.no(fc, fc:has("max_val") and "max_val" or "min_val", "an IdFeature sequence holds ids, not numbers")
    end
  elseif sub == "RawFeature" then
    values = raw_values(x, h)
  else
    fc:unsupported_value("sub_feature_type", "EasyRec's sequences are of IdFeature or RawFeature")
  end
  spec.combiner = fc:get("combiner")
  if fc:has("max_seq_len") and fc:get("max_seq_len") > 0 then spec.max_len = fc:get("max_seq_len") end
  if sub ~= "RawFeature" or spec.boundaries then fc.used.sequence_length, fc.used.raw_input_dim = true, true end
  if fc:has("sequence_combiner") then
    fc:unsupported("sequence_combiner", "mtl reads sequences through a group's sequence_features (DIN attention), not pooled in feature_names")
  end
  h.use_column(x.st, fc, "input_names", 1, inputs[1] or "?", { type = "seq", separator = fc:get("separator"),
    step_separator = step_separator(fc), seq_values = values, why = "a SequenceFeature" })
end

return sequence
