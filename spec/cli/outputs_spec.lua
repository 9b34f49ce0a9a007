-- Nothing lost: every file mtl writes for the user (predict's scores, export's
-- model directory, report.html, the features commands' CSVs, sweep summaries)
-- is written under a temporary name next to it and renamed at the end
-- (mtl.sys.replace). An error leaves an existing output as it was and no
-- temporary behind; predict refuses to write over its own input.
local tiny = require "cli.tiny"
local shell = require "helpers.shell"
local sys = require "mtl.sys"

local function put(p, s) local f = assert(io.open(p, "wb")); f:write(s); f:close() end

-- The names in dir that are temporaries (NAME.tmp.PID).
local function temporaries(dir)
  local t = {}
  for _, n in ipairs(sys.list_dir(dir)) do if n:find("%.tmp%.%d+$") then t[#t + 1] = n end end
  return t
end

describe("outputs", function()
  local dir
  setup(function()
    dir = tiny.setup_trained('rank = { price = "price", alpha = 0.5 },')
    tiny.write_data(dir .. "/score.csv", 300, 5)
  end)
  teardown(function() tiny.rm(dir) end)

  local function predict(input, output)
    return tiny.run(string.format("predict %s/config.lua --checkpoint %s/run --input %s --output %s", dir, dir, input, output))
  end

  it("predict refuses its input as the output, however it is named, and leaves the input as it was", function()
    local input = dir .. "/score.csv"
    local before = shell.read(input)
    os.execute(string.format("cd %s && ln -sf score.csv link.csv && ln -f score.csv hard.csv && mkdir -p sub", dir))
    for _, out in ipairs({ input, dir .. "/sub/../score.csv", dir .. "/link.csv", dir .. "/hard.csv" }) do
      local rc, stdout, err = predict(input, out)
      assert.are.equal(2, rc, err)
      assert.are.equal("", stdout)
      assert.truthy(err:find(string.format("mtl predict: --output %s is the input file %s (the scores would overwrite it): "
        .. "write them to another file\n", out, input), 1, true), err)
      assert.are.equal(before, shell.read(input))
    end
    -- the library refuses it too
    local mtl_predict = require "mtl.predict"
    local ok, err = pcall(mtl_predict.file, {}, {}, { input = input, output = dir .. "/hard.csv" })
    assert.is_false(ok)
    assert.are.equal(string.format("predict: the output %s/hard.csv is the input file %s: scores go to another file", dir, input), err)
  end)

  it("predict leaves an existing output as it was when a row fails, after earlier batches were scored", function()
    local lines = {}
    for l in io.lines(dir .. "/score.csv") do lines[#lines + 1] = l end
    lines[251] = lines[251]:gsub(",[^,]*$", ",not-a-number") -- column b of the 250th row: 5 batches of 50 done
    put(dir .. "/bad.csv", table.concat(lines, "\n") .. "\n")
    put(dir .. "/scores.csv", "the scores of yesterday\n")
    local rc, out, err = predict(dir .. "/bad.csv", dir .. "/scores.csv")
    assert.are.equal(1, rc, err)
    assert.are.equal("", out)
    assert.truthy(err:find("bad.csv:251", 1, true), err)
    assert.are.equal("the scores of yesterday\n", shell.read(dir .. "/scores.csv"))
    assert.are.same({}, temporaries(dir))
    -- and a good run replaces it
    rc, _, err = predict(dir .. "/score.csv", dir .. "/scores.csv")
    assert.are.equal(0, rc, err)
    assert.are.equal(301, select(2, shell.read(dir .. "/scores.csv"):gsub("\n", "")))
  end)

  it("predict removes what a killed predict left, and only that", function()
    local dead = tonumber(shell.run("sh -c 'echo $$'"))
    put(string.format("%s/killed.csv.tmp.%d", dir, dead), "half the rows of a killed run")
    local rc, _, err = predict(dir .. "/score.csv", dir .. "/killed.csv")
    assert.are.equal(0, rc, err)
    assert.are.same({}, temporaries(dir))
    assert.are.equal(301, select(2, shell.read(dir .. "/killed.csv"):gsub("\n", "")))
  end)

  it("predict killed by a signal leaves the old output; the next run removes the killed one's temporary", function()
    tiny.write_data(dir .. "/big.csv", 60000, 11)
    put(dir .. "/sig.csv", "the scores of yesterday\n")
    -- SIGTERM as soon as the temporary output exists (predict is writing rows)
    local cmd = string.format("{ %s predict %s/config.lua --checkpoint %s/run --input %s/big.csv --output %s/sig.csv "
      .. ">/dev/null 2>&1 & pid=$!; while ! ls %s/sig.csv.tmp.* >/dev/null 2>&1; do sleep 0.01; done; "
      .. "kill -TERM $pid; wait $pid; echo $?; } 2>/dev/null", tiny.mtl, dir, dir, dir, dir, dir)
    assert.are.equal("143\n", shell.run(cmd))
    assert.are.equal("the scores of yesterday\n", shell.read(dir .. "/sig.csv"))
    assert.are.equal(1, #temporaries(dir)) -- the killed process's
    local rc, _, err = predict(dir .. "/score.csv", dir .. "/sig.csv")
    assert.are.equal(0, rc, err)
    assert.are.same({}, temporaries(dir))
  end)

  it("two predicts into one output at once: both succeed and the output is one whole run's", function()
    local cmd = string.format("{ p() { %s predict %s/config.lua --checkpoint %s/run --input %s/score.csv --output %s/both.csv "
      .. ">/dev/null 2>&1; }; p & a=$!; p & b=$!; wait $a; echo $?; wait $b; echo $?; } 2>/dev/null",
      tiny.mtl, dir, dir, dir, dir)
    assert.are.equal("0\n0\n", shell.run(cmd))
    local rc, _, err = predict(dir .. "/score.csv", dir .. "/alone.csv")
    assert.are.equal(0, rc, err)
    assert.are.equal(shell.read(dir .. "/alone.csv"), shell.read(dir .. "/both.csv"))
    assert.are.same({}, temporaries(dir))
  end)

  it("export replaces a model directory whole; a failed export leaves the old one", function()
    local rc, _, err = tiny.run(string.format("export %s/config.lua --checkpoint %s/run --out %s/model", dir, dir, dir))
    assert.are.equal(0, rc, err)
    local export = require "mtl.export"
    local m = export.load(dir .. "/model")
    local manifest = shell.read(dir .. "/model/manifest.json")
    -- a config whose vocabulary file cannot be read: export.write fails after it began writing
    local cfg = require("mtl.config.util").deep_copy(m.cfg)
    cfg.features[1].vocab_file = dir .. "/no-such-vocab.txt"
    local ok, e = pcall(export.write, m.model, cfg, dir .. "/model", { step = 1 })
    assert.is_false(ok)
    assert.truthy(tostring(e):find("cannot read vocab_file " .. dir .. "/no-such-vocab.txt", 1, true), e)
    assert.are.equal(manifest, shell.read(dir .. "/model/manifest.json"))
    assert.are.same({ "config.lua", "manifest.json", "model.ckpt" }, sys.list_dir(dir .. "/model"))
    assert.are.same({}, temporaries(dir))
    -- exporting again swaps the new directory in
    export.write(m.model, m.cfg, dir .. "/model", { step = 99 })
    assert.are.equal(99, export.load(dir .. "/model").manifest.step)
    assert.are.same({}, temporaries(dir))
  end)

  it("report writes report.html whole", function()
    put(dir .. "/run/report.html", "old report")
    local rc, _, err = tiny.run(string.format("report %s/run", dir))
    assert.are.equal(0, rc, err)
    assert.truthy(shell.read(dir .. "/run/report.html"):find("^<!DOCTYPE html>"))
    assert.are.same({}, temporaries(dir .. "/run"))
  end)

  it("lua/ opens files for writing only inside mtl.sys.replace", function()
    -- every io.open(..., "w"/"a") in lua/ and models/: mtl.sys itself, a
    -- temporary name handed out by sys.replace, the files inside export's
    -- temporary directory, or lua/mtl/train.lua's metrics.jsonl (the training
    -- loop's own log, appended step by step)
    local allowed = { ["lua/mtl/sys.lua"] = true, ["lua/mtl/export.lua"] = true, ["lua/mtl/train.lua"] = true }
    local hits = shell.run("grep -rnE 'io\\.open\\([^)]*\"[wa]' lua models")
    local bad = {}
    for line in hits:gmatch("[^\n]+") do
      local file = line:match("^([^:]+)")
      if not allowed[file] and not line:find("io.open(tmp", 1, true) then bad[#bad + 1] = line end
    end
    assert.are.same({}, bad)
  end)
end)
