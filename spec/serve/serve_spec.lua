-- Serving (docs/serving.md): the reader's in-memory rows, the Lua Scorer
-- that each embedded state of the C library runs (lua/mtl/serve.lua), and the
-- C example end to end. The C API itself is tested by
-- runtime/tests/serve/test_serve.c (ctest).
local mtl = require "mtl"
local shell = require "helpers.shell"

local COLUMNS = {
  { name = "id", type = "int64" }, { name = "x", type = "float" },
  { name = "tags", type = "multi", separator = "|", default = "" },
}

describe("readers of text", function()
  it("read rows from a string, and new rows after set_text", function()
    local r = mtl.data.csv { text = "1,2.5,7|8\n3,-1,\n", text_name = "request", batch_size = 0, columns = COLUMNS }
    local b = r:next()
    assert.are.equal(2, b.size)
    assert.are.same({ 1, 3 }, b.columns.id:values())
    assert.are.same({ 2.5, -1 }, b.columns.x:values())
    assert.are.same({ 0, 2, 2 }, b.columns.tags.offsets:values())
    assert.is_nil(r:next())
    r:set_text("5,6,9\n")
    b = r:next()
    assert.are.equal(1, b.size)
    assert.are.same({ 5 }, b.columns.id:values())
    r:set_text("")
    assert.is_nil(r:next())
    r:close()
  end)

  it("name the text and the row in errors", function()
    local r = mtl.data.csv { text = "1,2,3\n4,abc,5\n", text_name = "request", batch_size = 10, columns = COLUMNS }
    local ok, err = pcall(r.next, r)
    assert.is_false(ok)
    assert.are.equal("request:2:2: expected a number for column 'x', got \"abc\"", err)
    local r2 = mtl.data.csv { text = "1,2\n", batch_size = 10, columns = COLUMNS }
    ok, err = pcall(r2.next, r2)
    assert.is_false(ok)
    assert.matches("<text>:1:3: expected 3 fields, got 2", err, 1, true)
  end)

  it("refuse files and text together, and set_text on a file reader", function()
    local ok, err = pcall(mtl.data.csv, { text = "1,2,3", files = "x.csv", columns = COLUMNS })
    assert.is_false(ok)
    assert.matches("give option 'files' or option 'text', not both", err, 1, true)
    ok, err = pcall(mtl.data.csv, { files = "x.csv", batch_size = 0, columns = COLUMNS })
    assert.is_false(ok)
    assert.matches("batch_size must be > 0", err, 1, true)
    local path = os.tmpname()
    local f = io.open(path, "w")
    f:write("1,2,3\n")
    f:close()
    local r = mtl.data.csv { files = path, columns = COLUMNS }
    ok, err = pcall(r.set_text, r, "4,5,6")
    os.remove(path)
    assert.is_false(ok)
    assert.matches("set_text: the reader reads files, not text", err, 1, true)
  end)
end)

