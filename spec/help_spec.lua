-- help(x) / ?x (lua/mtl/help.lua): every function mtl exports has a
-- signature and a one-line description, read from its source's comment or
-- from lua/mtl/help_lines.lua; the lines there name functions that exist and
-- have no comment of their own; modules, classes and models have help; an
-- unknown name says so.
local help = require "mtl.help"
local lines = require "mtl.help_lines"
local mtl = require "mtl"
local shell = require "helpers.shell"

describe("help", function()
  it("has a signature and a description for every exported function", function()
    local missing, seen, n = {}, {}, 0
    for _, e in ipairs(help.catalogue()) do
      local id = help.identity(e.value)
      if type(e.value) == "function" and not seen[id] then
        seen[id] = true
        n = n + 1
        local h = help.lookup(e.value)
        if not (h and h.signature and h.summary and #h.summary > 3) then missing[#missing + 1] = e.name end
      end
    end
    assert.are.same({}, missing)
    assert.is_true(n > 300, n) -- the walk reached mtl.*, its modules, classes and the userdata methods
  end)

  it("reaches the methods of tensors, embedding tables, readers and collective handles", function()
    local prefixes = {}
    for _, e in ipairs(help.catalogue()) do prefixes[e.name:match("^(%w+:)") or ""] = true end
    for _, p in ipairs({ "Tensor:", "Embedding:", "Reader:", "Request:" }) do assert.is_true(prefixes[p], p) end
  end)

  it("keeps help_lines.lua to functions that exist and have no comment of their own", function()
    local names = {}
    for _, e in ipairs(help.catalogue()) do names[e.name] = e.value end
    local unknown, redundant = {}, {}
    for name in pairs(lines) do
      local v = names[name]
      if v == nil then
        unknown[#unknown + 1] = name
      elseif type(v) == "function" and debug.getinfo(v, "S").what == "Lua" then
        local own = help.from_source(v)
        if own and own.summary then redundant[#redundant + 1] = name end
      end
    end
    table.sort(unknown)
    table.sort(redundant)
    assert.are.same({}, unknown)
    assert.are.same({}, redundant)
  end)

  it("shows a C function's line, a Lua function's comment, a class, a module and a model", function()
    assert.are.equal("mtl.zeros(sizes... [, dtype])\n  a tensor of zeros (sizes as numbers or one table)\n"
      .. "  defined in lua/mtl/help_lines.lua\n", help.text(mtl.zeros))
    local narrow = help.text(mtl.Tensor.narrow)
    assert.truthy(narrow:find("^t:narrow%(d, start, length%)\n  positions start..start%+length%-1 of dimension d %(a view%)\n"), narrow)
    assert.truthy(narrow:find("also: Tensor:narrow", 1, true), narrow)
    local save = help.text(mtl.save)
    assert.truthy(save:find("^mtl%.save%(path, value%)\n  writes value to path atomically"), save)
    assert.truthy(save:find("defined in lua/mtl/checkpoint.lua:%d+\n$"), save)
    assert.are.equal("nn.Linear(in, out[, {bias = true}])\n  y = x W^T + b; W [out, in].\n",
      help.text(mtl.nn.Linear):match("^[^\n]*\n[^\n]*\n"))
    assert.truthy(help.text(mtl.nn.MLP.forward):find("(mtl.nn.Module.forward)", 1, true))
    assert.truthy(help.text(mtl.nn):find("^mtl%.nn\n  a small, Torch%-flavoured module system"))
    local model = 'mtl.models.build("mmoe", opts)\n  MMoE: Multi-gate Mixture-of-Experts (Ma et al., KDD 2018).\n'
    assert.are.equal(model, help.text("mmoe"):sub(1, #model))
    local built = mtl.models.build("mmoe", { input = 4, experts = 2, expert = { 4 }, tower = { 2 },
                                             tasks = { { name = "a" }, { name = "b" } } })
    assert.are.equal(model, help.text(built):sub(1, #model))
    assert.are.equal(model, help.text(mtl.models.get("mmoe")):sub(1, #model))
    assert.are.equal("mtl.models.build(name, opts)\n  an instance of the model models/<name>.lua\n",
      help.text(mtl.models.build):match("^[^\n]*\n[^\n]*\n"))
    assert.are.equal("a float32 tensor of size 2x3\n  its methods: help(mtl.Tensor); docs/tensor.md\n",
      help.text(mtl.zeros(2, 3)))
  end)

  it("says when a name is unknown, with a suggestion", function()
    assert.are.equal("help: mtl.zerso is nil: no mtl function, module or model has that name (did you mean 'mtl.zeros'?)\n",
      help.text(nil, "mtl.zerso"))
    assert.are.equal("help: no mtl function, module or model is called 'mtl.zerso' (did you mean 'mtl.zeros'?)\n",
      help.text("mtl.zerso"))
    assert.are.equal("help: the value is nil (help() alone shows the REPL's help)\n", help.text(nil))
    assert.truthy(help.text(function() end):find("is a function that mtl does not export", 1, true))
    assert.are.equal("help: 42 (number) is not an mtl function, module or model\n", help.text(42))
  end)

  it("is help(x) and ?x in the REPL, -e and scripts", function()
    local out = shell.run(string.format("printf '%%s\\n' '?mtl.models.build' '?mtl.nosuch' 'help(mtl.Tensor.get)' | %s",
      shell.launcher))
    assert.truthy(out:find("^mtl%.models%.build%(name, opts%)\n  an instance of the model models/<name>%.lua\n"), out)
    assert.truthy(out:find("\nhelp: mtl.nosuch is nil: no mtl function, module or model has that name", 1, true), out)
    assert.truthy(out:find("\nt:get(i, j, ...)\n  one element, one 1-based index per dimension\n", 1, true), out)
    out = shell.run(string.format("%s -e 'help(mtl.ones)'", shell.launcher))
    assert.truthy(out:find("^mtl%.ones%(sizes%.%.%. %[, dtype%]%)\n  a tensor of ones\n"), out)
  end)
end)
