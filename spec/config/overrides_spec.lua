-- --set key.path=value overrides (lua/mtl/config/overrides.lua): the safe value
-- parser, key paths into tables and lists, and their errors.
local config = require "mtl.config"

local err_of = require("helpers.check").error_of

describe("--set values", function()
  local parse = config.parse_value

  it("reads numbers, booleans, nil, inf and nan", function()
    assert.are.equal(100, parse("100"))
    assert.are.equal(-1.5e-3, parse("-1.5e-3"))
    assert.are.equal(16, parse("0x10"))
    assert.are.equal(0.5, parse(" .5 "))
    assert.is_true(parse("true"))
    assert.is_false(parse("false"))
    assert.is_nil(parse("nil"))
    assert.are.equal(math.huge, parse("inf"))
    assert.are.equal(math.huge, parse("math.huge"))
    assert.are.equal(-math.huge, parse("-inf"))
    local nan = parse("nan")
    assert.is_true(nan ~= nan)
  end)

  it("reads quoted strings with escapes, and takes anything else as a plain string", function()
    assert.are.equal("a b", parse('"a b"'))
    assert.are.equal("it's\n", parse("'it\\'s\\n'"))
    assert.are.equal("100", parse('"100"'))
    assert.are.equal("x.csv", parse("x.csv"))
    assert.are.equal("runs/a b.csv", parse("runs/a b.csv"))
    assert.are.equal("ple", parse("ple"))
    assert.are.equal("1e5x", parse("1e5x"))
    assert.are.equal("true_story", parse("true_story"))
    assert.are.equal("1, 2", parse("1, 2"))
    assert.are.equal("", parse(""))
  end)

  it("reads Lua table literals without running them", function()
    assert.are.same({ 256, 128 }, parse("{256, 128}"))
    assert.are.same({}, parse("{ }"))
    assert.are.same({ name = "adam", lr = 1e-3 }, parse("{name = 'adam', lr = 1e-3}"))
    assert.are.same({ { 64, 32 }, { 16 } }, parse("{{64, 32}, {16};}"))
    assert.are.same({ "auc", "logloss" }, parse("{auc, logloss}")) -- bare words are strings
    assert.are.same({ [1] = "a", x = true, ["y z"] = 2 }, parse('{"a", x = true, ["y z"] = 2}'))
    assert.are.same({ a = { b = { c = 1 } } }, parse("{a = {b = {c = 1}}}"))
    assert.are.same({ 1, 3 }, { parse("{1, nil, 3}")[1], parse("{1, nil, 3}")[3] })
    -- code is never run: a call is not a value
    assert.are.equal("config: cannot read the value \"{os.exit(1)}\": expected a value, ',' or '}' at character 4, got \".\"",
      err_of(parse, "{os.exit(1)}"))
  end)

  it("names the character where a table or string goes wrong", function()
    assert.are.equal("config: cannot read the value \"{256,\": expected a value, ',' or '}' at character 6, got the end",
      err_of(parse, "{256,"))
    assert.are.equal("config: cannot read the value \"{a = }\": expected a value at character 6, got \"}\"",
      err_of(parse, "{a = }"))
    assert.are.equal("config: cannot read the value \"\\\"abc\": expected a closing \" at character 5, got the end",
      err_of(parse, '"abc'))
    assert.are.equal("config: cannot read the value \"{1} 2\": expected the end of the value at character 5, got \"2\"",
      err_of(parse, "{1} 2"))
  end)

  -- Found by fuzzing: 80 nested tables overflowed LPeg's backtrack stack, and the
  -- error was "backtrack stack overflow (current limit is 400)", without the value.
  it("refuses tables nested deeper than 32 levels, and still reads after", function()
    local deep = ("{"):rep(32) .. ("}"):rep(32)
    assert.are.equal("table", type(parse(deep)))
    assert.are.equal("config: cannot read the value \"{" .. deep .. "}\": tables nested deeper than 32 levels at character 33",
      err_of(parse, "{" .. deep .. "}"))
    local e = err_of(parse, ("{a="):rep(100000))
    assert.are.equal(": tables nested deeper than 32 levels at character 97", e:sub(-53))
    assert.are.same({ { 1 } }, parse("{{1}}"))
  end)
end)

describe("--set key paths", function()
  local base = {
    data = { train = "a.csv", batch_size = 32 },
    features = { { name = "user_id", type = "id", dim = 8 }, { name = "item_id", type = "id", dim = 8 } },
    model = { name = "mmoe", experts = 4, tasks = { { name = "ctr", label = "clk" }, { name = "cvr", label = "buy" } } },
    optimizer = { dense = { name = "adam", lr = 1e-3 } },
  }

  it("sets numbers, strings, tables and list entries, and leaves the input alone", function()
    local cfg = config.apply_overrides(base, { "train.steps=100", "model.experts=8", "optimizer.dense.lr=0.01",
      "model.tasks.1.weight=2", "data.train=x.csv", "model.expert={64, 32}", "optimizer.schedule.name=cosine" })
    assert.are.equal(100, cfg.train.steps)
    assert.are.equal(8, cfg.model.experts)
    assert.are.equal(0.01, cfg.optimizer.dense.lr)
    assert.are.equal(2, cfg.model.tasks[1].weight)
    assert.are.equal("x.csv", cfg.data.train)
    assert.are.same({ 64, 32 }, cfg.model.expert)
    assert.are.same({ name = "cosine" }, cfg.optimizer.schedule)
    assert.are.equal(4, base.model.experts)
    assert.is_nil(base.train)
  end)

  it("finds list entries by name, appends at n + 1, and removes keys with nil", function()
    local cfg = config.apply_overrides(base, { "features.item_id.dim=4", "model.tasks.cvr.weight=0.5",
      "model.tasks.3={name = 'pay', label = 'pay'}", "optimizer.dense.lr=nil", "data.batch_size = 64" })
    assert.are.equal(4, cfg.features[2].dim)
    assert.are.equal(0.5, cfg.model.tasks[2].weight)
    assert.are.same({ name = "pay", label = "pay" }, cfg.model.tasks[3])
    assert.is_nil(cfg.optimizer.dense.lr)
    assert.are.equal(64, cfg.data.batch_size)
    assert.are.equal("a=b", config.apply_overrides(base, { "data.train=a=b" }).data.train)
  end)

  it("rejects unknown sections, bad paths and malformed overrides", function()
    local function e(set) return err_of(config.apply_overrides, base, { set }) end
    assert.are.equal("config: unknown section 'trian' in --set trian.steps (did you mean 'train'?)", e("trian.steps=1"))
    assert.are.equal("config: unknown section 'foo' in --set foo", e("foo=1"))
    assert.are.equal("config: 'model.tasks' has no entry named 'cvx' (did you mean 'cvr'?)", e("model.tasks.cvx.weight=1"))
    assert.are.equal("config: 'model.tasks.4': index 4 is out of range (the list has 2 entries)", e("model.tasks.4.weight=1"))
    assert.are.equal("config: cannot set 'model.experts.n': 'model.experts' is 4, not a table", e("model.experts.n=1"))
    assert.are.equal("config: bad key path 'model..experts' (empty component)", e("model..experts=1"))
    assert.are.equal("config: --set expects key.path=value, got \"model.experts\"", e("model.experts"))
    assert.are.equal("config: --set expects key.path=value, got \"=3\"", e("=3"))
  end)
end)