describe("mtl.serve", function()
  local train = require "mtl.train"
  local export = require "mtl.export"
  local predict = require "mtl.predict"
  local serve = require "mtl.serve"

  -- Trains cfg on the rows (after a header), exports it, and checks that
  -- serving the rows (labels left empty) gives what mtl predict writes, and
  -- both the models' outputs as the run's evaluation scored them, bit for bit
  -- (%.9g: a float32 exactly): inference is the packed FP32 kernel's
  -- everywhere, whatever the batch (rank_score and score: predict computes
  -- the expression in double). Returns the Scorer.
  local function serves_as_predict(cfg, header, rows, outputs)
    local dir = shell.tmpdir()
    cfg.data.train = shell.write(dir .. "/train.csv", header .. "\n" .. table.concat(rows, "\n") .. "\n")
    local run = train.new(cfg, { quiet = true })
    run:fit()
    export.write(run, cfg, dir .. "/model")
    run.model:eval()
    predict.file(run, cfg, { input = dir .. "/train.csv", output = dir .. "/scores.csv" })
    local expected = {}
    for line in io.lines(dir .. "/scores.csv") do expected[#expected + 1] = predict.split(line, ",", '"') end
    local evaluated = run.model:evaluate(dir .. "/train.csv", { keep = true, batch_size = 64 })
    local compared = 0
    for j, name in ipairs(outputs) do
      if evaluated[name] then
        compared = compared + 1
        for i, v in ipairs(evaluated[name].pred:values()) do
          assert.are.equal(expected[i + 1][j], string.format("%.9g", v), string.format("row %d %s", i, name))
        end
      end
    end
    assert.is_true(compared > 0, "no output of the evaluation to compare")
    local s = serve.load(dir .. "/model")
    assert.are.same(outputs, s.outputs)
    local lines = {}
    for i, row in ipairs(rows) do lines[i] = row:gsub("^%d,%d", ",") end -- labels left empty: not read
    s.reader:set_text(table.concat(lines, "\n"))
    if s.rank_reader then s.rank_reader:set_text(table.concat(lines, "\n")) end
    local out = mtl.no_grad(function() return s:score_text(#rows) end)
    for j = 1, #outputs do
      local v = out[j]:values()
      for i = 1, #rows do
        local want = tonumber(expected[i + 1][j])
        if outputs[j] == "rank_score" or outputs[j] == "score" then -- the expression: predict's in double
          assert(math.abs(v[i] - want) <= 1e-6 * math.max(1, math.abs(want)),
            string.format("row %d output %d: %.9g, mtl predict wrote %.9g", i, j, v[i], want))
        else
          assert.are.equal(expected[i + 1][j], string.format("%.9g", v[i]), string.format("row %d output %d", i, j))
        end
      end
    end
    shell.rm_rf(dir)
    return s, expected[1]
  end

  it("scores text rows as mtl predict does (probabilities, rank_score, score)", function()
    math.randomseed(3)
    local rows = {}
    for i = 1, 200 do
      local click = math.random() < 0.3 and 1 or 0
      rows[i] = string.format("%d,%d,%d,%.2f,%.3f", click, click * (math.random() < 0.5 and 1 or 0),
        math.random(0, 19), 1 + math.random() * 50, math.random())
    end
    local cfg = {
      data = { labels = { "is_click", "is_pay" }, batch_size = 50,
               columns = { { name = "is_click", type = "float" }, { name = "is_pay", type = "float" },
                           { name = "user", type = "int" }, { name = "price", type = "float" },
                           { name = "d", type = "float" } } },
      features = { { name = "user", type = "id", column = "user", num_buckets = 20, dim = 4 },
                   { name = "d", type = "raw", column = "d", normalize = "zscore" } },
      model = { name = "mmoe", experts = 2, expert = { 8 }, tower = { 4 },
                tasks = { { name = "click", label = "is_click" }, { name = "pay", label = "is_pay" } } },
      rank = { price = "price", expression = "click + pay" },
      train = { epochs = 1, log_every = 1000 },
    }
    local s, header = serves_as_predict(cfg, "is_click,is_pay,user,price,d", rows, { "click", "pay", "rank_score", "score" })
    assert.are.same({ "p_click", "p_pay", "rank_score", "score" }, header)
    -- another state's Scorer: built from the config and fitted values alone,
    -- with the first one's tables
    local w = serve.build(s.cfg, s.features.fitted, s:table_list())
    assert.are.same(s:table_list(), w:table_list())
    local names_s, names_w = s:parameter_list(), w:parameter_list()
    assert.are.same(names_s, names_w)
  end)

  it("scores sequence features read through a group's DIN attention as mtl predict does", function()
    math.randomseed(4)
    local rows = {}
    for i = 1, 150 do
      local hist = {}
      for k = 1, math.random(0, 4) do hist[k] = math.random(0, 9) end
      local brand = math.random(0, 9)
      local click = (brand % 3 == 0 or math.random() < 0.2) and 1 or 0
      rows[i] = string.format("%d,%d,%d,%d,%s", click, click * (math.random() < 0.5 and 1 or 0), math.random(0, 19),
        brand, table.concat(hist, "|"))
    end
    local cfg = {
      data = { labels = { "is_click", "is_pay" }, batch_size = 50,
               columns = { { name = "is_click", type = "float" }, { name = "is_pay", type = "float" },
                           { name = "user", type = "int" }, { name = "brand", type = "int" },
                           { name = "hist", type = "seq", default = "" } } },
      features = { { name = "user", type = "id", column = "user", num_buckets = 20, dim = 4 },
                   { name = "brand", type = "id", column = "brand", num_buckets = 10, dim = 4 },
                   { name = "hist", type = "sequence", column = "hist", shared = "brand", dim = 4 } },
      groups = { { name = "all", features = { "user", "brand" },
                   sequences = { { name = "s", query = { "brand" }, history = { "hist" } } } } },
      model = { name = "mmoe", experts = 2, expert = { 8 }, tower = { 4 },
                tasks = { { name = "click", label = "is_click" }, { name = "pay", label = "is_pay" } } },
      train = { epochs = 2, log_every = 1000 },
    }
    serves_as_predict(cfg, "is_click,is_pay,user,brand,hist", rows, { "click", "pay", "rank_score" })
  end)

  it("explains what is not a model directory", function()
    local ok, err = pcall(serve.load, "/nonexistent")
    assert.is_false(ok)
    assert.matches("'/nonexistent' is not an mtl model directory (no manifest.json of format mtl-export-1", err, 1, true)
  end)
end)

describe("the C serving example #slow", function()
  local exe = shell.build .. "/score_request"
  it("trains, exports and scores 300 candidates, printing the latency distribution", function()
    local probe = io.open(exe)
    assert(probe, "no " .. exe .. ": the build makes it (CMakeLists.txt, target score_request)")
    probe:close()
    local dir = shell.tmpdir()
    local out = shell.run(string.format("cd %s && MTL_EXAMPLE_SMALL=1 %s examples/serve/train_and_export.lua %s 2>&1; echo status $?",
      shell.quote(shell.root), shell.quote(shell.launcher), shell.quote(dir)))
    assert.matches("status 0", out, 1, true)
    assert.matches("exported", out, 1, true)
    out = shell.run(string.format("%s %s/model %s/request.csv --requests 20 --warmup 2 --threads 1,2 2>&1; echo status $?",
      shell.quote(exe), dir, dir))
    shell.run("rm -rf " .. shell.quote(dir))
    assert.matches("status 0", out, 1, true)
    assert.matches("3 outputs (click, pay, rank_score)", out, 1, true)
    assert.matches("first request: 300 candidates", out, 1, true)
    assert.matches("input    threads  requests      p50      p90      p99", out, 1, true)
    assert.matches("\ncsv            1        20 ", out, 1, true)
    assert.matches("\ncsv            2        40 ", out, 1, true)
    assert.matches("\ncolumns        1        20 ", out, 1, true)
    assert.matches("\ncolumns        2        40 ", out, 1, true)
  end)
end)
