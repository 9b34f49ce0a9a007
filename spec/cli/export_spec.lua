-- `mtl export`: a self-contained model directory; loading it (the CLI on the
-- directory, or mtl.export.load) gives exactly the predictions of the
-- checkpoint it came from, with no access to the run or the training data.
local tiny = require "cli.tiny"
local json = require "cjson"
local slurp = require("helpers.shell").read

describe("mtl export", function()
  local dir
  setup(function()
    dir = tiny.setup('rank = { price = "price", alpha = 0.5 },')
    local rc, _, err = tiny.run(string.format("train %s/config.lua --quiet", dir))
    assert(rc == 0, err)
    tiny.write_data(dir .. "/score.csv", 90, 3)
  end)
  teardown(function() tiny.rm(dir) end)

  it("writes manifest.json, config.lua and model.ckpt", function()
    local rc, out, err = tiny.run(string.format("export %s/config.lua --checkpoint %s/run --out %s/model --json", dir, dir, dir))
    assert.are.equal(0, rc, err)
    local res = json.decode(out)
    assert.are.equal(24, res.step)
    local m = json.decode(slurp(dir .. "/model/manifest.json"))
    assert.are.equal("mtl-export-1", m.format)
    assert.are.equal("mmoe", m.model)
    assert.are.same({ "click", "pay" }, m.outputs)
    assert.are.equal(24, m.step)
    assert.are.equal(4 + 4 + 2, m.input_dim) -- two 4-dim embeddings, two numbers
    assert.are.equal("model.ckpt", m.files.weights)
    local st = require("mtl").load(dir .. "/model/model.ckpt")
    assert.are.equal("mtl-export-1", st.format)
    assert.is_table(st.features.fitted.a) -- the fitted z-score of column a
    assert.is_number(st.features.fitted.a.mean)
    assert.is_table(st.features.tables.user)
  end)

  it("predicts from the directory alone exactly as from the checkpoint", function()
    local rc, _, err = tiny.run(string.format("predict %s/config.lua --checkpoint %s/run --input %s/score.csv --output %s/a.csv --pass-through item",
      dir, dir, dir, dir))
    assert.are.equal(0, rc, err)
    -- move the run and the training data away: the directory must not need them
    os.execute(string.format("mv %s/run %s/run.moved && mv %s/train.csv %s/train.moved", dir, dir, dir, dir))
    rc, _, err = tiny.run(string.format("predict %s/model --input %s/score.csv --output %s/b.csv --pass-through item", dir, dir, dir))
    os.execute(string.format("mv %s/run.moved %s/run && mv %s/train.moved %s/train.csv", dir, dir, dir, dir))
    assert.are.equal(0, rc, err)
    local a, b = slurp(dir .. "/a.csv"), slurp(dir .. "/b.csv")
    assert.are.equal(91, select(2, a:gsub("\n", "")))
    assert.are.equal(a, b)
  end)

  it("records --precision bf16 in the manifest, which predict and eval then run in", function()
    local rc, _, err = tiny.run(string.format("export %s/config.lua --checkpoint %s/run --out %s/model16 --precision bf16",
      dir, dir, dir))
    assert.are.equal(0, rc, err)
    assert.are.equal("bf16", json.decode(slurp(dir .. "/model16/manifest.json")).precision)
    assert.is_nil(json.decode(slurp(dir .. "/model/manifest.json")).precision)
    rc, _, err = tiny.run(string.format("predict %s/config.lua --checkpoint %s/run --input %s/score.csv --output %s/a.csv",
      dir, dir, dir, dir))
    assert.are.equal(0, rc, err)
    rc, _, err = tiny.run(string.format("predict %s/model16 --input %s/score.csv --output %s/h.csv", dir, dir, dir))
    assert.are.equal(0, rc, err)
    local available, status = require("mtl").bf16_status()
    assert.truthy(err:find("mtl: inference precision " .. status, 1, true), err)
    local a, h = tiny.read_csv(dir .. "/a.csv"), tiny.read_csv(dir .. "/h.csv")
    local differ = 0
    for i = 1, 90 do
      local x, y = tonumber(a.rows[i].p_click), tonumber(h.rows[i].p_click)
      assert.is_true(math.abs(x - y) < 0.01, string.format("row %d: %g vs %g", i, x, y))
      if x ~= y then differ = differ + 1 end
    end
    assert.are.equal(available, differ > 0)
    -- --precision fp32 overrides the manifest: FP32's output, byte for byte
    rc, _, err = tiny.run(string.format("predict %s/model16 --input %s/score.csv --output %s/f.csv --precision fp32", dir, dir, dir))
    assert.are.equal(0, rc, err)
    assert.are.equal("", err)
    assert.are.equal(slurp(dir .. "/a.csv"), slurp(dir .. "/f.csv"))
    local _, o32 = tiny.run(string.format("eval %s/config.lua --checkpoint %s/run --json", dir, dir))
    local _, o16 = tiny.run(string.format("eval %s/config.lua --checkpoint %s/run --json --precision bf16", dir, dir))
    local e32, e16 = json.decode(o32).metrics.click.auc, json.decode(o16).metrics.click.auc
    assert.is_true(math.abs(e32 - e16) < 0.005, string.format("auc %g vs %g", e32, e16))
  end)

  it("loads in Lua with mtl.export.load and scores the same", function()
    local export = require "mtl.export"
    local mtl = require "mtl"
    local m = export.load(dir .. "/model")
    assert.are.equal(24, m.step)
    local rows = require("mtl.predict").file(m.model, m.cfg, { input = dir .. "/score.csv", output = dir .. "/c.csv" })
    assert.are.equal(90, rows)
    local c = tiny.read_csv(dir .. "/c.csv")
    local a = tiny.read_csv(dir .. "/a.csv")
    for i = 1, 90 do
      assert.are.equal(a.rows[i].p_click, c.rows[i].p_click)
      assert.are.equal(a.rows[i].rank_score, c.rows[i].rank_score)
    end
    -- evaluate the loaded model: the same metrics as eval on the checkpoint
    local ev = m.model:evaluate(dir .. "/test.csv")
    local rc, out = tiny.run(string.format("eval %s/config.lua --checkpoint %s/model --json", dir, dir))
    assert.are.equal(0, rc)
    -- JSON numbers carry 14 significant digits
    assert.is_true(math.abs(json.decode(out).metrics.click.auc - ev.click.auc) < 1e-12)
    assert.is_true(ev.click.auc > 0.75)
    assert.is_function(mtl.metrics.auc)
  end)

  it("refuses to write into a directory that holds other files", function()
    local rc, _, err = tiny.run(string.format("export %s/config.lua --checkpoint %s/run --out %s", dir, dir, dir))
    assert.are.equal(2, rc)
    assert.truthy(err:find(dir .. " exists and is not an exported model", 1, true), err)
    rc, _, err = tiny.run(string.format("export %s/config.lua --checkpoint %s/run", dir, dir))
    assert.are.equal(2, rc)
    assert.truthy(err:find("--out DIR is required", 1, true), err)
  end)
end)
