-- Feature columns: fitted bin edges against hand-computed ones, each feature
-- type's output against independently computed values, shared tables, and
-- the transform surviving save -> load unchanged.
local mtl = require "mtl"
local features = require "mtl.features"
local check = require "helpers.check"
local write = require("helpers.shell").write

local tmp = os.tmpname()
local csv = write(tmp .. ".csv", table.concat({
  "is_click,user,cate,price,tags,stats",
  "1,7,3,10,1|2|2,3:0.5|4:1.5",
  "0,8,3,20,5,4:2.5",
  "1,7,4,30,,3:1|4:7",
  "0,9,4,40,2|5,",
}, "\n") .. "\n")

local data = {
  columns = {
    { name = "is_click", type = "float" }, { name = "user", type = "int" }, { name = "cate", type = "int" },
    { name = "price", type = "float" }, { name = "tags", type = "ids", separator = "|", default = "" },
    { name = "stats", type = "kv", separator = "|", default = "" },
  },
  labels = { "is_click" },
}

describe("mtl.features", function()
  it("computes equal-width, equal-frequency and adaptive bin edges", function()
    assert.are.same({ 2.5, 5, 7.5 }, features.equal_width_edges(0, 10, 4))
    assert.are.same({}, features.equal_width_edges(3, 3, 4))
    -- 10 sorted values, 4 bins: cuts after the 2nd, 5th and 7th value
    assert.are.same({ 3, 6, 8 }, features.equal_freq_edges({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, 4))
    -- repeated values give no empty bins
    assert.are.same({ 2 }, features.equal_freq_edges({ 1, 1, 1, 2, 2, 2 }, 3))
    -- a label that flips at 11 and back at 21: the tree-like splits find both
    local v, y = {}, {}
    for i = 1, 30 do v[i], y[i] = i, (i > 10 and i <= 20) and 1 or 0 end
    assert.are.same({ 11, 21 }, features.adaptive_edges(v, y, 8, 0.05))
    -- a pure label gives no split at all
    for i = 1, 30 do y[i] = 1 end
    assert.are.same({}, features.adaptive_edges(v, y, 8, 0.05))
  end)

  it("builds embeddings, bags, crosses, lookups and numbers into one input", function()
    mtl.seed(3)
    local F = features.new({
      { name = "user", type = "id", column = "user", num_buckets = 10, dim = 4 },
      { name = "cate", type = "id", column = "cate", hash_bucket_size = 50, dim = 3 },
      { name = "tags", type = "tag", column = "tags", num_buckets = 6, dim = 4, combiner = "sum" },
      { name = "user_x_cate", type = "combo", columns = { "user", "cate" }, hash_bucket_size = 64, dim = 2 },
      { name = "price_z", type = "raw", column = "price", normalize = "zscore" },
      { name = "cate_stat", type = "lookup", column = "stats", key = "cate", missing = -1 },
      { name = "price_bin", type = "raw", column = "price", boundaries = { 15, 35 }, dim = 2 },
    }, data)
    F:fit({ csv })
    F:build()
    assert.are.equal(4 + 3 + 4 + 2 + 2 + 2, F.output_dim)
    local st = F.fitted.price
    check.assert_close(st.mean, 25, 1e-12)
    check.assert_close(st.std, math.sqrt(125), 1e-12)
    local r = mtl.data.csv(F:reader_options({ csv }, 4))
    local batch = r:next()
    local x = F(batch)
    assert.are.same({ 4, 17 }, x:shape())
    local xv = x:values()
    local function row(i, from, n)
      local out = {}
      for k = 1, n do out[k] = xv[(i - 1) * 17 + from + k - 1] end
      return out
    end
    -- user ids are rows of the fixed table
    check.assert_close(row(1, 1, 4), F.tables.user:get(7), 0)
    check.assert_close(row(2, 1, 4), F.tables.user:get(8), 0)
    -- tags summed: row 1 has 1, 2, 2
    local t1, t2 = F.tables.tags:get(1):values(), F.tables.tags:get(2):values()
    local e = {}
    for k = 1, 4 do e[k] = t1[k] + 2 * t2[k] end
    check.assert_close(row(1, 8, 4), e, 1e-6)
    check.assert_close(row(3, 8, 4), { 0, 0, 0, 0 }, 0) -- empty bag
    -- numbers come last: z-scored price, then the stat of the row's cate (absent: missing = -1)
    check.assert_close({ xv[16], xv[17] }, { (10 - 25) / math.sqrt(125), 0.5 }, 1e-6)
    check.assert_close({ xv[17 * 2 - 1], xv[17 * 2] }, { (20 - 25) / math.sqrt(125), -1 }, 1e-6)
    check.assert_close(xv[17 * 3], 7, 1e-6)
    -- price buckets: 10 -> 0, 20 -> 1, 30 -> 1, 40 -> 2
    check.assert_close(row(1, 14, 2), F.tables.price_bin:get(0), 0)
    check.assert_close(row(3, 14, 2), F.tables.price_bin:get(1), 0)
    check.assert_close(row(4, 14, 2), F.tables.price_bin:get(2), 0)
    -- the cross of (7, 3) is the same id wherever it appears: rows 1 and 3 differ (cate 3 vs 4)
    assert.are_not.same(row(1, 12, 2), row(3, 12, 2))
    r:close()
  end)

  it("shares one table between features and sends both features' gradients to it", function()
    mtl.seed(4)
    local F = features.new({
      { name = "user", type = "id", column = "user", num_buckets = 10, dim = 3 },
      { name = "cate", type = "id", column = "cate", shared = "user" },
    }, data)
    F:build()
    assert.are.equal(F.tables.user, F.tables.cate)
    assert.are.equal(1, #F:embedding_tables())
    local r = mtl.data.csv(F:reader_options({ csv }, 4))
    local x = F(r:next())
    mtl.sum(x):backward()
    local g_ids = F.tables.user:grad()
    -- users 7, 8, 9 and categories 3, 4 all received gradient rows
    local ids = {}
    for _, id in ipairs(g_ids:values()) do ids[#ids + 1] = id end
    table.sort(ids)
    assert.are.same({ 3, 4, 7, 8, 9 }, ids)
    r:close()
  end)

  it("gives the same transform after save and load", function()
    mtl.seed(5)
    local specs = {
      { name = "user", type = "id", column = "user", num_buckets = 10, dim = 4 },
      { name = "price_q", type = "raw", column = "price", bins = { method = "equal_freq", n = 3 }, dim = 2 },
      { name = "price_z", type = "raw", column = "price", normalize = "zscore" },
    }
    local F = features.new(specs, data):fit({ csv }):build()
    local path = tmp .. ".ckpt"
    mtl.save(path, F:state())
    mtl.seed(99) -- different initial tables: load must overwrite them
    local G = features.new(specs, data)
    G:load_state(mtl.load(path))
    local a = F(mtl.data.csv(F:reader_options({ csv }, 4)):next())
    local b = G(mtl.data.csv(G:reader_options({ csv }, 4)):next())
    check.assert_close(b, a, 0)
    os.remove(path)
  end)

  it("maps vocabularies (integers, strings, a file) to rows, with row 0 for unknown values", function()
    local path = write(tmp .. "_v.csv", "y,city,cate\n1,paris,3\n0,oslo,4\n1,rome,9\n")
    local vfile = write(tmp .. "_v.txt", "oslo\nparis\n")
    local d = { columns = { { name = "y", type = "float" }, { name = "city", type = "string" }, { name = "cate", type = "int" } },
                labels = { "y" } }
    mtl.seed(6)
    local F = features.new({
      { name = "cate", type = "id", column = "cate", vocab = { 4, 3 }, dim = 2 },
      { name = "city", type = "id", column = "city", vocab = { "rome", "paris" }, dim = 2 },
      { name = "city_file", type = "id", column = "city", vocab_file = vfile, dim = 2 },
    }, d):build()
    assert.are.equal(3, F.tables.cate:rows())
    local x = F(mtl.data.csv(F:reader_options({ path }, 3)):next()):values()
    local function at(r, c) return { x[(r - 1) * 6 + c], x[(r - 1) * 6 + c + 1] } end
    -- integer keys sorted: 3 -> row 1, 4 -> row 2, 9 unknown -> row 0
    check.assert_close(at(1, 1), F.tables.cate:get(1), 0)
    check.assert_close(at(2, 1), F.tables.cate:get(2), 0)
    check.assert_close(at(3, 1), F.tables.cate:get(0), 0)
    -- strings: paris and rome known, oslo unknown (row 0)
    check.assert_close(at(2, 3), F.tables.city:get(0), 0)
    assert.are_not.same(at(1, 3), at(2, 3))
    assert.are_not.same(at(3, 3), at(2, 3))
    -- the file's vocabulary: rome unknown
    check.assert_close(at(3, 5), F.tables.city_file:get(0), 0)
    assert.are_not.same(at(1, 5), at(3, 5))
    os.remove(path)
    os.remove(vfile)
  end)

  it("reports configuration mistakes clearly", function()
    check.assert_error("mtl.features: feature 1 (u): unknown type 'idd'", features.new,
      { { name = "u", type = "idd", column = "user" } }, data)
    check.assert_error("mtl.features: feature 1 (u): column 'usr' is not in data.columns", features.new,
      { { name = "u", type = "id", column = "usr", num_buckets = 3 } }, data)
    check.assert_error("mtl.features: feature 1 (u): needs num_buckets, hash_bucket_size or vocab", features.new,
      { { name = "u", type = "id", column = "user" } }, data)
    check.assert_error("mtl.features: feature 1 (u): unknown key 'dims'", features.new,
      { { name = "u", type = "id", column = "user", num_buckets = 3, dims = 4 } }, data)
    check.assert_error("mtl.features: feature 'c' shares the table of unknown feature 'zz'", features.new,
      { { name = "c", type = "id", column = "cate", shared = "zz" } }, data)
  end)
end)
