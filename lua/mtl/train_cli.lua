-- `mtl train` (docs/cli.md, docs/training.md): the command behind
-- lua/mtl/cli's dispatch. Before the first step it checks the inputs, locks
-- model_dir and removes temporaries of killed runs (mtl.train_checks); a
-- stop by SIGINT/SIGTERM exits 130/143 after saving (mtl.train).
local json = require "cjson"
local sys = require "mtl.sys"

local M = {}
local cli -- mtl.cli (which calls M.run)
local train_in

-- Rank 0 runs fn; its error, if any, is every rank's (none waits for a rank
-- that gave up). Returns fn's result on rank 0.
local function agree(what, fn)
  local mtl = require "mtl"
  local rank0 = mtl.dist.rank() == 0
  local ok, res = true, nil
  if rank0 then ok, res = pcall(fn) end
  local good = mtl.dist.broadcast(mtl.tensor({ ok and 1 or 0 }, "int64"), 0):get(1) == 1
  if not ok then error(res, 0) end
  if not good then error(string.format("rank 0 failed (%s): see its message", what), 0) end
  return res
end

function M.run(a, cli_module)
  cli = cli_module
  local cfg = cli.load_config(a.config, a.set)
  if a.model_dir then cfg.model_dir = a.model_dir end
  if not cfg.model_dir then cli.usage_error("the config has no model_dir: pass --model-dir DIR (or --set model_dir=DIR)") end
  if a.resume_from then a.resume = true end
  if a.resume and a.fresh then cli.usage_error("--resume and --fresh exclude each other") end
  local dir = cfg.model_dir
  local dist = require("mtl").dist
  local writer = dist.rank() == 0 -- in a distributed run rank 0 writes the run's files and output
  local out = a.json and io.stderr or io.stdout
  local checks = require "mtl.train_checks"
  checks.inputs(cfg) -- before anything is written
  sys.mkdir_p(dir)
  local release = agree("lock", function() return checks.lock(dir, function(note) out:write(note, "\n") end) end)
  local ok, rc = pcall(train_in, a, cfg, dir, writer, out, checks, release)
  if release then release() end
  if not ok then error(rc, 0) end
  return rc
end

local function stopped_message(run, dir)
  return string.format("mtl train: stopped by %s after step %d: checkpoint %s, report %s, metrics %s/metrics.jsonl "
    .. "(continue with --resume)\n", require("mtl.train").SIGNAL_NAMES[run.stop_signal], run.step,
    tostring(run.last_checkpoint), tostring(run.report_path), dir)
end

-- mtl train once model_dir is locked (M.run).
function train_in(a, cfg, dir, writer, out, checks, release)
  local train = require "mtl.train"
  local export = require "mtl.export"
  local dist = require("mtl").dist
  if writer then
    local removed = checks.remove_stale(dir)
    if #removed > 0 then
      out:write(string.format("removed %d temporar%s of processes that no longer run: %s\n", #removed,
        #removed == 1 and "y" or "ies", table.concat(removed, ", ")))
    end
  end
  local existing = require("mtl").checkpoint.list(dir .. "/checkpoints")
  if #existing > 0 and not a.resume then
    if not a.fresh then
      cli.usage_error("%s already has checkpoints (the latest: step %d): pass --resume to continue that run or --fresh to start over",
        dir, existing[#existing].step)
    end
    if writer then
      for _, c in ipairs(existing) do require("mtl").checkpoint.remove(c) end
      os.remove(dir .. "/checkpoints/best.ckpt")
    end
  end
  if writer then
    -- what ran, for the report and for `mtl eval RUN_DIR/config.lua`
    pcall(sys.write_atomic, dir .. "/run.json",
      json.encode({ config = a.config, sets = a.set, model = cfg.model.name, ranks = dist.size(),
                    started = os.date("!%Y-%m-%dT%H:%M:%SZ") }) .. "\n")
    local ok_lua, src = pcall(export.to_lua, cfg, "-- The config of this run as `mtl train` resolved it.\n")
    if ok_lua then pcall(sys.write_atomic, dir .. "/config.lua", src) end
  end
  dist.barrier() -- a fresh start's old checkpoints are gone on every rank
  local quiet = a.quiet or not writer
  local progress = require("mtl.cli.progress").new({ out = out, quiet = quiet })
  local run = train.new(cfg, { progress = progress, resume = a.resume, resume_from = a.resume_from, out = out,
                               quiet = quiet, signals = true, command = "mtl train " .. a.config })
  local final = run:fit()
  local rc = run.stop_signal and 128 + run.stop_signal or 0 -- 130 (SIGINT), 143 (SIGTERM)
  local skipped = run:skipped_rows() -- every rank: a sum over them
  if run.stop_signal and dist.size() > 1 then
    -- a rank that exits non-zero stops the others (mtl.dist): not before rank 0 said what it saved
    if writer then
      io.stderr:write(stopped_message(run, dir))
      release()
    end
    dist.barrier()
    return rc
  end
  if not writer then return rc end
  if skipped then
    local parts, n = {}, 0
    for _, k in ipairs({ "not_finite", "out_of_range", "malformed" }) do
      if skipped[k] then
        parts[#parts + 1] = string.format("%d %s", skipped[k], k:gsub("_", " "))
        n = n + skipped[k]
      end
    end
    out:write(string.format("skipped %d bad training row%s (data.bad_rows = \"skip\"): %s\n", n, n == 1 and "" or "s",
      table.concat(parts, ", ")))
  end
  local report_path = run.report_path -- written at every evaluation and at the end (mtl.report)
  if run.stop_signal then io.stderr:write(stopped_message(run, dir)) end
  if run.skipped_nan then
    out:write(string.format("skipped %d batch%s with a non-finite loss (train.nan_loss = \"skip\")\n", run.skipped_nan,
      run.skipped_nan == 1 and "" or "es"))
  end
  if not a.quiet then
    if final then out:write(cli.metrics_table(run:plain(final))) end
    out:write(string.format("checkpoint: %s\nreport: %s\n", tostring(run.last_checkpoint), report_path))
  end
  if a.json then
    cli.json_line({ command = "train", model_dir = dir, step = run.step, checkpoint = run.last_checkpoint,
                report = report_path, metrics = final and run:plain(final) or {},
                stopped_by = run.stop_signal and train.SIGNAL_NAMES[run.stop_signal] or nil, skipped_nan = run.skipped_nan,
                skipped_rows = skipped })
  end
  return rc
end

return M
