-- The protobuf text format reader (lua/mtl/config/protobuf_text.lua): values,
-- nesting, lists, positions, and syntax errors with file:line:column.
local pt = require "mtl.config.protobuf_text"

local function parse(text) return pt.parse(text, "p.config") end

local function err_of(text)
  local ok, e = pcall(pt.parse, text, "p.config")
  assert(not ok, "expected a syntax error for: " .. text)
  return e
end

-- The scalar value of the first field.
local function value(text) return parse("x: " .. text).fields[1].value end

describe("protobuf text: values", function()
  it("reads numbers: integers, hex, octal, floats, exponents, f suffixes, signs and non-finite values", function()
    local cases = {
      { "42", 42 }, { "-7", -7 }, { "0x1F", 31 }, { "0X10", 16 }, { "017", 15 }, { "0", 0 }, { "1.5", 1.5 },
      { "1e-07", 1e-7 }, { "2.5E3", 2500 }, { ".5", 0.5 }, { "3.", 3 }, { "1.5f", 1.5 }, { "2F", 2 },
      { "- 4", -4 }, { "-inf", -math.huge }, { "-Infinity", -math.huge },
    }
    for _, c in ipairs(cases) do
      local v = value(c[1])
      assert.are.equal("number", v.type, c[1])
      assert.are.equal(c[2], v.value, c[1])
    end
    local nan = value("-nan")
    assert.is_true(nan.value ~= nan.value)
    assert.are.equal("-1e-07", value("-1e-07").text)
  end)

  it("reads strings with escapes, both quotes, and joins adjacent strings", function()
    assert.are.equal('a"b', value([["a\"b"]]).value)
    assert.are.equal("it's", value([['it\'s']]).value)
    assert.are.equal("\t\n\\?", value([["\t\n\\\?"]]).value)
    assert.are.equal("AAB", value([["\101\x41\x42"]]).value)
    assert.are.equal("\1\0011", value([["\1\0011"]]).value)
    assert.are.equal("é€", value([["\u00e9\u20AC"]]).value)
    assert.are.equal("😀", value([["\U0001F600"]]).value)
    assert.are.equal("abcdef", value([["ab" 'cd'   "ef"]]).value)
    assert.are.equal("ab", value('"a" # a comment\n "b"').value)
    assert.are.equal("", value('""').value)
    assert.are.equal("string", value('"x"').type)
  end)

  it("keeps identifiers (enum values, true/false, inf, nan) as identifiers", function()
    for _, id in ipairs({ "CSVInput", "true", "False", "inf", "nan", "DEEP", "_x1" }) do
      local v = value(id)
      assert.are.equal("ident", v.type)
      assert.are.equal(id, v.value)
    end
  end)
end)

