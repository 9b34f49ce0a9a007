-- mtl.data readers with `partition`: each reader of a set keeps its rows of
-- every block (the row blocks distributed training reads, docs/data.md).
-- Expected rows are computed from the rule, independently of the reader.
local mtl = require "mtl"
local check = require "helpers.check"

-- rows "0".."n-1" (one int64 column x, and y = 10 x), with a header
local function text(n)
  local lines = { "x,y" }
  for p = 0, n - 1 do lines[#lines + 1] = string.format("%d,%d", p, 10 * p) end
  return table.concat(lines, "\n") .. "\n"
end

local COLUMNS = { { name = "x", type = "int64" }, { name = "y", type = "float" } }

-- The batches of part `index` of `count` as lists of x.
local function batches(n, opts)
  local o = { text = text(n), header = true, columns = COLUMNS }
  for k, v in pairs(opts) do o[k] = v end
  local out = {}
  for b in mtl.data.csv(o):batches() do out[#out + 1] = b.columns.x:totable() end
  return out
end

-- Rows p of 0..n-1 with floor(i K / c) <= p % K < floor((i + 1) K / c), grouped by block.
local function expected(n, index, count, block)
  local lo, hi = math.floor(index * block / count), math.floor((index + 1) * block / count)
  local out = {}
  for p = 0, n - 1 do
    local k, off = math.floor(p / block), p % block
    if off >= lo and off < hi then
      out[k + 1] = out[k + 1] or {}
      table.insert(out[k + 1], p)
    end
  end
  local list = {}
  for k = 1, math.ceil(n / block) do if out[k] then list[#list + 1] = out[k] end end
  return list
end

describe("mtl.data partition", function()
  it("gives each part its rows of every block, a batch per block", function()
    for _, c in ipairs { { 2, 8 }, { 3, 8 }, { 3, 10 }, { 4, 3 } } do
      local count, block = c[1], c[2]
      for index = 0, count - 1 do
        local want = expected(41, index, count, block)
        local got = batches(41, { batch_size = 100, partition = { index = index, count = count, block = block } })
        assert.are.same(want, got, string.format("part %d of %d, block %d", index, count, block))
      end
    end
  end)

  it("takes the batch size as the block by default, and splits a block at batch_size rows", function()
    -- block 6 (the batch size) over 3 parts: two rows of each block per part
    assert.are.same({ { 2, 3 }, { 8, 9 }, { 14 } }, batches(15, { batch_size = 6, partition = { index = 1, count = 3 } }))
    -- block 10, batch 3: part 0 of 2 has 5 rows per block, as batches of 3 and 2
    assert.are.same({ { 0, 1, 2 }, { 3, 4 }, { 10, 11, 12 }, { 13, 14 } },
      batches(20, { batch_size = 3, partition = { index = 0, count = 2, block = 10 } }))
  end)

  it("counts max_rows over the whole input: the parts together read its first max_rows rows", function()
    local all = {}
    for index = 0, 2 do
      for _, b in ipairs(batches(50, { batch_size = 4, max_rows = 17, partition = { index = index, count = 3, block = 4 } })) do
        for _, x in ipairs(b) do all[#all + 1] = x end
      end
    end
    table.sort(all)
    local want = {}
    for p = 0, 16 do want[#want + 1] = p end
    assert.are.same(want, all)
  end)

  it("is every row with count 1, as without a partition", function()
    local opts = { batch_size = 7, max_rows = 20 }
    local plain = batches(30, opts)
    opts.partition = { index = 0, count = 1, block = 5 }
    assert.are.same(plain, batches(30, opts))
  end)

  it("shuffles a part's own rows with the part's seed", function()
    local want = {}
    for _, b in ipairs(expected(60, 1, 2, 10)) do for _, x in ipairs(b) do want[#want + 1] = x end end
    local function shuffled(seed)
      local out = {}
      for _, b in ipairs(batches(60, { batch_size = 8, shuffle_buffer = 16, shuffle_seed = seed,
                                       partition = { index = 1, count = 2, block = 10 } })) do
        for _, x in ipairs(b) do out[#out + 1] = x end
      end
      return out
    end
    local a, b = shuffled(5), shuffled(5)
    assert.are.same(a, b)
    assert.are_not.same(want, a)
    table.sort(a)
    assert.are.same(want, a)
    assert.are_not.same(shuffled(5), shuffled(6))
  end)

  it("reads a part with read_all (the block is needed) and keeps its values", function()
    local d = mtl.data.read_all { text = text(10), header = true, columns = COLUMNS,
                                  partition = { index = 1, count = 2, block = 4 } }
    assert.are.same({ 2, 3, 6, 7 }, d.columns.x:totable())
    assert.are.same({ 20, 30, 60, 70 }, d.columns.y:totable())
    check.assert_error("mtl.data.read_all: partition: block is needed (rows per block; a streaming reader's default is its batch_size)",
      mtl.data.read_all, { text = "x\n1\n", header = true, columns = { COLUMNS[1] }, partition = { index = 0, count = 2 } })
  end)

  it("reports a bad row of its own part with its line, and never parses the other parts' rows", function()
    local bad = "x,y\n0,0\noops,10\n2,20\n3,30\n"
    local o = { text = bad, header = true, columns = COLUMNS, batch_size = 2, partition = { index = 0, count = 2, block = 2 } }
    local rows = {}
    for b in mtl.data.csv(o):batches() do for _, x in ipairs(b.columns.x:totable()) do rows[#rows + 1] = x end end
    assert.are.same({ 0, 2 }, rows) -- row 1 ("oops", line 3) is part 1's
    o.partition.index = 1
    local r = mtl.data.csv(o)
    check.assert_error("<text>:3:1: expected an integer for column 'x', got \"oops\"", function()
      for _ in r:batches() do end
    end)
  end)

  local bad_options = { -- what is wrong, the partition, the message
    { "an index past the count", { index = 2, count = 2 }, "mtl.data.csv: partition: index must be below count (2), got 2" },
    { "no parts", { index = 0, count = 0 }, "mtl.data.csv: partition: count must be a whole number >= 1, got 0" },
    { "a negative index", { index = -1, count = 2 }, "mtl.data.csv: partition: index must be a whole number >= 0, got -1" },
    { "a fractional block", { index = 0, count = 2, block = 1.5 }, "mtl.data.csv: partition: block must be a whole number >= 1, got 1.5" },
    { "an unknown field", { index = 0, count = 2, rank = 1 }, "mtl.data.csv: partition: unknown field 'rank' (expected index, count and block)" },
    { "a number", 3, "mtl.data.csv: option 'partition' must be a table {index =, count =, block =}, got number" },
  }
  for _, case in ipairs(bad_options) do
    it("rejects a partition with " .. case[1], function()
      check.assert_error(case[3], mtl.data.csv, { text = "x\n1\n", header = true, columns = { COLUMNS[1] }, partition = case[2] })
    end)
  end
end)
