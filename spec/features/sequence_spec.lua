-- Sequence features (padded step embeddings), feature groups (features,
-- DIN over sequences, variational dropout) and their config checks.
local mtl = require "mtl"
local nn = require "mtl.nn"
local features = require "mtl.features"
local config = require "mtl.config"
local check = require "helpers.check"

local shell = require "helpers.shell"

local dir = shell.tmpdir()
local function write(name, text) return shell.write(dir .. "/" .. name, text) end

-- One batch of every row of text through F's reader.
local function batch_of(F, path)
  local r = mtl.data.csv(F:reader_options({ path }, 100))
  local b = r:next()
  r:close()
  return b
end

local DATA = {
  columns = {
    { name = "y", type = "float" }, { name = "user", type = "int" }, { name = "brand", type = "int" },
    { name = "hist", type = "seq", step_separator = ";", default = "" },
    { name = "prices", type = "seq", values = "float", default = "" }, { name = "price", type = "float" },
  },
  labels = { "y" },
}
local ROWS = "y,user,brand,hist,prices,price\n1,1,2,2;3|4|2,5|25|15,1.5\n0,2,4,,,2\n1,3,3,3,40,0.5\n"

describe("core.seq_pad", function()
  local off = mtl.tensor({ 0, 3, 3, 4 }, "int64")

  it("pads every row to the longest, with the 1-based step numbers and S + 1 at padding", function()
    local index, mask = mtl.core.seq_pad(off)
    assert.are.same({ 1, 2, 3, 5, 5, 5, 4, 5, 5 }, index:values())
    assert.are.same({ { 1, 1, 1 }, { 0, 0, 0 }, { 1, 0, 0 } }, mask:totable())
  end)

  it("cuts to max_len, or pads to a fixed length", function()
    local index, mask = mtl.core.seq_pad(off, 0, 2)
    assert.are.same({ 1, 2, 5, 5, 4, 5 }, index:values())
    assert.are.same({ 3, 2 }, mask:shape())
    index = mtl.core.seq_pad(off, 4)
    assert.are.same({ 1, 2, 3, 5, 5, 5, 5, 5, 4, 5, 5, 5 }, index:values())
  end)

  it("names bad offsets", function()
    check.assert_error("mtl.seq_pad: offsets must not decrease (row 2)", mtl.core.seq_pad, mtl.tensor({ 0, 2, 1 }, "int64"))
    check.assert_error("mtl.seq_pad: the offsets must be int64, got float32", mtl.core.seq_pad, mtl.tensor { 0, 1 })
  end)
end)

