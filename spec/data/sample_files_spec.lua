-- The real sample files of ../shared/data (copied into spec/fixtures/data,
-- see spec/fixtures/README.md), each read with a schema, and the
-- field:feature_id row format. Expected counts and sums were computed from the
-- files with Python's csv module.
local mtl = require "mtl"
local check = require "helpers.check"
local shell = require "helpers.shell"
local ffi = require "ffi"

local FIX = "spec/fixtures/data/"

local function sum(t)
  local s = 0
  for _, v in ipairs(t:values()) do s = s + v end
  return s
end

local function float32(x) return tonumber(ffi.new("float", x)) end

local function ali_ccp_columns()
  local cols = { { name = "click", type = "float" }, { name = "purchase", type = "float" } }
  for _, f in ipairs { "101", "121", "122", "124", "125", "126", "127", "128", "129", "205", "206", "207", "210",
    "216", "508", "509", "702", "853", "301", "109_14", "110_14", "127_14", "150_14" } do
    cols[#cols + 1] = { name = f, type = "int64" }
  end
  for _, f in ipairs { "D109_14", "D110_14", "D127_14", "D150_14", "D508", "D509", "D702", "D853" } do
    cols[#cols + 1] = { name = f, type = "float", group = "dense" }
  end
  return cols
end

local function aliexpress_columns()
  local cols = { { name = "search_id", type = "int64" } }
  for k = 1, 16 do cols[#cols + 1] = { name = "categorical_" .. k, type = "int64" } end
  for k = 1, 63 do cols[#cols + 1] = { name = "numerical_" .. k, type = "float", group = "numerical" } end
  cols[#cols + 1] = { name = "click", type = "float" }
  cols[#cols + 1] = { name = "conversion", type = "float" }
  return cols
end

describe("sample data: ali-ccp (torch-rechub, CSV with header)", function()
  -- file, rows, clicks, purchases, sum of column 205's ids... (max), first D109_14, last D853
  local cases = {
    { "ali_ccp_train_sample.csv", 100, 7, 1 },
    { "ali_ccp_val_sample.csv", 50, 3, 1 },
    { "ali_ccp_test_sample.csv", 50, 2, 1 },
  }
  for _, case in ipairs(cases) do
    it("reads " .. case[1], function()
      local d = mtl.data.read_all { files = FIX .. case[1], header = true, columns = ali_ccp_columns() }
      assert.are.equal(case[2], d.size)
      assert.are.equal(case[3], sum(d.columns.click))
      assert.are.equal(case[4], sum(d.columns.purchase))
      assert.are.equal(case[2], sum(d.columns["101"])) -- every row has 101 = 1
      assert.are.equal(case[2], sum(d.columns["150_14"]))
      assert.are.same({ case[2], 8 }, d.columns.dense:shape())
      assert.are.equal(float32(0.4734), d.columns.dense:get(1, 1))
      assert.are.equal(0, d.columns.dense:get(case[2], 8))
    end)
  end

  it("streams the train file in batches with the same values", function()
    local r = mtl.data.csv { files = FIX .. "ali_ccp_train_sample.csv", header = true, columns = ali_ccp_columns(),
      batch_size = 32 }
    local sizes, clicks = {}, 0
    for b in r:batches() do
      sizes[#sizes + 1] = b.size
      clicks = clicks + sum(b.columns.click)
    end
    assert.are.same({ 32, 32, 32, 4 }, sizes)
    assert.are.equal(7, clicks)
  end)
end)

describe("sample data: aliexpress (torch-rechub and FuxiCTR, CSV with header)", function()
  local cases = {
    -- file, rows, sum of search_id, sum of categorical_7, clicks, conversions, first numerical_25, last numerical_63
    { "aliexpress_train_sample.csv", 100, 67712, 2739, 60, 2, 0.33557800000000004, 0 },
    { "aliexpress_test_sample.csv", 20, 607, 662, 10, 2, 0, 0 },
    { "tiny_train.csv", 100, 32411, 2742, 3, 2, 0.313882, 0.346004 },
    { "tiny_test.csv", 100, 12303, 3260, 6, 1, 0, 0.367046 },
  }
  for _, case in ipairs(cases) do
    it("reads " .. case[1], function()
      local d = mtl.data.read_all { files = FIX .. case[1], header = true, columns = aliexpress_columns() }
      assert.are.equal(case[2], d.size)
      assert.are.equal(case[3], sum(d.columns.search_id))
      assert.are.equal(case[4], sum(d.columns.categorical_7))
      assert.are.equal(case[5], sum(d.columns.click))
      assert.are.equal(case[6], sum(d.columns.conversion))
      assert.are.same({ case[2], 63 }, d.columns.numerical:shape())
      assert.are.equal(float32(case[7]), d.columns.numerical:get(1, 25))
      assert.are.equal(float32(case[8]), d.columns.numerical:get(case[2], 63))
    end)
  end
end)

local FIELDS = { "101", "109_14", "110_14", "127_14", "150_14", "121", "122", "124", "125", "126", "127", "128",
  "129", "205", "206", "207", "210", "216", "508", "509", "702", "853", "301" }

describe("sample data: ali-ccp-fieldfeat (PaddleRec, field:feature_id rows)", function()
  -- {field, number of ids in the file, sum of the ids}
  local per_field = {
    { "101", 10, 120 }, { "109_14", 1170, 556920 }, { "110_14", 3420, 2412810 }, { "121", 10, 100 },
    { "126", 0, 0 }, { "127_14", 2090, 654170 }, { "150_14", 1910, 215830 }, { "205", 10, 8362 },
    { "210", 55, 47683 }, { "301", 10, 50 }, { "508", 8, 6416 }, { "509", 3, 2791 }, { "853", 6, 5406 },
  }
  for _, case in ipairs { { "train.txt", 2, 1 }, { "test.txt", 1, 0 } } do
    it("reads " .. case[1] .. " into one bag per field", function()
      local d = mtl.data.read_all { files = FIX .. "ali-ccp-fieldfeat/" .. case[1], fields = FIELDS, columns = {
        { name = "id", type = "int64" }, { name = "click", type = "float" }, { name = "purchase", type = "float" } } }
      assert.are.equal(10, d.size)
      assert.are.same({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, d.columns.id:values())
      assert.are.equal(case[2], sum(d.columns.click))
      assert.are.equal(case[3], sum(d.columns.purchase))
      for _, f in ipairs(per_field) do
        local bag = d.columns[f[1]]
        assert.are.equal(f[2], bag.ids:numel(), f[1])
        assert.are.equal(f[3], sum(bag.ids), f[1])
        assert.are.equal(11, bag.offsets:numel())
        assert.are.equal(f[2], bag.offsets:get(11))
      end
      local first = d.columns["210"]
      assert.are.same({ 1, 2, 3 }, { first.ids:get(1), first.ids:get(2), first.ids:get(3) })
      assert.are.equal(3, first.offsets:get(2))
      assert.are.equal(963, d.columns["508"].ids:get(8)) -- the last row's only 508 id
    end)
  end
end)

describe("mtl.data.fieldfeat", function()
  local dir = shell.tmpdir()
  local function file(text) return shell.write(dir .. "/ff.txt", text) end
  local cols = { { name = "label", type = "float" } }

  it("groups each field's ids per row, in order, with empty bags for absent fields", function()
    local r = mtl.data.fieldfeat { files = file("1,a:5,b:6,a:7\n0\n1,b:8\n"), columns = cols, fields = { "a", "b", "c" },
      batch_size = 2 }
    local b = r:next()
    assert.are.same({ 5, 7 }, b.columns.a.ids:values())
    assert.are.same({ 0, 2, 2 }, b.columns.a.offsets:values())
    assert.are.same({ 6 }, b.columns.b.ids:values())
    assert.are.same({ 0, 0, 0 }, b.columns.c.offsets:values())
    b = r:next()
    assert.are.same({ 8 }, b.columns.b.ids:values())
    assert.are.same({ 0, 1 }, b.columns.b.offsets:values())
    assert.is_nil(r:next())
  end)

  it("skips other fields' tokens on request, and takes another field separator", function()
    local d = mtl.data.read_all { files = file("1\tx=1\ta=2\n"), separator = "\t", field_separator = "=", columns = cols,
      fields = { "a" }, unknown_fields = "skip" }
    assert.are.same({ 2 }, d.columns.a.ids:values())
  end)

  local bad = {
    { "1,a:5,zz:1\n", "ff.txt:1:3: expected a token of one of the configured fields, got \"zz:1\"" },
    { "1,a5\n", "ff.txt:1:2: expected a field:feature_id token, got \"a5\"" },
    { "1,a:x\n", "ff.txt:1:2: expected a field:feature_id token, got \"a:x\"" },
    { "1,a:5,\n", "ff.txt:1:3: expected a field:feature_id token, got \"\"" },
    { "x,a:5\n", "ff.txt:1:1: expected a number for column 'label', got \"x\"" },
  }
  for _, case in ipairs(bad) do
    it("reports " .. case[2], function()
      local path = file(case[1])
      local ok, err = pcall(mtl.data.read_all, { files = path, columns = cols, fields = { "a" } })
      assert.is_false(ok)
      assert.are.equal(dir .. "/" .. case[2], err)
    end)
  end

  it("rejects a missing field list", function()
    check.assert_error("mtl.data.fieldfeat: option 'fields' must be a non-empty list of field names",
      mtl.data.fieldfeat, { files = file("1\n"), columns = cols })
  end)
end)