describe("protobuf text: structure", function()
  it("reads nested messages in every spelling, with separators and comments", function()
    local root = parse([[
# leading comment
a { b: 1 }
c: { d: "x", e: 2; }
f < g: G >   # angle brackets
h {}
]])
    local names = {}
    for i, f in ipairs(root.fields) do names[i] = f.name .. ":" .. f.kind end
    assert.are.same({ "a:message", "c:message", "f:message", "h:message" }, names)
    assert.are.equal(1, root.fields[1].fields[1].value.value)
    assert.are.equal("x", root.fields[2].fields[1].value.value)
    assert.are.equal(2, root.fields[2].fields[2].value.value)
    assert.are.equal("G", root.fields[3].fields[1].value.value)
    assert.are.same({}, root.fields[4].fields)
  end)

  it("gives repeated fields one node each, also from [list] syntax", function()
    local root = parse('label: "a" label: "b"\nunits: [1, 2, 3]\nempty: []\ntowers: [{n: 1}, {n: 2}]')
    local vals = {}
    for _, f in ipairs(root.fields) do
      if f.kind == "scalar" then vals[#vals + 1] = f.name .. "=" .. tostring(f.value.value)
      else vals[#vals + 1] = f.name .. "{n=" .. f.fields[1].value.value .. "}" end
    end
    assert.are.same({ "label=a", "label=b", "units=1", "units=2", "units=3", "towers{n=1}", "towers{n=2}" }, vals)
    assert.is_true(root.fields[3].in_list)
    assert.is_false(root.fields[1].in_list)
  end)

  it("records the line and column of each name and value", function()
    local root = parse('a: 1\n  b {\n    c: "x"\n    d: [7,\n        8]\n  }\n')
    assert.are.same({ 1, 1, 1, 4 }, { root.fields[1].line, root.fields[1].col, root.fields[1].value.line, root.fields[1].value.col })
    local b = root.fields[2]
    assert.are.same({ 2, 3, 2, 5 }, { b.line, b.col, b.vline, b.vcol })
    assert.are.same({ 3, 5, 3, 8 }, { b.fields[1].line, b.fields[1].col, b.fields[1].value.line, b.fields[1].value.col })
    assert.are.same({ 4, 5, 4, 9 }, { b.fields[2].line, b.fields[2].col, b.fields[2].value.line, b.fields[2].value.col })
    assert.are.same({ 4, 5, 5, 9 }, { b.fields[3].line, b.fields[3].col, b.fields[3].value.line, b.fields[3].value.col })
  end)

  it("parses the shared EasyRec config", function()
    local root = pt.parse_file("spec/fixtures/easyrec/dbmtl_on_taobao.config")
    assert.are.equal("spec/fixtures/easyrec/dbmtl_on_taobao.config", root.file)
    assert.are.equal(8, #root.fields)
    local model = root.fields[8]
    assert.are.same({ "model_config", 229, 1 }, { model.name, model.line, model.col })
  end)
end)

describe("protobuf text: errors", function()
  it("names the position, what was expected and what came", function()
    local cases = {
      { "a: [1, 2 3]", 'p.config:1:10: expected \',\' or \']\', got "3"' },
      { "a { b: 1", "p.config:1:9: expected a field name or '}', got the end of the file" },
      { "a { b: 1 >", "p.config:1:10: expected a field name or '}', got \">\"" },
      { "a b", "p.config:1:3: expected ':' or '{' after the field name, got \"b\"" },
      { "a:", "p.config:1:3: expected a value, got the end of the file" },
      { "a: 12abc", 'p.config:1:4: expected a value, got "12abc"' },
      { "a: -foo", 'p.config:1:4: expected a value, got "-foo"' },
      { "a: [1,]", 'p.config:1:7: expected a value, got "]"' },
      { "}", 'p.config:1:1: expected a field name or the end of the file, got "}"' },
      { "x: 1\n  y: 2\n  7: 3", 'p.config:3:3: expected a field name or the end of the file, got "7"' },
      { 'a: "abc\n"', "p.config:1:8: expected a closing \" before the end of the line, got the end of the line" },
      { "a: 'abc", "p.config:1:8: expected a closing ' before the end of the line, got the end of the file" },
      { 'a: "\\q"', 'p.config:1:6: expected an escape sequence (\\n \\t \\r \\\\ \\\' \\" \\ooo \\xhh \\uhhhh), got "q"' },
      { "[ext.field]: 1", "p.config:1:1: extension and Any field names ([...]) are not supported in EasyRec configs" },
      { "a {\n  [type.googleapis.com/x] { }\n}", "p.config:2:3: extension and Any field names ([...]) are not supported in EasyRec configs" },
    }
    for _, c in ipairs(cases) do assert.are.equal(c[2], err_of(c[1])) end
  end)

  -- Found by fuzzing: 100 nested messages overflowed LPeg's backtrack stack,
  -- and the error was "backtrack stack overflow (current limit is 400)", no file or position.
  it("refuses nesting deeper than 32 levels at the bracket, and still parses after", function()
    local function nest(open, close, n) return open:rep(n) .. close:rep(n) end
    local node, levels = parse(nest("a {", "}", 32)), 0
    while node.fields[1] do node, levels = node.fields[1], levels + 1 end
    assert.are.equal(32, levels)
    assert.are.equal("p.config:1:99: messages and lists nested deeper than 32 levels", err_of(nest("a {", "}", 33)))
    assert.are.equal("p.config:1:99: messages and lists nested deeper than 32 levels", err_of(nest("a <", ">", 100000)))
    assert.are.equal("p.config:1:84: messages and lists nested deeper than 32 levels", err_of(nest("a: [{", "}]", 17)))
    assert.are.equal("p.config:1:198: messages and lists nested deeper than 32 levels",
      err_of(nest("a: [1, {b: 2, c: <", ">}]", 11)))
    parse(nest("a: [1, {b: 2, c: <", ">}]", 10))
    assert.are.equal(1, parse("a { b { c: 1 } }").fields[1].fields[1].fields[1].value.value)
  end)

  it("reports a missing file", function()
    local ok, e = pcall(pt.parse_file, "spec/fixtures/easyrec/missing.config")
    assert.is_false(ok)
    assert.are.equal("spec/fixtures/easyrec/missing.config: cannot open the config file " ..
      "(spec/fixtures/easyrec/missing.config: No such file or directory)", e)
  end)
end)
