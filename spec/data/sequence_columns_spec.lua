-- Sequence columns (type "seq"): steps, values per step, value kinds, the
-- batch layout (offsets into steps, steps into values), and exact error texts.
local mtl = require "mtl"

local shell = require "helpers.shell"

local dir = shell.tmpdir()

local function read(text, columns, opts)
  local o = { files = shell.write(dir .. "/t.csv", text), columns = columns }
  for k, v in pairs(opts or {}) do o[k] = v end
  return mtl.data.read_all(o)
end

local function read_error(text, columns)
  local ok, err = pcall(read, text, columns)
  assert(not ok, "expected an error")
  return (tostring(err):gsub("^.-mtl%.data", "mtl.data"):gsub(dir:gsub("%p", "%%%0") .. "/", ""))
end

describe("mtl.data seq columns", function()
  it("reads integer steps with several values each: ids, offsets into steps, steps into values", function()
    local d = read("1,4;5|6|7;8;9\n0,\n1,3\n", {
      { name = "y", type = "float" },
      { name = "s", type = "seq", step_separator = ";", default = "" },
    })
    local s = d.columns.s
    assert.are.same({ 4, 5, 6, 7, 8, 9, 3 }, s.ids:values())
    assert.are.same({ 0, 3, 3, 4 }, s.offsets:values())          -- row 1: 3 steps, row 2: none, row 3: one
    assert.are.same({ 0, 2, 3, 6, 7 }, s.steps:values())         -- step 1: 4;5, step 2: 6, step 3: 7;8;9
    assert.are.equal("int64", s.ids:dtype())
  end)

  it("reads numbers (values = \"float\") and strings hashed as string columns are", function()
    local d = read("1.5|-2|1e3,a|bb\n", {
      { name = "v", type = "seq", values = "float" },
      { name = "w", type = "seq", values = "string" },
    })
    assert.are.same({ 1.5, -2, 1000 }, d.columns.v.values:values())
    assert.are.equal("float32", d.columns.v.values:dtype())
    assert.are.same({ 0, 1, 2, 3 }, d.columns.v.steps:values())
    assert.are.same(mtl.data.hash({ "a", "bb" }):values(), d.columns.w.ids:values())
  end)

  it("splits steps on a separator that is the field separator inside quotes", function()
    local d = read('"1,2,3"\n', { { name = "s", type = "seq", separator = "," } })
    assert.are.same({ 1, 2, 3 }, d.columns.s.ids:values())
    assert.are.same({ 0, 3 }, d.columns.s.offsets:values())
  end)

  it("streams batches with offsets starting at 0 in each", function()
    local path = shell.write(dir .. "/b.csv", "1|2\n3\n4|5|6\n")
    local r = mtl.data.csv { files = path, batch_size = 2, columns = { { name = "s", type = "seq" } } }
    local seen = {}
    for b in r:batches() do
      seen[#seen + 1] = { b.columns.s.offsets:values(), b.columns.s.steps:values(), b.columns.s.ids:values() }
    end
    assert.are.same({ { { 0, 2, 3 }, { 0, 1, 2, 3 }, { 1, 2, 3 } }, { { 0, 3 }, { 0, 1, 2, 3 }, { 4, 5, 6 } } }, seen)
  end)

  it("gives empty tensors of the right kinds when there are no rows", function()
    local d = read("", { { name = "v", type = "seq", values = "float" }, { name = "s", type = "seq" } })
    assert.are.same({ 0 }, d.columns.v.offsets:values())
    assert.are.same({ 0 }, d.columns.v.steps:values())
    assert.are.equal("float32", d.columns.v.values:dtype())
    assert.are.equal("int64", d.columns.s.ids:dtype())
  end)

  it("names the row, the field and what a step needs", function()
    assert.are.equal([[t.csv:2:1: expected integers joined by ';' in steps separated by '|' for column 's', got "1;x|2"]],
      read_error("1\n1;x|2\n", { { name = "s", type = "seq", step_separator = ";" } }))
    assert.are.equal([[t.csv:1:1: expected numbers separated by '|' for column 'v', got "1||2"]],
      read_error("1||2\n", { { name = "v", type = "seq", values = "float" } }))
    assert.are.equal("mtl.data: column 's': the step separator '|' must differ from the other separators, the quote and line ends",
      read_error("1\n", { { name = "s", type = "seq", step_separator = "|" } }))
    assert.are.equal([[mtl.data.read_all: column 's': values must be "int64" or "string" or "float", got int]],
      read_error("1\n", { { name = "s", type = "seq", values = "int" } }))
  end)
end)
