-- mtl.data readers: parsing edge cases, values and exact error texts.
-- Expected values are written out by hand; string ids are XXH3-64 hashes,
-- checked against `xxhsum -H3` (Debian's xxhash package).
local mtl = require "mtl"
local check = require "helpers.check"
local ffi = require "ffi"
local shell = require "helpers.shell"

-- file(name, text) writes text to dir/name and returns the path
local dir, file = shell.scratch_dir()

-- read_all of `text` (in dir/t.csv unless opts.name) with these columns.
local function read(text, columns, opts)
  local o = { columns = columns }
  for k, v in pairs(opts or {}) do o[k] = v end
  o.files = file(o.name or "t.csv", text)
  o.name = nil
  return mtl.data.read_all(o)
end

-- The error text of reading `text`, with the file's path replaced by "t.csv".
local function read_error(text, columns, opts)
  local ok, err = pcall(read, text, columns, opts)
  assert(not ok, "expected an error")
  err = tostring(err):gsub("^.-mtl%.data: ", "mtl.data: ")
  return (err:gsub(dir:gsub("%p", "%%%0") .. "/", ""))
end

-- The i-th (1-based) int64 of a tensor as 16 hex digits (exact, unlike Lua numbers).
local function hex(t, i)
  return bit.tohex(ffi.cast("int64_t*", t:data_ptr())[i - 1], 16)
end

local function float32(x) return tonumber(ffi.new("float", x)) end

local function C(name, type, extra)
  local c = { name = name, type = type }
  for k, v in pairs(extra or {}) do c[k] = v end
  return c
end

local XXH3 = { -- printf '<s>' | xxhsum -H3
  [""] = "2d06800538d394c2", abc = "78af5f94892f3950", ["a,b"] = "da4ff4feb37737fe",
  ['say "hi"'] = "f9fe995b6b9e591d", ["ünï"] = "5b3c5b63bb28a1a0",
}

describe("mtl.data.read_all", function()
  it("reads integers, numbers and strings into column tensors", function()
    local d = read("id,price,name\n1,2.5,abc\n-7,-0.5,ünï\n", { C("id", "int64"), C("price", "float"), C("name", "string") },
      { header = true })
    assert.are.equal(2, d.size)
    assert.are.same({ 1, -7 }, d.columns.id:values())
    assert.are.equal("int64", d.columns.id:dtype())
    assert.are.same({ 2.5, -0.5 }, d.columns.price:values())
    assert.are.equal("float32", d.columns.price:dtype())
    assert.are.same({ 2 }, d.columns.name:shape())
    assert.are.equal(XXH3.abc, hex(d.columns.name, 1))
    assert.are.equal(XXH3["ünï"], hex(d.columns.name, 2)) -- UTF-8 bytes hash as they are
    assert.are.equal(XXH3.abc, hex(mtl.data.hash { "abc" }, 1))
    assert.are.equal(XXH3["ünï"], hex(mtl.data.hash("ünï"), 1))
  end)

  -- Numbers in any C format; each is the float32 rounding of its exact value.
  local numbers = {
    { "2.94038e+06", 2940380 }, { "9", 9 }, { "-0.5", -0.5 }, { "+3", 3 }, { ".5", 0.5 }, { "5.", 5 },
    { "1E-3", 0.001 }, { "-1.12597", -1.12597 }, { "0.33557800000000004", 0.33557800000000004 },
    { "1e22", 1e22 }, { "123456789012345678901234", 1.2345678901234568e23 }, { "0x1p3", 8 },
    { "1e-50", 0 }, { "-0", 0 }, { "inf", math.huge }, { "-Infinity", -math.huge },
  }
  for _, case in ipairs(numbers) do
    it("reads the number " .. case[1], function()
      local d = read("x\n" .. case[1] .. "\n", { C("x", "float") }, { header = true })
      assert.are.equal(float32(case[2]), d.columns.x:values()[1])
    end)
  end

  it("reads nan", function()
    local v = read("nan\n", { C("x", "float") }).columns.x:values()[1]
    assert.is_true(v ~= v)
  end)

  local integers = {
    { "0", 0 }, { "-12", -12 }, { "+5", 5 }, { "000042", 42 }, { "123456789", 123456789 },
    { "9007199254740993", "0020000000000001" }, -- 2^53 + 1: exact, unlike a double
    { "9223372036854775807", "7fffffffffffffff" }, { "-9223372036854775808", "8000000000000000" },
  }
  for _, case in ipairs(integers) do
    it("reads the integer " .. case[1], function()
      local d = read(case[1] .. "\n", { C("x", "int64") })
      if type(case[2]) == "string" then
        assert.are.equal(case[2], hex(d.columns.x, 1))
      else
        assert.are.equal(case[2], d.columns.x:values()[1])
      end
    end)
  end

  it("reads quoted fields with separators, doubled quotes and line ends inside", function()
    local d = read('1,"a,b","12"\n2,"say ""hi""","-3"\n3,"two\nlines",4\n',
      { C("id", "int64"), C("s", "string"), C("n", "int64") })
    assert.are.same({ 1, 2, 3 }, d.columns.id:values())
    assert.are.equal(XXH3["a,b"], hex(d.columns.s, 1))
    assert.are.equal(XXH3['say "hi"'], hex(d.columns.s, 2))
    assert.are.equal(hex(mtl.data.hash("two\nlines"), 1), hex(d.columns.s, 3))
    assert.are.same({ 12, -3, 4 }, d.columns.n:values())
  end)

  it("reads a quoted empty string with a default like an empty field", function()
    local d = read('1,""\n2,\n', { C("id", "int64"), C("s", "string", { default = "" }) })
    assert.are.equal(XXH3[""], hex(d.columns.s, 1))
    assert.are.equal(XXH3[""], hex(d.columns.s, 2))
  end)

  it("treats quotes as bytes with quote = false, and takes another quote character", function()
    local d = read('"abc"\n', { C("s", "string") }, { quote = false })
    assert.are.equal(hex(mtl.data.hash('"abc"'), 1), hex(d.columns.s, 1))
    d = read("'a,b'\n", { C("s", "string") }, { quote = "'" })
    assert.are.equal(XXH3["a,b"], hex(d.columns.s, 1))
  end)

  it("fills empty fields with per-column defaults", function()
    local cols = {
      C("a", "int64", { default = 7 }), C("b", "float", { default = -1.5 }), C("c", "string", { default = "abc" }),
      C("t", "multi", { default = "" }), C("u", "multi", { default = "1|2" }), C("k", "kv", { default = "" }),
    }
    local d = read(",,,,,\n3,0.25,x,5,6,\"9:1\"\n", cols)
    assert.are.same({ 7, 3 }, d.columns.a:values())
    assert.are.same({ -1.5, 0.25 }, d.columns.b:values())
    assert.are.equal(XXH3.abc, hex(d.columns.c, 1))
    assert.are.same({ 5 }, d.columns.t.ids:values())
    assert.are.same({ 0, 0, 1 }, d.columns.t.offsets:values())
    assert.are.same({ 1, 2, 6 }, d.columns.u.ids:values())
    assert.are.same({ 0, 2, 3 }, d.columns.u.offsets:values())
    assert.are.same({ 9 }, d.columns.k.ids:values())
    assert.are.same({ 0, 0, 1 }, d.columns.k.offsets:values())
  end)

  it("reads CRLF line ends like LF, and a last row without a line end", function()
    local cols = { C("id", "int64"), C("s", "string"), C("x", "float") }
    local a = read("1,abc,0.5\r\n2,ünï,1e3\r\n", cols)
    local b = read("1,abc,0.5\n2,ünï,1e3", cols)
    for _, d in ipairs { a, b } do
      assert.are.same({ 1, 2 }, d.columns.id:values())
      assert.are.equal(XXH3.abc, hex(d.columns.s, 1))
      assert.are.equal(XXH3["ünï"], hex(d.columns.s, 2))
      assert.are.same({ 0.5, 1000 }, d.columns.x:values())
    end
  end)

  it("skips blank lines and a UTF-8 byte order mark, and counts lines through them", function()
    local d = read("\239\187\191id\n1\n\n2\r\n\n", { C("id", "int64") }, { header = true })
    assert.are.same({ 1, 2 }, d.columns.id:values())
    assert.are.equal('t.csv:5:1: expected an integer for column \'id\', got "x"',
      read_error("id\n1\n\n\nx\n", { C("id", "int64") }, { header = true }))
  end)

  it("reads tab-separated and other single-byte separators", function()
    local d = read("1\t2.5\ta b\n", { C("id", "int64"), C("x", "float"), C("s", "string") }, { separator = "\t" })
    assert.are.same({ 1 }, d.columns.id:values())
    assert.are.equal(hex(mtl.data.hash("a b"), 1), hex(d.columns.s, 1))
    d = read("1;2\n", { C("a", "int64"), C("b", "int64") }, { separator = ";" })
    assert.are.same({ 2 }, d.columns.b:values())
  end)

  it("reads multi-valued fields into flat ids and offsets", function()
    local d = read("1|2|3\n4\n\n5|5\n", { C("t", "multi") })
    assert.are.same({ 1, 2, 3, 4, 5, 5 }, d.columns.t.ids:values())
    assert.are.same({ 0, 3, 4, 6 }, d.columns.t.offsets:values())
    d = read("a;b,x\n", { C("t", "multi", { separator = ";", values = "string" }), C("s", "string") })
    assert.are.equal(hex(mtl.data.hash("a"), 1), hex(d.columns.t.ids, 1))
    assert.are.equal(hex(mtl.data.hash("b"), 1), hex(d.columns.t.ids, 2))
  end)

  it("reads kv fields into ids, weights and offsets", function()
    local d = read('"1:0.5,2:1.5"\n3:-2\n"7:1e2,7:0"\n', { C("k", "kv") })
    assert.are.same({ 1, 2, 3, 7, 7 }, d.columns.k.ids:values())
    assert.are.same({ 0.5, 1.5, -2, 100, 0 }, d.columns.k.weights:values())
    assert.are.same({ 0, 2, 3, 5 }, d.columns.k.offsets:values())
    d = read("a=1;b=2\n", { C("k", "kv", { separator = ";", kv_separator = "=", values = "string" }) })
    assert.are.equal(hex(mtl.data.hash("b"), 1), hex(d.columns.k.ids, 2))
    assert.are.same({ 1, 2 }, d.columns.k.weights:values())
  end)

  it("packs float columns of one group into a [n, k] tensor and skips skip columns", function()
    local d = read("1,x,0.5,2\n2,y,1.5,4\n", {
      C("id", "int64"), C("junk", "skip"), C("d1", "float", { group = "dense" }), C("d2", "float", { group = "dense" }),
    })
    assert.are.same({ 2, 2 }, d.columns.dense:shape())
    assert.are.same({ { 0.5, 2 }, { 1.5, 4 } }, d.columns.dense:totable())
    assert.is_nil(d.columns.junk)
    assert.is_nil(d.columns.d1)
  end)

  it("standardizes with the data's mean and population std, or given ones", function()
    local vals = { 1, 2, 4, 9 }
    local text = table.concat(vals, "\n") .. "\n"
    local mean, ss = 0, 0
    for _, v in ipairs(vals) do mean = mean + v / #vals end
    for _, v in ipairs(vals) do ss = ss + (v - mean) ^ 2 end
    local std = math.sqrt(ss / #vals) -- ddof = 0
    local d = read(text, { C("x", "float") }, { standardize = { "x" } })
    assert.are.equal(mean, d.stats.x.mean)
    assert.are.equal(std, d.stats.x.std)
    for i, v in ipairs(vals) do assert.are.equal(float32((v - mean) / std), d.columns.x:values()[i]) end
    local e = read(text, { C("x", "float") }, { standardize = { x = { mean = 1, std = 2 } } })
    assert.are.same({ 0, 0.5, 1.5, 4 }, e.columns.x:values())
    -- a constant column keeps std 1
    assert.are.equal(1, read("3\n3\n", { C("x", "float") }, { standardize = { "x" } }).stats.x.std)
  end)

  it("maps header names to columns in any order and skips unknown columns on request", function()
    local d = read("b,zz,a\n2,x,1\n", { C("a", "int64"), C("b", "int64") }, { header = true, unknown_columns = "skip" })
    assert.are.same({ 1 }, d.columns.a:values())
    assert.are.same({ 2 }, d.columns.b:values())
    assert.is_nil(d.columns.zz)
  end)

  it("returns empty tensors for a file without rows", function()
    local d = read("a,t\n", { C("a", "int64"), C("t", "multi") }, { header = true })
    assert.are.equal(0, d.size)
    assert.are.same({ 0 }, d.columns.a:shape())
    assert.are.same({ 0 }, d.columns.t.offsets:values())
  end)
end)

describe("mtl.data bad input", function()
  local three = { C("id", "int64"), C("price", "float"), C("name", "string") }
  -- {description, file text, columns, options, exact error}
  local cases = {
    { "a bad number", "1,2.5,a\n2,abc,b\n", three, {},
      "t.csv:2:2: expected a number for column 'price', got \"abc\"" },
    { "a number with trailing text", "12abc,1,a\n", three, {},
      "t.csv:1:1: expected an integer for column 'id', got \"12abc\"" },
    { "a decimal in an integer column", "1.0,1,a\n", three, {},
      "t.csv:1:1: expected an integer for column 'id', got \"1.0\"" },
    { "leading spaces", " 1,1,a\n", three, {},
      "t.csv:1:1: expected an integer for column 'id', got \" 1\"" },
    { "an integer overflow", "9223372036854775808,1,a\n", three, {},
      "t.csv:1:1: expected an integer in the int64 range for column 'id', got \"9223372036854775808\"" },
    { "a number beyond float32", "1,1e39,a\n", three, {},
      "t.csv:1:2: expected a number in the float32 range for column 'price', got \"1e39\"" },
    { "an empty field without a default", "1,,a\n", three, {},
      "t.csv:1:2: expected a value for column 'price', got an empty field (the column has no default)" },
    { "a missing column", "1,2\n", three, {},
      "t.csv:1:3: expected 3 fields, got 2: column 'name' is missing" },
    { "an extra column", "1,2,a,b\n", three, {}, "t.csv:1:4: expected 3 fields, got 4" },
    { "a trailing separator", "1,2,a\n1,2,a,\n", three, {},
      "t.csv:2:4: expected 3 fields, got 4 (a trailing separator)" },
    { "an unterminated quote", '1,2,"abc\n', three, {},
      "t.csv:1:3: expected a closing quote for column 'name', got the end of the file" },
    { "text after a closing quote", '1,2,"ab"c\n', three, {},
      "t.csv:1:3: expected a separator after the closing quote for column 'name', got \"\\\"ab\\\"c\"" },
    { "a control byte", "1\0002,2,a\n", three, {},
      "t.csv:1:1: expected an integer for column 'id', got \"1\\x002\"" },
    { "a bad multi value", "1|x|3\n", { C("t", "multi") }, {},
      "t.csv:1:1: expected integers separated by '|' for column 't', got \"1|x|3\"" },
    { "an empty multi value", "1||3\n", { C("t", "multi") }, {},
      "t.csv:1:1: expected integers separated by '|' for column 't', got \"1||3\"" },
    { "a trailing multi separator", "1|2|\n", { C("t", "multi") }, {},
      "t.csv:1:1: expected integers separated by '|' for column 't', got \"1|2|\"" },
    { "a kv pair without a value", '"1:0.5,2"\n', { C("k", "kv") }, {},
      "t.csv:1:1: expected integer:number pairs separated by ',' for column 'k', got \"\\\"1:0.5,2\\\"\"" },
    { "a kv pair with a bad value", "1:x\n", { C("k", "kv") }, {},
      "t.csv:1:1: expected integer:number pairs separated by ',' for column 'k', got \"1:x\"" },
    { "a header without a column", "id,price\n", three, { header = true },
      "t.csv:1: expected a column named 'name' in the header, got none" },
    { "a header with an unknown column", "id,price,name,extra\n", three, { header = true },
      "t.csv:1:4: expected a column named in the schema, got \"extra\"" },
    { "a header naming a column twice", "id,price,name,id\n", three, { header = true },
      "t.csv:1:4: expected each column once in the header, got 'id' again" },
    { "a long bad field, shortened", "1," .. string.rep("x", 100) .. ",a\n", three, {},
      "t.csv:1:2: expected a number for column 'price', got \"" .. string.rep("x", 60) .. "...\"" },
  }
  for _, case in ipairs(cases) do
    it("reports " .. case[1], function()
      assert.are.equal(case[5], read_error(case[2], case[3], case[4]))
    end)
  end

  it("names the line of a row after a quoted line end", function()
    assert.are.equal("t.csv:3:1: expected an integer for column 'id', got \"x\"",
      read_error('1,"a\nb"\nx,c\n', { C("id", "int64"), C("s", "string") }))
  end)

  it("skips bad rows with on_error = \"skip\", counts them and keeps their first messages", function()
    local d = read("1|2,0.5\n3|x,1\n4,abc\n5|6,2\n7\n", { C("t", "multi"), C("x", "float") }, { on_error = "skip" })
    assert.are.equal(2, d.size)
    assert.are.same({ 1, 2, 5, 6 }, d.columns.t.ids:values()) -- the half-read bad rows left nothing
    assert.are.same({ 0, 2, 4 }, d.columns.t.offsets:values())
    assert.are.same({ 0.5, 2 }, d.columns.x:values())
    assert.are.equal(3, d.skipped)
    assert.are.equal(3, #d.errors)
    assert.is_truthy(d.errors[2]:find("t.csv:3:2: expected a number for column 'x', got \"abc\"", 1, true))
    assert.is_truthy(d.errors[3]:find("t.csv:5:2: expected 2 fields, got 1: column 'x' is missing", 1, true))
  end)

  it("finite = true refuses NaN and infinities, range = {min, max} values outside it (a label's domain)", function()
    local cols = { C("y", "float", { range = { 0, 1 } }), C("x", "float", { finite = true }) }
    assert.are.equal("t.csv:3:1: expected a number from 0 to 1 for column 'y', got \"7\"",
      read_error("y,x\n1,2\n7,3\n", cols, { header = true }))
    assert.are.equal("t.csv:2:2: expected a finite number for column 'x', got \"nan\"",
      read_error("y,x\n1,nan\n", cols, { header = true }))
    assert.are.equal("t.csv:2:1: expected a number from 0 to 1 for column 'y', got \"-0.5\"",
      read_error("y,x\n-0.5,1\n", cols, { header = true }))
    -- the bounds themselves are in range; without the options NaN and 7 are read as they are
    local ok = read("y,x\n0,1\n1,-inf\n0.25,2\n7,nan\n", { C("y", "float"), C("x", "float") }, { header = true })
    assert.are.equal(4, ok.size)
    assert.are.equal(-math.huge, ok.columns.x:values()[2])
    local d = read("y,x\n0,1\n7,3\n1,inf\n0.5,-inf\nx,1\n1,nan\n1,2\n", cols, { header = true, on_error = "skip" })
    assert.are.same({ 0, 1 }, { d.columns.y:values()[1], d.columns.y:values()[2] })
    assert.are.equal(2, d.size)
    assert.are.equal(5, d.skipped)
    assert.are.same({ malformed = 1, not_finite = 3, out_of_range = 1 }, d.skipped_by)
    assert.are.equal("mtl.data: column 'i' is int64; only float columns take finite or a range",
      read_error("1\n", { C("i", "int64", { finite = true }) }))
    assert.are.equal("mtl.data: column 'y': expected a range min <= max, got 1 and 0",
      read_error("1\n", { C("y", "float", { range = { 1, 0 } }) }))
  end)

  local config_cases = {
    { "an unknown option", { files = "x", columns = {}, batchsize = 3 }, "mtl.data.csv: unknown option 'batchsize'" },
    { "an unknown column field", { files = "x", columns = { { name = "a", type = "int64", dflt = 1 } } },
      "mtl.data.csv: unknown column field 'dflt'" },
    { "an unknown type", { files = "F", columns = { { name = "a", type = "integer" } } },
      "mtl.data: column 'a': type must be one of int64, float, string, multi, kv, seq, skip; got \"integer\"" },
    { "a long separator", { files = "F", columns = { C("a", "int64") }, separator = "::" },
      "mtl.data: option 'separator' must be one character, got \"::\" (2 bytes)" },
    { "a NUL separator", { files = "F", columns = { C("a", "int64") }, separator = "\0" },
      "mtl.data: option 'separator' must be one character other than NUL" },
    { "a bad on_error", { files = "F", columns = { C("a", "int64") }, on_error = "ignore" },
      "mtl.data: option 'on_error' must be \"raise\" or \"skip\", got \"ignore\"" },
    { "a bad default", { files = "F", columns = { C("a", "int64", { default = "x" }) } },
      "mtl.data: the default of column 'a': expected an integer, got \"x\"" },
    { "two columns of one name", { files = "F", columns = { C("a", "int64"), C("a", "float") } },
      "mtl.data: two columns are named 'a'" },
    { "a group of integers", { files = "F", columns = { C("a", "int64", { group = "g" }) } },
      "mtl.data: column 'a' is int64; only float columns can form a group" },
    { "fitting while streaming", { files = "F", columns = { C("a", "float") }, standardize = { "a" } },
      "mtl.data: column 'a': fitting the standardization needs the whole input in one batch (read_all)" },
    { "a missing file", { files = "/nonexistent/x.csv", columns = { C("a", "int64") } },
      "mtl.data: cannot open '/nonexistent/x.csv': No such file or directory" },
    { "a glob without matches", { files = "/nonexistent/*.csv", columns = { C("a", "int64") } },
      "mtl.data: no file matches '/nonexistent/*.csv'" },
    { "a zero batch size", { files = "F", columns = { C("a", "int64") }, batch_size = 0 },
      "mtl.data.csv: batch_size must be > 0 (read_all reads everything)" },
    { "a negative batch size", { files = "F", columns = { C("a", "int64") }, batch_size = -2 },
      "mtl.data: option 'batch_size' must be a whole number in 0..9e15, got -2" },
    { "a max_rows past 9e15", { files = "F", columns = { C("a", "int64") }, max_rows = 2 ^ 53 },
      "mtl.data: option 'max_rows' must be a whole number in 0..9e15, got 9.00719925474099e+15" },
  }
  for _, case in ipairs(config_cases) do
    it("rejects " .. case[1], function()
      local opts = case[2]
      if opts.files == "F" then opts.files = file("t.csv", "1\n") end
      check.assert_error(case[3], mtl.data.csv, opts)
    end)
  end

  -- Calls straight into the binding with wrong arguments raise errors.
  local misuse = {
    { "a number for the options", function() mtl.core.reader_new(5) end, "table expected, got number" },
    { "a number among the files", function() mtl.core.reader_new { files = { 1 }, columns = {} } end,
      "mtl.data: option 'files' entry 1 must be a string, got number" },
    { "a column that is not a table", function() mtl.core.reader_new { files = { "x" }, columns = { 5 } } end,
      "mtl.data: column 1 must be a table, got number" },
    { "a number default through the core", function()
      mtl.core.reader_new { files = { "x" }, columns = { { name = "a", type = "int64", default = 1 } } } end,
      "mtl.data: column field 'default' must be a string, got number" },
    { "a huge batch size", function()
      mtl.core.reader_new { files = { "x" }, columns = { C("a", "int64") }, batch_size = 1e300 } end,
      "mtl.data: option 'batch_size' must be a whole number in 0..9e15, got 1e+300" },
    { "a method on something else", function()
      local r = mtl.data.csv { files = file("t.csv", "1\n"), columns = { C("a", "int64") } }
      r._core.next({})
    end, "mtl.Reader expected" },
    { "options that are not a table", function() mtl.data.read_all("t.csv") end,
      "mtl.data.read_all: expected a table of options, got string" },
    { "hashing a number", function() mtl.data.hash(5) end,
      "mtl.data.hash: expected a string or a list of strings, got number" },
  }
  for _, case in ipairs(misuse) do
    it("raises on " .. case[1], function() check.assert_error(case[3], case[2]) end)
  end

  it("refuses a closed reader", function()
    local r = mtl.data.csv { files = file("t.csv", "1\n"), columns = { C("a", "int64") } }
    r:close()
    check.assert_error("mtl.data: the reader is closed", r.next, r)
  end)
end)
