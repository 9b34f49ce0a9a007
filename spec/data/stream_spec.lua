-- mtl.data streaming: batches, chunk boundaries, gzip, several files, the
-- shuffle buffer, skipped rows and the memory bound.
local mtl = require "mtl"
local check = require "helpers.check"
local ffi = require "ffi"
local shell = require "helpers.shell"

local dir, file = shell.scratch_dir()

local function hex(t, i) return bit.tohex(ffi.cast("int64_t*", t:data_ptr())[i - 1], 16) end

-- Every batch of a pass as plain tables: {size, id = {...}, tags = {ids, offsets}}.
local function collect(r)
  local out = {}
  for b in r:batches() do
    local t = { size = b.size }
    for name, v in pairs(b.columns) do
      if type(v) == "table" then
        t[name] = { ids = v.ids:values(), offsets = v.offsets:values(), weights = v.weights and v.weights:values() }
      else
        t[name] = v:values()
      end
    end
    out[#out + 1] = t
  end
  return out
end

local ten = { "id,tags" } -- row i: id i, tags i % 3 + 1 copies of i
for i = 1, 10 do
  local tags = {}
  for k = 1, i % 3 + 1 do tags[k] = tostring(i) end
  ten[#ten + 1] = i .. "," .. table.concat(tags, "|")
end
local ten_text = table.concat(ten, "\n") .. "\n"
local ten_cols = { { name = "id", type = "int64" }, { name = "tags", type = "multi" } }

describe("mtl.data.csv batches", function()
  it("cuts the rows into batches, the last one partial, bag offsets per batch", function()
    local r = mtl.data.csv { files = file("ten.csv", ten_text), header = true, columns = ten_cols, batch_size = 4 }
    local b = collect(r)
    assert.are.same({ 4, 4, 2 }, { b[1].size, b[2].size, b[3].size })
    assert.are.same({ 1, 2, 3, 4 }, b[1].id)
    assert.are.same({ 9, 10 }, b[3].id)
    -- row i has i % 3 + 1 copies of i
    assert.are.same({ 1, 1, 2, 2, 2, 3, 4, 4 }, b[1].tags.ids)
    assert.are.same({ 0, 2, 5, 6, 8 }, b[1].tags.offsets)
    assert.are.same({ 9, 10, 10 }, b[3].tags.ids)
    assert.are.same({ 0, 1, 3 }, b[3].tags.offsets)
    assert.are.same(b, collect(r)) -- each batches() call is a new pass
  end)

  it("drops a short last batch with drop_last and stops at max_rows", function()
    local path = file("ten.csv", ten_text)
    local b = collect(mtl.data.csv { files = path, header = true, columns = ten_cols, batch_size = 4, drop_last = true })
    assert.are.same({ 4, 4 }, { b[1].size, b[2].size, b[3] })
    b = collect(mtl.data.csv { files = path, header = true, columns = ten_cols, batch_size = 4, max_rows = 5 })
    assert.are.same({ 4, 1 }, { b[1].size, b[2].size, b[3] })
    assert.are.same({ 5 }, b[2].id)
  end)

  it("describes its outputs", function()
    local r = mtl.data.csv { files = file("o.csv", "1,2,3,4\n"), batch_size = 2, columns = {
      { name = "a", type = "int64" }, { name = "x", type = "float", group = "dense" },
      { name = "y", type = "float", group = "dense" }, { name = "k", type = "kv" } } }
    assert.are.same({
      { name = "a", kind = "ids" }, { name = "dense", kind = "dense", width = 2, columns = { "x", "y" } },
      { name = "k", kind = "weighted_bag" },
    }, r:outputs())
  end)
end)

describe("mtl.data chunks", function()
  -- Rows with quoted separators and line ends, multi-valued and kv fields, and
  -- exponent floats, so chunk ends fall everywhere inside rows.
  local rows = { "id,name,tags,kv,x" }
  for i = 1, 300 do
    local name = i % 7 == 0 and ('"n,' .. i .. '\nx ""q"""') or ("n" .. i)
    local tags = {}
    for k = 1, i % 5 + 1 do tags[k] = tostring(i * 10 + k) end
    rows[#rows + 1] = table.concat({ i, name, table.concat(tags, "|"), '"' .. i .. ":0.5," .. (i + 1) .. ':1e-3"',
      string.format("%.6g", i * 12345.678) }, ",")
  end
  -- one row far longer than a chunk
  local long = {}
  for k = 1, 2000 do long[k] = tostring(k) end
  rows[#rows + 1] = "301,long," .. table.concat(long, "|") .. ",1:1,0"
  local text = table.concat(rows, "\r\n") .. "\r\n"
  local cols = { { name = "id", type = "int64" }, { name = "name", type = "string" }, { name = "tags", type = "multi" },
    { name = "kv", type = "kv" }, { name = "x", type = "float" } }

  local function read(path, chunk)
    local d = mtl.data.read_all { files = path, header = true, columns = cols, chunk_size = chunk }
    local names = {}
    for i = 1, d.size do names[i] = hex(d.columns.name, i) end
    return { d.size, d.columns.id:values(), names, d.columns.tags.ids:values(), d.columns.tags.offsets:values(),
      d.columns.kv.ids:values(), d.columns.kv.weights:values(), d.columns.x:values() }
  end

  it("reads the same rows whatever the chunk size", function()
    local path = file("chunks.csv", text)
    local whole = read(path, nil)
    assert.are.equal(301, whole[1])
    assert.are.equal(hex(mtl.data.hash("n,7\nx \"q\""), 1), whole[3][7])
    assert.are.equal(2000, whole[5][302] - whole[5][301])
    for _, chunk in ipairs { 64, 67, 100, 1000, 4093 } do
      assert.are.same(whole, read(path, chunk), "chunk_size " .. chunk)
    end
  end)

  it("reads gzip files like plain ones and reports truncated ones", function()
    local path = file("chunks.csv", text)
    local status = os.execute("gzip -c " .. path .. " > " .. path .. ".gz")
    assert.is_true(status == 0 or status == true)
    assert.are.same(read(path, nil), read(path .. ".gz", 100))
    local f = assert(io.open(path .. ".gz", "rb"))
    local gz = f:read("*a")
    f:close()
    local cut = file("cut.csv.gz", gz:sub(1, math.floor(#gz / 2)))
    local ok, err = pcall(read, cut, nil)
    assert.is_false(ok)
    assert.are.equal("mtl.data: cannot read '" .. cut .. "': unexpected end of file (truncated gzip data)", err)
  end)
end)

describe("mtl.data files", function()
  it("reads a list of files or a glob in order, a header in each", function()
    local a = file("part-1.csv", "id\n1\n2\n")
    local b = file("part-2.csv", "id\n3\nx\n")
    local cols = { { name = "id", type = "int64" } }
    local d = mtl.data.read_all { files = { b, a }, header = true, columns = cols, on_error = "skip" }
    assert.are.same({ 3, 1, 2 }, d.columns.id:values())
    d = mtl.data.read_all { files = dir .. "/part-*.csv", header = true, columns = cols, on_error = "skip" }
    assert.are.same({ 1, 2, 3 }, d.columns.id:values())
    assert.are.equal(1, d.skipped)
    assert.are.equal(b .. ":3:1: expected an integer for column 'id', got \"x\"", d.errors[1])
  end)

  it("counts skipped rows per pass while streaming", function()
    local r = mtl.data.csv { files = file("s.csv", "1\nx\n3\ny\n"), columns = { { name = "id", type = "int64" } },
      batch_size = 2, on_error = "skip" }
    local b = collect(r)
    assert.are.same({ 1, 3 }, b[1].id)
    assert.are.equal(2, r:skipped())
    collect(r)
    assert.are.equal(2, r:skipped())
    assert.are.equal(2, #r:errors())
  end)

  it("raises at the first bad row by default, and a new pass starts again", function()
    local r = mtl.data.csv { files = file("s.csv", "1\n2\nx\n"), columns = { { name = "id", type = "int64" } }, batch_size = 1 }
    local it = r:batches()
    assert.are.same({ 1 }, it().columns.id:values())
    assert.are.same({ 2 }, it().columns.id:values())
    check.assert_error("s.csv:3:1: expected an integer for column 'id', got \"x\"", it)
    assert.is_nil(it())
    assert.are.same({ 1 }, r:batches()().columns.id:values())
  end)
end)

describe("mtl.data shuffle buffer", function()
  local lines = {}
  for i = 1, 100 do lines[i] = tostring(i) end
  local path = file("hundred.csv", table.concat(lines, "\n") .. "\n")
  local function order(seed, buffer)
    mtl.seed(seed)
    local r = mtl.data.csv { files = path, columns = { { name = "id", type = "int64" } }, batch_size = 16,
      shuffle_buffer = buffer }
    local ids = {}
    for b in r:batches() do
      for _, v in ipairs(b.columns.id:values()) do ids[#ids + 1] = v end
    end
    return ids
  end

  it("gives each row once, in an order fixed by mtl.seed", function()
    local a = order(7, 10)
    assert.are.same(a, order(7, 10))
    assert.are.not_same(a, order(8, 10))
    local sorted = { unpack(a) }
    table.sort(sorted)
    for i = 1, 100 do assert.are.equal(i, sorted[i]) end
    assert.are.not_same(sorted, a)
  end)

  it("draws only from the rows in the buffer", function()
    -- the k-th row given out comes from the first k + 9 rows of the file
    for seed = 1, 5 do
      for k, id in ipairs(order(seed, 10)) do assert.is_true(id <= k + 9, "row " .. id .. " at " .. k) end
    end
  end)

  it("keeps file order without a buffer", function()
    local a = order(1, 0)
    for i = 1, 100 do assert.are.equal(i, a[i]) end
  end)
end)

describe("mtl.data memory", function()
  it("holds about a chunk and a batch while streaming, whatever the file size", function()
    local row = "123456,7,1|2|3|4,0.5,2.94038e+06\n"
    local function peak(rows)
      local path = file("big.csv", string.rep(row, rows))
      local r = mtl.data.csv { files = path, batch_size = 64, chunk_size = 4096, columns = {
        { name = "a", type = "int64" }, { name = "b", type = "int64" }, { name = "t", type = "multi" },
        { name = "x", type = "float" }, { name = "y", type = "float" } } }
      local n = 0
      for b in r:batches() do n = n + b.size end
      assert.are.equal(rows, n)
      return r:peak_bytes()
    end
    local small, large = peak(1000), peak(50000)
    assert.are.equal(small, large)
    -- chunk + slack, a batch of 64 rows (3 x 8 B + 2 x 4 B + offsets) and its 256+ tag values
    assert.is_true(large < 4096 + 16 + 64 * 40 + 8 * 65 + 8 * 512 + 1024, "peak " .. large)
  end)
end)
