-- mtl.synth.rows: synthetic rows in the schema of any mtl config (its
-- data.columns, read the way its features read them), with learnable labels:
-- for the specs and the sample table of docs/easyrec.md, so every EasyRec
-- sample config can train on data of its own schema.
--
--   mtl.synth.rows(cfg, {path = "train.csv", rows = 2000, seed = 1[, world_seed = 7]})
--
-- A hidden world of users and items with latent factors (dim 4) and biases
-- makes the labels: the first label is a click, likelier for some users and
-- items, when their factors agree and when the item is in the user's history;
-- the second a purchase after a click; others are coin flips. Each
-- feature column is a user or an item attribute (by a hash of its name): a
-- value derived from that user's or item's index, within what the feature
-- reads (num_buckets, a vocabulary, the span of boundaries). A sequence
-- column is the user's history: items the user liked, each step the value
-- the paired query column (cfg.groups' sequences) has for that item, so
-- target attention finds the candidate among them. Same seeds give the same
-- bytes; no header; data.separator between fields.
local mtl = require "mtl"

local rows = {}

local function sigmoid(x) return 1 / (1 + math.exp(-x)) end

-- A seeded stream of uniforms drawn in blocks from mtl's generator.
local function stream(seed)
  mtl.seed(seed)
  local buf, pos = nil, 1025
  return function()
    if pos > 1024 then buf, pos = mtl.rand(1024):values(), 1 end
    pos = pos + 1
    return buf[pos - 1]
  end
end
rows.stream = stream

-- A standard normal draw from the stream u (Box-Muller).
function rows.normal(u)
  local a, b = u(), u()
  if a < 1e-12 then a = 1e-12 end
  return math.sqrt(-2 * math.log(a)) * math.cos(2 * math.pi * b)
end
local normal = rows.normal

local function name_hash(s)
  local h = 5381
  for i = 1, #s do h = (h * 33 + s:byte(i)) % 2147483647 end
  return h
end

-- How each column is read: {feature spec(s)}, and the query column paired with a sequence column.
local function readers(cfg)
  local by_col, by_name, pair = {}, {}, {}
  for _, f in ipairs(cfg.features or {}) do
    by_name[f.name] = f
    for _, c in ipairs(f.columns or { f.column, f.key }) do
      by_col[c] = by_col[c] or f
    end
  end
  for _, g in ipairs(cfg.groups or {}) do
    for _, q in ipairs(g.sequences or {}) do
      for i, h in ipairs(q.history or {}) do
        local hs, qs = by_name[h], by_name[q.query[((i - 1) % #q.query) + 1]]
        if hs and qs and qs.column then pair[hs.column] = qs.column end
      end
    end
  end
  return by_col, pair
end

-- The world: factors of users and items, shared by every file of one world_seed.
local function world(seed, n_users, n_items)
  local u = stream(seed)
  local w = { users = {}, items = {}, bias = {}, user_bias = {} }
  for i = 1, n_users do
    w.users[i] = { normal(u), normal(u), normal(u), normal(u) }
    w.user_bias[i] = 0.7 * normal(u)
  end
  for i = 1, n_items do
    w.items[i] = { normal(u), normal(u), normal(u), normal(u) }
    w.bias[i] = 0.7 * normal(u)
  end
  return w
end

local function dot(a, b) return a[1] * b[1] + a[2] * b[2] + a[3] * b[3] + a[4] * b[4] end

-- The value entity e (a user or item index) has in column col, as text.
local function value_text(col, f, e, u)
  local n = f and (f.num_buckets or (f.vocab and #f.vocab) or (f.hash_bucket_size and math.min(f.hash_bucket_size, 5000))) or 60
  local k = (e * 7 + name_hash(col.name)) % n
  if f and f.vocab then return tostring(f.vocab[k + 1]) end
  local b = f and f.boundaries
  if col.type == "float" or col.values == "float" then
    if b then return string.format("%.4g", b[1] + (b[#b] - b[1]) * ((k + u()) / n)) end
    return string.format("%.4g", k / 10 + u())
  end
  if col.type == "int" or col.type == "int64" or col.values == "int64" then return tostring(k) end
  return col.name:sub(1, 2) .. k
end

-- The text of item's value in the query column paired with a sequence
-- column, when the sequence can hold it (strings, or integers from integers).
local function paired_text(col, ctx, pairs_with, item, u)
  local src = pairs_with and ctx.cols[pairs_with]
  if not src or col.values == "float" then return nil end
  local int_src = src.type == "int" or src.type == "int64"
  if col.values == "int64" and not int_src then return nil end
  return value_text(src, ctx.by_col[pairs_with], item, u)
end

-- A sequence (or bag) column: the user's history of liked items.
local function history_text(col, f, ctx, user, u)
  local steps, liked = {}, ctx.liked[user]
  local n = math.min(#liked, 1 + user % 6, f and f.length or math.huge) -- one length per user
  for s = 1, n do
    local per = f and f.raw_dim or (col.step_separator and 1 + math.floor(u() * 2) or 1)
    local vals = {}
    for j = 1, per do
      local item = liked[s] + j - 1
      local numeric = f and (f.raw_dim or f.boundaries)
      vals[j] = (not numeric and paired_text(col, ctx, ctx.pair[col.name], item, u)) or value_text(col, f, item, u)
    end
    steps[s] = table.concat(vals, col.step_separator or ";")
  end
  return table.concat(steps, col.separator or "|")
end

-- One row's fields.
local function row_fields(cfg, ctx, user, item, labels, u)
  local out = {}
  for i, col in ipairs(cfg.data.columns) do
    local f = ctx.by_col[col.name]
    if labels[col.name] then
      out[i] = tostring(labels[col.name])
    elseif col.type == "seq" or col.type == "ids" or col.type == "multi" then
      out[i] = history_text(col, f, ctx, user, u)
    elseif col.type == "kv" then
      out[i] = string.format("%s:%.3g", value_text({ name = col.name, type = col.values == "string" and "string" or "int" },
        f, item, u), u())
    else
      local on_item = ctx.queries[col.name] or name_hash(col.name) % 2 == 1
      out[i] = value_text(col, f, on_item and item or user, u)
    end
  end
  return out
end

-- Writes opts.rows rows of cfg's schema to opts.path; returns {rows, clicks, buys}.
function rows.write(cfg, opts)
  local n_rows = opts.rows or 2000
  local path = opts.path or error("mtl.synth.rows: path is required", 2)
  local w = world(opts.world_seed or 7, opts.users or 200, opts.items or 200)
  local by_col, pair = readers(cfg)
  local cols = {}
  for _, c in ipairs(cfg.data.columns) do cols[c.name] = c end
  local liked, likes = {}, {}
  for ui, uf in ipairs(w.users) do -- each user's history: items it likes
    local l, set = {}, {}
    for k = 1, #w.items do
      local it = ((k * 7 + ui * 13) % #w.items) + 1
      if dot(uf, w.items[it]) > 1 and #l < 8 then l[#l + 1], set[it] = it, true end
    end
    liked[ui], likes[ui] = l, set
  end
  local queries = {}
  for _, q in pairs(pair) do queries[q] = true end
  local ctx = { by_col = by_col, pair = pair, cols = cols, liked = liked, queries = queries }
  local u = stream(opts.seed or 1)
  local out = {} -- the rows, written whole at the end (mtl.sys.write_atomic)
  local clicks, buys = 0, 0
  local sep = cfg.data.separator or ","
  local names = cfg.data.labels or {}
  local m = cfg.model or {}  -- the click and the purchase: ESMM's ctr and cvr, else the first two labels
  local click = type(m.ctr) == "table" and m.ctr.label or names[1]
  local purchase = type(m.cvr) == "table" and m.cvr.label or names[2]
  for _ = 1, n_rows do
    local user = math.floor(u() * #w.users) + 1
    local item = math.floor(u() * #w.items) + 1
    local d = dot(w.users[user], w.items[item])
    local seen = likes[user][item] and 1.5 or 0 -- the candidate is in the user's history
    local clk = u() < sigmoid(-1.5 + 0.4 * d + w.bias[item] + w.user_bias[user] + seen) and 1 or 0
    local buy = (clk == 1 and u() < sigmoid(-0.5 + 0.6 * d)) and 1 or 0
    local labels = {}
    for _, l in ipairs(names) do labels[l] = l == click and clk or l == purchase and buy or (u() < 0.5 and 1 or 0) end
    clicks, buys = clicks + clk, buys + buy
    local fields = row_fields(cfg, ctx, user, item, labels, u)
    for i, v in ipairs(fields) do
      if v:find(sep, 1, true) or v:find('"', 1, true) then fields[i] = '"' .. v:gsub('"', '""') .. '"' end
    end
    out[#out + 1] = table.concat(fields, sep) .. "\n"
  end
  require("mtl.sys").write_atomic(path, table.concat(out))
  return { rows = n_rows, clicks = clicks, buys = buys }
end

return rows
