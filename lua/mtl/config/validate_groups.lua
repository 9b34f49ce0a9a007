-- mtl.config.validate_groups: the checks of sequence features and of the
-- `groups` section (docs/config.md), for mtl.config.validate. Each takes the
-- checking context c (mtl.config.check; c.features: name -> feature, filled
-- by the features check) and reports into it.
local util = require "mtl.config.util"

local M = {}

local GROUP_KEYS = { "name", "features", "sequences", "variational_dropout" }
local SEQUENCE_KEYS = { "name", "query", "history", "aux", "attention", "need_query", "transform" }
local ATTENTION_KEYS = { "hidden", "activation", "batch_norm", "dropout" }
local SEQUENCE_ONLY = { "max_len", "length", "raw_dim" }

-- A sequence feature's table and its own keys (sizes: the table-size keys it sets).
function M.sequence_feature(c, f, p, sizes)
  local numeric = {}
  if f.boundaries ~= nil then numeric[#numeric + 1] = "boundaries" end
  if f.raw_dim ~= nil then numeric[#numeric + 1] = "raw_dim" end
  local all = {}
  for _, k in ipairs(sizes) do all[#all + 1] = k end
  for _, k in ipairs(numeric) do all[#all + 1] = k end
  if f.shared == nil and #all == 0 then
    c:err("'%s' (%s) needs one of num_buckets, hash_bucket_size, vocab, vocab_file, boundaries or raw_dim", p,
      tostring(f.name))
  elseif #all > 1 then
    c:err("'%s' (%s) has %s; give only one", p, tostring(f.name), table.concat(all, " and "))
  end
  for _, k in ipairs(SEQUENCE_ONLY) do
    if f[k] ~= nil then c:number(f[k], p .. "." .. k, { int = true, min = 1 }) end
  end
  if f.length ~= nil and f.raw_dim == nil then
    c:err("'%s.length' pads a sequence of projected numbers (raw_dim) to a fixed length; use max_len to cut others", p)
  end
end

-- Keys only sequence features take, on a feature of type t.
function M.sequence_keys(c, f, p, t)
  if t == "sequence" then return end
  for _, k in ipairs(SEQUENCE_ONLY) do
    if f[k] ~= nil then c:err("'%s.%s' is only for sequence features", p, k) end
  end
end

-- A list of feature names, each defined (kind: "sequence" features only, or none of them).
local function names(c, v, path, kind)
  if not c:list(v, path, "a list of feature names") then return end
  for i, n in ipairs(v) do
    local p = path .. "." .. i
    if c:string(n, p, "a feature name") and next(c.features) then
      local f = c.features[n]
      if not f then
        c:err("'%s': no feature is named '%s'%s", p, n, util.did_you_mean(n, c.features))
      elseif kind == "sequence" and f.type ~= "sequence" then
        c:err("'%s': feature '%s' is not a sequence (type '%s')", p, n, tostring(f.type))
      elseif kind ~= "sequence" and f.type == "sequence" then
        c:err("'%s': feature '%s' is a sequence; a group reads sequences through 'sequences' (attention)", p, n)
      end
    end
  end
end

local function check_sequence(c, q, p)
  if not c:table(q, p, "a sequence group {name =, query =, history =}") then return end
  c:keys(q, p, SEQUENCE_KEYS)
  c:string(q.name, p .. ".name", "a name")
  if q.query == nil then c:err("missing required key '%s.query' (the target's features)", p)
  else names(c, q.query, p .. ".query") end
  if q.history == nil then c:err("missing required key '%s.history' (the sequence features)", p)
  else names(c, q.history, p .. ".history", "sequence") end
  if q.aux ~= nil then
    if next(q.aux) == nil then q.aux = {} else names(c, q.aux, p .. ".aux", "sequence") end
  end
  if q.need_query ~= nil then c:boolean(q.need_query, p .. ".need_query") end
  if q.transform ~= nil then c:enum(q.transform, p .. ".transform", { "pad", "dense", "auto" }) end
  local a = q.attention
  if a ~= nil and c:table(a, p .. ".attention", "{hidden =, activation =, batch_norm =, dropout =}") then
    c:keys(a, p .. ".attention", ATTENTION_KEYS)
    if a.hidden ~= nil then c:sizes(a.hidden, p .. ".attention.hidden") end
    if a.batch_norm ~= nil then c:boolean(a.batch_norm, p .. ".attention.batch_norm") end
  end
end

local function check_group(c, g, p, seen)
  if not c:table(g, p, "a group {name =, features =, sequences =}") then return end
  c:keys(g, p, GROUP_KEYS)
  if c:string(g.name, p .. ".name", "a group name") then
    if seen[g.name] then c:err("'%s': group '%s' is listed twice", p, g.name) end
    seen[g.name] = true
  end
  if g.features ~= nil then names(c, g.features, p .. ".features") end
  if g.sequences ~= nil and c:list(g.sequences, p .. ".sequences", "a list of sequence groups", true) then
    local s_seen = {}
    for i, q in ipairs(g.sequences) do
      check_sequence(c, q, p .. ".sequences." .. i)
      if type(q) == "table" and type(q.name) == "string" then
        if s_seen[q.name] then c:err("'%s.sequences.%d': sequence group '%s' is listed twice", p, i, q.name) end
        s_seen[q.name] = true
      end
    end
  end
  if g.features == nil and g.sequences == nil then c:err("'%s' needs features or sequences", p) end
  local v = g.variational_dropout
  if v ~= nil and c:table(v, p .. ".variational_dropout", "{lambda =, per_dim =}") then
    c:keys(v, p .. ".variational_dropout", { "lambda", "per_dim" })
    if v.lambda ~= nil then c:number(v.lambda, p .. ".variational_dropout.lambda", { min = 0 }) end
    if v.per_dim ~= nil then c:boolean(v.per_dim, p .. ".variational_dropout.per_dim") end
  end
end

-- The groups section: nil, or a list of groups. Without groups a sequence
-- feature has nothing to read it.
function M.groups(c, gs)
  if gs == nil then
    for name, f in pairs(c.features or {}) do
      if type(f) == "table" and f.type == "sequence" then
        c:err("feature '%s' is a sequence: it is read by a group's sequences (give 'groups')", name)
      end
    end
    return
  end
  if not c:list(gs, "groups", "a list of feature groups {name =, features =, sequences =}") then return end
  local seen = {}
  for i, g in ipairs(gs) do check_group(c, g, "groups." .. i, seen) end
end

-- A model that reads feature groups only (needs_groups), given none, reads
-- one: "all", every feature (sequences need a group of their own).
function M.default(cfg)
  if cfg.groups ~= nil or type(cfg.features) ~= "table" then return end
  local all = {}
  for _, f in ipairs(cfg.features) do
    if type(f) == "table" and f.type ~= "sequence" then all[#all + 1] = f.name end
  end
  cfg.groups = { { name = "all", features = all } }
end

return M