describe("sequence features", function()
  local path = write("rows.csv", ROWS)
  local specs = {
    { name = "user", type = "id", column = "user", num_buckets = 10, dim = 4 },
    { name = "brand", type = "id", column = "brand", num_buckets = 10, dim = 4 },
    { name = "hist", type = "sequence", column = "hist", shared = "brand", dim = 4, combiner = "sum" },
    { name = "prices", type = "sequence", column = "prices", boundaries = { 10, 20, 30 }, dim = 4, max_len = 2 },
    { name = "proj", type = "sequence", column = "prices", raw_dim = 1, length = 2, dim = 4 },
    { name = "price", type = "raw", column = "price", dim = 4 },
  }
  local groups = { { name = "all", features = { "user", "brand", "price" },
                     sequences = { { name = "s", query = { "brand" }, history = { "hist" }, attention = { hidden = { 3, 1 } } } } } }
  mtl.seed(5)
  local F = features.new(specs, DATA, groups)
  F:build()
  local b = batch_of(F, path)
  local brand = F.tables.brand
  local function row(t, id) return t:lookup(mtl.tensor({ id }, "int64")):values() end

  it("embeds each step, pooling its values, and pads with zeros", function()
    local h, mask = F:sequence(F.by_name.hist, b.columns)
    assert.are.same({ 3, 3, 4 }, h:shape())
    assert.are.same({ { 1, 1, 1 }, { 0, 0, 0 }, { 1, 0, 0 } }, mask:totable())
    local H = h:totable()
    local r2, r3, r4 = row(brand, 2), row(brand, 3), row(brand, 4)
    for k = 1, 4 do
      check.assert_close(H[1][1][k], r2[k] + r3[k], 1e-6, "step 2;3 (sum)")
      check.assert_close(H[1][2][k], r4[k], 1e-6, "step 4")
      check.assert_close(H[3][1][k], r3[k], 1e-6, "row 3")
      assert.are.equal(0, H[2][1][k])
    end
  end)

  it("bucketizes numbers by boundaries and cuts to max_len", function()
    local h, mask = F:sequence(F.by_name.prices, b.columns)
    assert.are.same({ 3, 2, 4 }, h:shape())                   -- row 1 has 3 steps, cut to 2
    local t = F.tables.prices
    check.assert_close(h:totable()[1][2], row(t, 2), 1e-6, "25 is in bucket 2 (20 <= 25 < 30)")
    check.assert_close(h:totable()[3][1], row(t, 3), 1e-6, "40: the last bucket")
    assert.are.same({ { 1, 1 }, { 0, 0 }, { 1, 0 } }, mask:totable())
  end)

  it("projects raw numbers on a learned vector and pads to a fixed length that counts as steps", function()
    local h, mask = F:sequence(F.by_name.proj, b.columns)
    local w = row(F.tables.proj, 0)
    for k = 1, 4 do check.assert_close(h:totable()[1][2][k], 25 * w[k], 1e-5, "25 w") end
    assert.are.same({ { 1, 1 }, { 1, 1 }, { 1, 1 } }, mask:totable())
  end)

  it("a raw feature with dim is its value times a learned vector", function()
    local w = row(F.tables.price, 0)
    check.assert_close(F:value(F.by_name.price, b.columns):totable()[1], { 1.5 * w[1], 1.5 * w[2], 1.5 * w[3], 1.5 * w[4] }, 1e-6)
  end)

  it("makes a group's x from its features and the DIN block over its sequences", function()
    assert.are.equal(4 + 4 + 4 + (4 + 4), F.output_dim)       -- user, brand, price, DIN [pooled ; query]
    local xs, lists = F:groups(b)
    assert.are.same({ 3, 20 }, xs.all:shape())
    assert.are.equal(4, #lists.all)
    local h, mask = F:sequence(F.by_name.hist, b.columns)
    local din = F.feature_groups.din_all_s
    check.assert_close(lists.all[4], din(F:value(F.by_name.brand, b.columns), h, mask), 1e-6)
    check.assert_close(F(b), xs.all, 0)
  end)

  it("refuses what cannot be read", function()
    check.assert_error("mtl.features: sequence feature 'hist' is read through a group's sequences (attention): give groups",
      features.new, specs, DATA)
    local bad = features.new(specs, DATA, { { name = "g", features = { "hist" } } })
    check.assert_error("mtl.features: group 'g': sequence feature 'hist' is read through sequences (attention)", bad.build, bad)
    bad = features.new(specs, DATA, { { name = "g", sequences = { { name = "s", query = { "user" }, history = { "user" } } } } })
    check.assert_error("mtl.features: group 'g', sequence 's': history feature 'user' is not a sequence", bad.build, bad)
  end)

  it("gives a group's z-scored and plain numbers from the reader's grouped lanes", function()
    local G = features.new({ { name = "user", type = "id", column = "user", num_buckets = 10, dim = 2 },
                             { name = "z", type = "raw", column = "price", normalize = "zscore" } }, DATA,
      { { name = "g", features = { "z", "user" } } })
    G:fit({ path })
    G:build()
    local xs, lists = G:groups(batch_of(G, path))
    local st = G.fitted.price
    check.assert_close({ (1.5 - st.mean) / st.std, (2 - st.mean) / st.std, (0.5 - st.mean) / st.std },
      lists.g[1]:reshape(3):values(), 1e-6)
    assert.are.same({ 3, 3 }, xs.g:shape())
  end)

  it("is not exported to ONNX yet: the exporter names the group", function()
    local g = require("mtl.onnx.graph").new("t")
    check.assert_error("mtl.onnx: group 'all' attends over sequences (DIN); such groups are not exported",
      require("mtl.onnx.features").build, g, F)
  end)
end)

describe("nn.VariationalDropout", function()
  mtl.seed(2)
  local vd = nn.VariationalDropout { dims = { 2, 1 }, lambda = 0.5 }
  local x = mtl.randn(4, 3)

  it("scales by the keep rate 1 - sigmoid(logit_p) in evaluation, per feature", function()
    vd:eval()
    local p = mtl.sigmoid(vd.logit_p):values()
    local y = vd(x):totable()
    local X = x:totable()
    for i = 1, 4 do
      check.assert_close(y[i], { X[i][1] * (1 - p[1]), X[i][2] * (1 - p[1]), X[i][3] * (1 - p[2]) }, 1e-6)
    end
    check.assert_close(vd:aux_loss(), 0.5 / 4 * ((1 - p[1]) + (1 - p[2])), 1e-6, "penalty")
    check.assert_close(vd:keep_rates(), { 1 - p[1], 1 - p[2] }, 1e-6)
    check.gradcheck(function(lp)
      rawset(vd, "logit_p", lp)
      local out = vd(x) + vd:aux_loss()
      return out
    end, { vd.logit_p })
  end)

  it("multiplies by a relaxed Bernoulli keep mask in training, one per feature and row", function()
    vd:train()
    local y, X = vd(x):totable(), x:totable()
    for i = 1, 4 do
      local k1, k2 = y[i][1] / X[i][1], y[i][3] / X[i][3]
      assert.is_true(k1 >= 0 and k1 <= 1 and k2 >= 0 and k2 <= 1)
      check.assert_close(y[i][2] / X[i][2], k1, 1e-4, "one mask per feature")
    end
  end)
end)

describe("config: groups", function()
  local function cfg(groups, feats)
    return { data = { train = "t.csv", columns = DATA.columns, labels = { "y" } },
             features = feats or { { name = "brand", type = "id", column = "brand", num_buckets = 10 },
                                   { name = "hist", type = "sequence", column = "hist", num_buckets = 10 } },
             groups = groups, model = { name = "mmoe", tasks = { { name = "y" } } } }
  end

  it("checks groups and sequence features, naming each key", function()
    local ok, err = pcall(config.validate, cfg({ { name = "all", features = { "hist", "nope" },
      sequences = { { name = "s", query = { "brand" }, history = { "brand" }, transform = "wide" } } } }))
    assert.is_false(ok)
    assert.are.equal(table.concat({
      "config: 'groups.1.features.1': feature 'hist' is a sequence; a group reads sequences through 'sequences' (attention)",
      "config: 'groups.1.features.2': no feature is named 'nope'",
      "config: 'groups.1.sequences.1.history.1': feature 'brand' is not a sequence (type 'id')",
      "config: 'groups.1.sequences.1.transform' must be 'pad', 'dense' or 'auto', got \"wide\"",
    }, "\n"), err)
    ok, err = pcall(config.validate, cfg(nil))
    assert.are.equal("config: feature 'hist' is a sequence: it is read by a group's sequences (give 'groups')", err)
  end)
end)
