-- `mtl features ...` (lua/mtl/cli_features.lua): run(args) in a fresh process
-- through the launcher, with its exit code, stdout and stderr.
local shell = require "helpers.shell"

local slurp = shell.read_if_exists

-- Runs require("mtl.cli_features").run(args) in a new process; returns code, stdout, stderr.
local function features(dir, ...)
  local words = {}
  for i, a in ipairs({ ... }) do words[i] = string.format("%q", a) end
  local code = string.format("os.exit(require('mtl.cli_features').run({%s}), true)", table.concat(words, ","))
  local status = shell.run(string.format("cd %s && %s -e %s >out.txt 2>err.txt; echo $?", shell.quote(dir),
    shell.quote(shell.launcher), shell.quote(code)))
  return tonumber(status:match("%d+")), slurp(dir .. "/out.txt"), slurp(dir .. "/err.txt")
end

describe("mtl features", function()
  local dir
  setup(function() dir = shell.tmpdir() end)
  teardown(function() shell.run("rm -rf " .. shell.quote(dir)) end)

  local SIZE = { "--users", "80", "--items", "60", "--categories", "4", "--brands", "8", "--shops", "6",
                 "--days", "3", "--impressions-per-day", "400" }

  it("logs, samples and stats make the files step by step", function()
    local code, out, err = features(dir, "logs", "logs", unpack(SIZE))
    assert.are.equal(0, code, err)
    assert.is_truthy(out:match("^logs: %d+ impressions, %d+ events\n$"))
    code, out, err = features(dir, "samples", "--impressions", "logs/impressions.csv", "--events", "logs/behaviour.csv",
      "--items", "logs/items.csv", "--output", "samples.csv", "--click-window", "600")
    assert.are.equal(0, code, err)
    assert.is_truthy(out:match("^samples.csv: %d+ rows, %d+ clicks, %d+ purchases\n$"))
    local spec = io.open(dir .. "/spec.lua", "w")
    spec:write([[return { windows = { 1 }, features = {
      { object = { "user", "item.category" }, counts = { "click" }, rates = { "ctr" } },
      { rank = "item", within = "item.brand", by = "impression" } } }]])
    spec:close()
    code, out, err = features(dir, "stats", "--events", "logs/behaviour.csv", "--samples", "samples.csv", "--items",
      "logs/items.csv", "--output", "with_stats.csv", "--config", "spec.lua")
    assert.are.equal(0, code, err)
    assert.are.equal("with_stats.csv: 3 statistics\n", out)
    local header = slurp(dir .. "/with_stats.csv"):match("^[^\n]*")
    assert.is_truthy(header:match("^is_pay,is_click,user_id,trigger_id,item_id,timestamp,"))
    assert.is_truthy(header:match(",user_x_item_category_click_1d,user_x_item_category_ctr_1d,"
      .. "item_impression_rank_in_item_brand_1d$"))
  end)

  it("dataset writes the train/test split and the schema", function()
    local args = { "dataset", "ds", "--windows", "1", "--test-days", "1", "--quiet" }
    for _, a in ipairs(SIZE) do args[#args + 1] = a end
    local code, out, err = features(dir, unpack(args))
    assert.are.equal(0, code, err)
    assert.is_truthy(out:match("^ds: train %d+ rows, test %d+ rows, 26 statistics\n$"))
    for _, f in ipairs({ "train.csv", "test.csv", "oracle_test.csv", "schema.lua", "logs/items.csv" }) do
      assert.is_truthy(slurp(dir .. "/ds/" .. f), f)
    end
  end)

  it("exits 2 for a wrong command line and 1 for a failure while running", function()
    local code, _, err = features(dir, "bogus")
    assert.are.equal(2, code)
    assert.is_truthy(err:find("mtl features: unknown command 'bogus'", 1, true))
    code, _, err = features(dir, "logs", "x", "--users", "many")
    assert.are.equal(2, code)
    assert.is_truthy(err:find("expected a whole number, got 'many'", 1, true))
    code, _, err = features(dir, "stats", "--events", "nope.csv", "--samples", "s.csv", "--output", "o.csv")
    assert.are.equal(2, code)
    assert.are.equal("mtl features: --events: cannot open nope.csv\n", err)
    code, _, err = features(dir, "logs", "x2", "--brands", "2")
    assert.are.equal(1, code)
    assert.are.equal("mtl features: mtl.scenario.generate: brands (2) must be >= categories (20)\n", err)
  end)
end)
