-- What `mtl train` makes sure of before and while it trains (docs/training.md,
-- "Before the first step", "A loss that is not finite"): its inputs, the
-- model_dir lock, temporaries of killed runs, a corrupt latest checkpoint on
-- --resume, a NaN loss.
local tiny = require "cli.tiny"
local shell = require "helpers.shell"
local mtl = require "mtl"

local function checkpoints(dir) return mtl.checkpoint.list(dir .. "/checkpoints") end

-- The id of a process that has ended.
local function dead_pid() return tonumber(shell.run("sh -c 'echo $$'"):match("%d+")) end

describe("mtl train", function()
  local dir, cfg
  setup(function()
    dir = tiny.setup()
    cfg = dir .. "/config.lua"
  end)
  teardown(function() tiny.rm(dir) end)

  local function train(run, args, env)
    return tiny.run(string.format("train %s --quiet --model-dir %s/%s %s", cfg, dir, run, args or ""), env)
  end

  describe("checks its inputs before the first step", function()
    local function refused(run, sets, message)
      local rc, out, err = train(run, sets)
      assert.are.equal(1, rc, err)
      assert.are.equal("", out)
      assert.are.equal("mtl train: " .. message .. "\n", err)
      -- nothing was written: no checkpoint, no model_dir
      assert.is_false(require("mtl.sys").exists(dir .. "/" .. run))
    end

    it("an empty or header-only training file", function()
      shell.write(dir .. "/empty.csv", "")
      shell.write(dir .. "/header.csv", "is_click,is_pay,user,item,price,a,b\n")
      refused("e1", "--set data.train=" .. dir .. "/empty.csv", "data.train: " .. dir .. "/empty.csv is empty")
      refused("e2", "--set data.train=" .. dir .. "/header.csv",
        "data.train: " .. dir .. "/header.csv has no rows (only a header)")
    end)

    it("a missing or unreadable eval file, a directory", function()
      refused("e3", "--set data.eval=" .. dir .. "/nope.csv",
        "data.eval: cannot read " .. dir .. "/nope.csv: No such file or directory")
      refused("e4", "--set data.eval=" .. dir, "data.eval: " .. dir .. " is a directory, not a data file")
    end)

    it("a header without a configured column, named with file:line", function()
      shell.write(dir .. "/nob.csv", "is_click,is_pay,user,item,price,a\n1,0,1,2,3.5,0.5\n")
      refused("e5", "--set data.eval=" .. dir .. "/nob.csv",
        "data.eval: " .. dir .. "/nob.csv:1: expected a column named 'b' in the header, got none")
    end)
  end)

  describe("model_dir lock", function()
    it("refuses a second run on a model_dir in use, and releases it at the end", function()
      local big = tiny.data_dir(2000, 5, 100, 6)
      local path = tiny.write_config(big)
      shell.write(path, (shell.read(path):gsub("epochs = 3", "epochs = 1000")))
      local first = tiny.start(big, "first", string.format("train %s --quiet --model-dir %s/run", path, big))
      finally(function()
        os.execute("kill -9 " .. first.pid .. " 2>/dev/null")
        tiny.rm(big)
      end)
      tiny.wait_checkpoints(big .. "/run", 1)
      local rc, _, err = tiny.run(string.format("train %s --quiet --resume --model-dir %s/run", path, big))
      assert.are.equal(1, rc, err)
      local host = require("mtl.sys").hostname()
      local head = string.format("mtl train: %s/run is in use by another `mtl train` (process %s on %s, ", big, first.pid, host)
      assert.are.equal(head, err:sub(1, #head))
      assert.truthy(err:find("use another model_dir; if that process is gone, remove " .. big .. "/run/train.lock\n", 1, true), err)
      os.execute("kill -TERM " .. first.pid)
      assert.are.equal(143, (first.wait()))
      assert.is_false(require("mtl.sys").exists(big .. "/run/train.lock"))
    end)

    it("takes over the lock of a process that no longer runs, with a note", function()
      require("mtl.sys").mkdir_p(dir .. "/stale")
      local pid = dead_pid()
      shell.write(dir .. "/stale/train.lock", string.format("pid %d host %s started x\n", pid, require("mtl.sys").hostname()))
      local rc, out, err = tiny.run(string.format("train %s --model-dir %s/stale --set train.steps=2", cfg, dir))
      assert.are.equal(0, rc, err)
      assert.truthy(out:find(string.format("took over %s/stale/train.lock: its process %d no longer runs\n", dir, pid), 1, true), out)
      assert.is_false(require("mtl.sys").exists(dir .. "/stale/train.lock"))
    end)
  end)

  it("removes temporaries of dead processes at start, not those of live ones", function()
    local run = dir .. "/tmps"
    require("mtl.sys").mkdir_p(run .. "/checkpoints")
    local dead, live = dead_pid(), require("mtl.sys").pid()
    shell.write(string.format("%s/checkpoints/step-4.ckpt.tmp.%d", run, dead), "partial")
    shell.write(string.format("%s/metrics.jsonl.tmp.%d", run, dead), "partial")
    shell.write(string.format("%s/checkpoints/step-8.ckpt.tmp.%d", run, live), "being written")
    local rc, out, err = tiny.run(string.format("train %s --model-dir %s --set train.steps=2", cfg, run))
    assert.are.equal(0, rc, err)
    assert.truthy(out:find(string.format("removed 2 temporaries of processes that no longer run: metrics.jsonl.tmp.%d, "
      .. "checkpoints/step-4.ckpt.tmp.%d\n", dead, dead), 1, true), out)
    assert.is_false(require("mtl.sys").exists(string.format("%s/checkpoints/step-4.ckpt.tmp.%d", run, dead)))
    assert.is_true(require("mtl.sys").exists(string.format("%s/checkpoints/step-8.ckpt.tmp.%d", run, live)))
  end)

  it("--resume with a corrupt latest checkpoint names the intact one before it and the command", function()
    local rc, _, err = train("corrupt", "--set train.steps=12")
    assert.are.equal(0, rc, err)
    local run = dir .. "/corrupt"
    local last = run .. "/checkpoints/step-12.ckpt"
    local bytes = shell.read(last)
    local mid = math.floor(#bytes / 2)
    shell.write(last, bytes:sub(1, mid) .. string.char((bytes:byte(mid + 1) + 1) % 256) .. bytes:sub(mid + 2))
    local rc2, _, err2 = train("corrupt", "--resume --set train.steps=16")
    assert.are.equal(1, rc2, err2)
    assert.are.equal("mtl train: cannot resume from " .. last .. ": ", err2:sub(1, #last + 32))
    assert.truthy(err2:find(string.format("\nthe newest intact checkpoint is %s/checkpoints/step-8.ckpt (step 8): resume "
      .. "from it with `mtl train %s --resume-from 8` (that removes the checkpoints after it)\n", run, cfg), 1, true), err2)
    local rc3, out3, err3 = train("corrupt", "--resume-from 8 --json --set train.steps=16")
    assert.are.equal(0, rc3, err3)
    assert.are.equal(16, require("cjson").decode(out3).step)
    local steps = {}
    for _, c in ipairs(checkpoints(run)) do steps[#steps + 1] = c.step end
    assert.are.same({ 4, 8, 12, 16 }, steps) -- step 12 written again by the resumed run
    assert.are.equal(12, mtl.load(last).step)
  end)

  describe("bad rows", function()
    -- train.csv with line 50 labelled 7, an infinite price on line 60 and a NaN in a on line 70
    local function bad_file()
      local lines = {}
      for line in io.lines(dir .. "/train.csv") do lines[#lines + 1] = line end
      lines[50], lines[60], lines[70] = "7,0,1,2,3.0,0.5,0.5", "1,0,1,2,inf,0.5,0.5", "1,0,1,2,3,nan,0.5"
      return shell.write(dir .. "/bad.csv", table.concat(lines, "\n") .. "\n")
    end

    it("a label outside 0..1 or a number that is not finite: an error with file:line, before any checkpoint", function()
      local path = bad_file()
      local rc, _, err = train("bad", "--set data.train=" .. path)
      assert.are.equal(1, rc, err)
      assert.are.equal("mtl train: " .. path .. ":50:1: expected a number from 0 to 1 for column 'is_click', got \"7\"\n", err)
      assert.are.equal(0, #checkpoints(dir .. "/bad"))
      shell.write(dir .. "/nan.csv", shell.read(dir .. "/train.csv"):gsub("\n(%d,%d,%d+,%d+,[%d.]+,)[%d.]+", "\n%1nan", 1))
      local rc2, _, err2 = train("bad", "--set data.train=" .. dir .. "/nan.csv")
      assert.are.equal(1, rc2, err2)
      assert.are.equal("mtl train: data.train: " .. dir .. "/nan.csv:2:6: expected a finite number for column 'a', got \"nan\"\n", err2)
    end)

    it("data.bad_rows = \"skip\" skips them, counted per reason in the log, the JSON line and the summary", function()
      local path = bad_file()
      local rc, out, err = train("skip", "--json --set data.bad_rows=skip --set data.train=" .. path)
      assert.are.equal(0, rc, err)
      -- 3 epochs: each skips the row with the label 7 and the two that are not finite
      assert.are.same({ not_finite = 6, out_of_range = 3 }, require("cjson").decode(out).skipped_rows)
      assert.truthy(err:find("skipped 9 bad training rows (data.bad_rows = \"skip\"): 6 not finite, 3 out of range\n", 1, true), err)
      local recs = require("mtl.report").read_metrics(dir .. "/skip/metrics.jsonl")
      local first, last
      for _, r in ipairs(recs) do
        if r.kind == "train" then first, last = first or r, r end
      end
      assert.are.same({ not_finite = 2, out_of_range = 1 }, first.skipped_rows) -- step 5: rows 1-250 of epoch 1
      assert.are.same({ not_finite = 6, out_of_range = 3 }, last.skipped_rows)
    end)
  end)

  describe("a loss that is not finite", function()
    it("stops before the update, naming the step and the tasks; the latest checkpoint stays the last good one", function()
      local rc, _, err = train("nan", "--set optimizer.dense.lr=1e20 --set train.checkpoint_every=1")
      assert.are.equal(1, rc, err)
      local run = dir .. "/nan"
      assert.truthy(err:match("^mtl train: the loss is not finite at step 2 %(task 'click' %-?nan, task 'pay' %-?nan%); "
        .. "no update was made, the latest checkpoint is " .. run:gsub("%p", "%%%0") .. "/checkpoints/step%-1%.ckpt%. "), err)
      local all = checkpoints(run)
      assert.are.equal(1, all[#all].step)
      local n = 0
      for _, w in pairs(mtl.load(all[#all].path).model) do
        if type(w) == "userdata" then
          n = n + 1
          for _, v in ipairs(w:values()) do assert.is_true(v == v and math.abs(v) < math.huge, "finite weights") end
        end
      end
      assert.is_true(n > 10)
      assert.truthy(shell.read(run .. "/report.html"):find("stopped with an error at step", 1, true))
    end)

    it("train.nan_loss = \"skip\" skips those batches and counts them", function()
      local rc, out, err = train("nanskip", "--json --set optimizer.dense.lr=1e20 --set train.nan_loss=skip")
      assert.are.equal(0, rc, err)
      local res = require("cjson").decode(out)
      assert.are.equal(1, res.step) -- every update after the first gives a NaN loss
      assert.are.equal(3 * 8 - 1, res.skipped_nan) -- 3 epochs of 8 batches
      assert.truthy(err:find("skipped 23 batches with a non-finite loss (train.nan_loss = \"skip\")\n", 1, true), err)
    end)
  end)
end)
