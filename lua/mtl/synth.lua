-- mtl.synth: synthetic data in the 22-column schema of EasyRec's Taobao
-- sample configs (../shared/easyrec-configs: clk, buy, then 20 features), so
-- those pipeline.config files can train and evaluate end to end.
--
--   mtl.synth.taobao{path = "train.csv", rows = 5000, seed = 1[, world_seed = 7]}
--
-- A hidden model makes the labels learnable: users and ad groups have latent
-- factors (dim 4); a click is likelier when they agree, for some positions
-- (pid) and for the user's preferred categories (listed in the user's
-- tag_category_list); a purchase follows a click with a probability that
-- falls with price. Same seeds give the same bytes. No header (CSVInput with
-- input_fields gives the column order), comma separated, tags joined by '|'.
local mtl = require "mtl"

local synth_rows = require "mtl.synth_rows"

local synth = {}

synth.TAOBAO_COLUMNS = {
  "clk", "buy", "pid", "adgroup_id", "cate_id", "campaign_id", "customer", "brand", "user_id",
  "cms_segid", "cms_group_id", "final_gender_code", "age_level", "pvalue_level", "shopping_level",
  "occupation", "new_user_class_level", "tag_category_list", "tag_brand_list", "price",
}

local function sigmoid(x) return 1 / (1 + math.exp(-x)) end

-- A seeded stream of uniforms; a normal draw from one (shared with mtl.synth.rows).
local stream, normal = synth_rows.stream, synth_rows.normal

-- The world: users, ad groups and their factors (shared by train and test).
local function world(world_seed, n_users, n_ads)
  local u = stream(world_seed)
  local w = { users = {}, ads = {}, n_users = n_users, n_ads = n_ads }
  for i = 1, n_users do
    local f = {}
    for k = 1, 4 do f[k] = normal(u) end
    w.users[i] = { f = f, cates = { math.floor(u() * 40), math.floor(u() * 40) }, gender = math.floor(u() * 2) + 1,
                   age = math.floor(u() * 7), seg = math.floor(u() * 20), group = math.floor(u() * 13),
                   pvalue = math.floor(u() * 4), shopping = math.floor(u() * 4), occupation = math.floor(u() * 2),
                   class = math.floor(u() * 5), brands = { math.floor(u() * 200), math.floor(u() * 200) } }
  end
  for i = 1, n_ads do
    local f = {}
    for k = 1, 4 do f[k] = normal(u) end
    w.ads[i] = { f = f, cate = math.floor(u() * 40), campaign = math.floor(u() * 500), customer = math.floor(u() * 300),
                 brand = math.floor(u() * 200), price = math.floor(u() * 50), bias = 0.5 * normal(u) }
  end
  return w
end

function synth.taobao(opts)
  local rows, path = opts.rows or 5000, opts.path or error("mtl.synth.taobao: path is required", 2)
  local w = world(opts.world_seed or 7, opts.users or 500, opts.ads or 800)
  local u = stream(opts.seed or 1)
  local parts = {}
  local clicks, buys = 0, 0
  for _ = 1, rows do
    local ui = math.floor(u() * w.n_users) + 1
    local ai = math.floor(u() * w.n_ads) + 1
    local user, ad = w.users[ui], w.ads[ai]
    local pid = math.floor(u() * 2)
    local dot = 0
    for k = 1, 4 do dot = dot + user.f[k] * ad.f[k] end
    local likes = (ad.cate == user.cates[1] or ad.cate == user.cates[2]) and 1.5 or 0
    local p_click = sigmoid(-2.0 + 0.6 * dot + likes + ad.bias + (pid == 1 and 0.5 or 0))
    local clk = u() < p_click and 1 or 0
    local p_buy = sigmoid(-1.0 + 0.5 * dot - ad.price / 25)
    local buy = (clk == 1 and u() < p_buy) and 1 or 0
    clicks, buys = clicks + clk, buys + buy
    parts[#parts + 1] = table.concat({
      clk, buy, "430548_" .. (1007 + pid), "ad" .. ai, "c" .. ad.cate, "cp" .. ad.campaign, "cu" .. ad.customer,
      "b" .. ad.brand, "u" .. ui, user.seg, user.group, user.gender, user.age, user.pvalue, user.shopping,
      user.occupation, user.class, "c" .. user.cates[1] .. "|c" .. user.cates[2],
      "b" .. user.brands[1] .. "|b" .. user.brands[2], ad.price,
    }, ",")
  end
  parts[#parts + 1] = ""
  require("mtl.sys").write_atomic(path, table.concat(parts, "\n"))
  return { rows = rows, clicks = clicks, buys = buys }
end

-- Rows in the schema of any config (lua/mtl/synth_rows.lua).
synth.rows = synth_rows.write

return synth
