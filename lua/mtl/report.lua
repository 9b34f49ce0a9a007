-- mtl.report: training reports as self-contained HTML files with inline SVG
-- (no scripts, no network): docs/training.md, "The report".
--
--   report.write("runs/mmoe")                         -- runs/mmoe/report.html
--   report.write("runs/mmoe", {live = true})          -- a page that reloads itself
--   report.write_compare({"runs/a", "runs/b"}, {out = "compare.html"})
--
-- One run (RUN_DIR/metrics.jsonl, the records Run:fit logs, and RUN_DIR/run.json
-- when there): the final metrics per task; by step, the training loss (total
-- and per task), each task's evaluation AUC (the running AUC over recent
-- training batches dashed) and evaluation log loss, the learning rate, the
-- throughput, and for gated models each gate's weights per expert over the
-- evaluations and at the last one. Every chart's x axis runs from step 0 to
-- the run's last step. Run:fit writes the page at every evaluation with a
-- meta refresh (the browser reloads it while the run is live) and once more
-- without it when the run ends.
--
-- Several runs (`mtl report RUN1 RUN2 ...`, a sweep's directory standing for
-- its trials): the same curves with one line per run, a table of their final
-- metrics side by side, and of the settings (RUN_DIR/config.lua) that differ.
local json = require "cjson"
local sys = require "mtl.sys"
local svg = require "mtl.svg"
local util = require "mtl.config.util"
local sorted_keys = util.sorted_keys

local report = {}

local COLORS = svg.COLORS
report.COLORS = COLORS
report.REFRESH_SECONDS = 10
local esc, num, color_of = svg.escape, svg.num, svg.color_of
report.escape = esc
report.ticks, report.line_chart, report.bar_chart = svg.ticks, svg.line_chart, svg.bar_chart

-- ---- records --------------------------------------------------------------------------------------
-- Records of a metrics.jsonl file (lines that are not JSON objects are skipped).
function report.read_metrics(path)
  local f, err = io.open(path)
  if not f then return nil, err end
  local recs = {}
  for line in f:lines() do
    local ok, r = pcall(json.decode, line)
    if ok and type(r) == "table" then recs[#recs + 1] = r end
  end
  f:close()
  return recs
end

local function is_null(v) return v == nil or v == json.null end

local function gate_title(g)
  return "task " .. tostring(g.task) .. (is_null(g.level) and "" or (" · level " .. tostring(g.level)))
end

-- The curves of a run's records: {loss, task_loss, running, eval_auc,
-- eval_loss, lr, lr_sparse, rate, gates = {{title, experts, weights = {k = points}}},
-- last_eval, last_gates, last_step}; per-task curves keyed by task name.
function report.curves(records)
  local c = { loss = {}, task_loss = {}, running = {}, eval_auc = {}, eval_loss = {}, lr = {}, lr_sparse = {}, rate = {},
              gates = {}, last_step = 0 }
  local gate_index = {}
  local function push(t, key, x, y)
    if is_null(y) or type(y) ~= "number" then return end
    if key then
      t[key] = t[key] or {}
      t = t[key]
    end
    t[#t + 1] = { x, y }
  end
  for _, r in ipairs(records) do
    local step = r.step
    if type(step) == "number" then c.last_step = math.max(c.last_step, step) end
    if r.kind == "train" and type(step) == "number" then
      push(c.loss, nil, step, r.loss)
      push(c.lr, nil, step, r.lr)
      push(c.lr_sparse, nil, step, r.lr_sparse)
      push(c.rate, nil, step, r.examples_per_s)
      for task, v in pairs(type(r.task_loss) == "table" and r.task_loss or {}) do push(c.task_loss, task, step, v) end
      for task, v in pairs(type(r.running_auc) == "table" and r.running_auc or {}) do push(c.running, task, step, v) end
    elseif r.kind == "eval" and type(r.metrics) == "table" then
      c.last_eval = r
      for task, m in pairs(r.metrics) do
        if type(m) == "table" then
          push(c.eval_auc, task, step, m.auc)
          push(c.eval_loss, task, step, m.logloss)
        end
      end
      if type(r.gates) == "table" then
        c.last_gates = r.gates
        for _, g in ipairs(r.gates) do
          local title = gate_title(g)
          local entry = gate_index[title]
          if not entry then
            entry = { title = title, experts = g.experts or {}, weights = {} }
            gate_index[title] = entry
            c.gates[#c.gates + 1] = entry
          end
          for k, w in ipairs(g.weights or {}) do push(entry.weights, k, step, w) end
        end
      end
    end
  end
  return c
end

local CSS = [[
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1180px; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; }
table { border-collapse: collapse; } td, th { padding: 3px 10px; border-bottom: 1px solid #ddd; text-align: right; }
th:first-child, td:first-child { text-align: left; } td.best { font-weight: 700; }
.charts { display: flex; flex-wrap: wrap; align-items: flex-start; }
.chart { margin: 8px 16px 8px 0; } .chart text { font-size: 11px; fill: #333; }
.chart .title { font-size: 13px; font-weight: 600; } .grid { stroke: #eee; } .frame { fill: none; stroke: #999; }
.uniform { stroke: #888; } .note { fill: #888; } .muted { color: #777; }
.live { color: #0a6e0a; } .failed { color: #b00020; }
]]

-- A whole page: head (a meta refresh while live), title, body parts.
local function page(title, body, live)
  local head = { "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">' }
  if live then head[#head + 1] = string.format('<meta http-equiv="refresh" content="%d">', report.REFRESH_SECONDS) end
  head[#head + 1] = "<title>" .. esc(title) .. "</title>"
  head[#head + 1] = "<style>" .. CSS .. "</style></head><body>"
  head[#head + 1] = "<h1>" .. esc(title) .. "</h1>"
  return table.concat(head, "\n") .. "\n" .. table.concat(body, "\n") .. "\n</body></html>"
end

-- The status line: live (and when it reloads), finished, or failed.
local function status_line(info, last_step)
  if info.failed then
    return string.format('<p class="failed">stopped with an error at step %s: %s</p>', esc(last_step), esc(info.failed))
  end
  if info.stopped then
    return string.format('<p class="failed">stopped by %s (a checkpoint of that step was written: '
      .. 'mtl train --resume continues)</p>', esc(info.stopped))
  end
  if info.live then
    return string.format('<p class="live">live: written at step %s, %s; this page reloads every %d s until the run ends</p>',
      esc(last_step), os.date("%H:%M:%S"), report.REFRESH_SECONDS)
  end
  return string.format('<p class="muted">finished at step %s</p>', esc(last_step))
end

local function metrics_table(last_eval)
  local out = {}
  out[#out + 1] = string.format('<p class="muted">%s evaluation at step %s</p>', last_eval.final and "final" or "last", esc(last_eval.step))
  out[#out + 1] = "<table><tr><th>task</th><th>AUC</th><th>GAUC</th><th>logloss</th><th>calibration</th><th>rows</th></tr>"
  for _, task in ipairs(sorted_keys(last_eval.metrics)) do
    local m = last_eval.metrics[task]
    local function cell(v, f) return is_null(v) and "&ndash;" or string.format(f, v) end
    out[#out + 1] = string.format("<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>", esc(task),
      cell(m.auc, "%.4f"), cell(m.gauc, "%.4f"), cell(m.logloss, "%.4f"), cell(m.calibration, "%.3f"), cell(m.count, "%d"))
  end
  out[#out + 1] = "</table>"
  return table.concat(out, "\n")
end

-- One series per key of a {key = points} table, colored by key order.
local function keyed_series(t, suffix, colors)
  local series = {}
  for i, key in ipairs(sorted_keys(t)) do
    series[#series + 1] = { name = key .. (suffix or ""), points = t[key], color = colors and colors[key] or color_of(i) }
  end
  return series
end

-- The charts of one run (curves c), each ending at c.last_step.
local function run_charts(c)
  local x = { xmin = 0, xmax = c.last_step }
  local function chart(opts)
    opts.xmin, opts.xmax = x.xmin, x.xmax
    return report.line_chart(opts)
  end
  local out = { "<h2>Training</h2>", '<div class="charts">' }
  local loss = { { name = "total", points = c.loss } }
  for _, s in ipairs(keyed_series(c.task_loss)) do s.color = nil; loss[#loss + 1] = s end
  out[#out + 1] = chart({ title = "loss (mean over each log interval)", series = loss, ylabel = "loss" })
  local lr = { { name = "lr", points = c.lr } }
  if #c.lr_sparse > 0 then lr[2] = { name = "lr (embeddings)", points = c.lr_sparse, dash = true } end
  out[#out + 1] = chart({ title = "learning rate", series = lr, ylabel = "lr" })
  out[#out + 1] = chart({ title = "throughput (examples/s since the start)", series = { { name = "examples/s", points = c.rate } },
                          ylabel = "examples/s" })
  out[#out + 1] = "</div>"
  -- AUC and eval loss per task, one color per task in both
  local tasks, colors = {}, {}
  for t in pairs(c.eval_auc) do tasks[t] = true end
  for t in pairs(c.running) do tasks[t] = true end
  for t in pairs(c.eval_loss) do tasks[t] = true end
  for i, t in ipairs(sorted_keys(tasks)) do colors[t] = color_of(i) end
  local auc = {}
  for _, t in ipairs(sorted_keys(tasks)) do
    if c.eval_auc[t] then auc[#auc + 1] = { name = t .. " (eval)", points = c.eval_auc[t], color = colors[t] } end
    if c.running[t] then auc[#auc + 1] = { name = t .. " (train window)", points = c.running[t], color = colors[t], dash = true } end
  end
  out[#out + 1] = '<h2>Evaluation</h2><div class="charts">'
  out[#out + 1] = chart({ title = "AUC", series = auc, ylabel = "AUC" })
  out[#out + 1] = chart({ title = "evaluation log loss", series = keyed_series(c.eval_loss, nil, colors), ylabel = "logloss" })
  out[#out + 1] = "</div>"
  return out
end

-- The gates: each gate's weights over the evaluations, and the last ones as bars.
local function gate_charts(c)
  if not c.last_gates or #c.last_gates == 0 then return {} end
  local out = { "<h2>Expert utilization</h2>",
    '<p class="muted">mean gate weight per expert over the evaluation rows, at each evaluation; the bars are the last one (step ' ..
    esc(c.last_eval and c.last_eval.step or "?") .. '), the dashed line 1/n, a gate that does not choose</p>', '<div class="charts">' }
  for _, g in ipairs(c.gates) do
    local series = {}
    for k, pts in ipairs(g.weights) do
      series[k] = { name = g.experts[k] or ("expert " .. k), points = pts, dash = (g.experts[k] or ""):match("^shared") ~= nil }
    end
    out[#out + 1] = report.line_chart({ title = g.title, series = series, ylabel = "gate weight", xmin = 0, xmax = c.last_step,
                                        width = 300 })
  end
  out[#out + 1] = "</div>"
  out[#out + 1] = '<div class="charts">'
  for _, g in ipairs(c.last_gates) do
    local colors, labels = {}, {}
    for k, lab in ipairs(g.experts or {}) do
      labels[k] = lab
      colors[k] = lab:match("^shared") and "#7f7f7f" or COLORS[1]
    end
    for k = #labels + 1, #(g.weights or {}) do labels[k] = "expert " .. k end
    out[#out + 1] = report.bar_chart({ title = gate_title(g), labels = labels, weights = g.weights or {}, colors = colors })
  end
  out[#out + 1] = "</div>"
  return out
end

-- The report's HTML for one run's records. info: {title =, run_dir =, run =
-- (run.json), live = bool, failed = message, stopped = "SIGINT at step N"}.
function report.html(records, info)
  info = info or {}
  local c = report.curves(records)
  local body = {}
  local function add(s) body[#body + 1] = s end
  local run = info.run or {}
  local facts = {}
  if run.model then facts[#facts + 1] = "model <b>" .. esc(run.model) .. "</b>" end
  if run.config then facts[#facts + 1] = "config " .. esc(run.config) end
  if info.run_dir then facts[#facts + 1] = "run " .. esc(info.run_dir) end
  local last = records[#records]
  if last and last.step then facts[#facts + 1] = "step " .. esc(last.step) end
  if #facts > 0 then add('<p class="muted">' .. table.concat(facts, " &middot; ") .. "</p>") end
  add(status_line(info, c.last_step))
  add(info.live and not info.failed and "<h2>Metrics so far</h2>" or "<h2>Final metrics</h2>")
  if c.last_eval then
    add(metrics_table(c.last_eval))
  else
    add('<p class="muted">no evaluation records (the config has no data.eval, or the run has not evaluated yet)</p>')
  end
  for _, s in ipairs(run_charts(c)) do add(s) end
  for _, s in ipairs(gate_charts(c)) do add(s) end
  return page(info.title or "mtl training report", body, info.live and not info.failed)
end

local function read_json(path)
  local f = io.open(path)
  if not f then return nil end
  local ok, r = pcall(json.decode, f:read("*a"))
  f:close()
  return ok and type(r) == "table" and r or nil
end

-- Writes RUN_DIR/report.html (or opts.out), whole or not at all, from
-- opts.records (default: RUN_DIR/metrics.jsonl); returns its path.
-- opts.live: the run goes on (the page reloads itself); opts.failed: the
-- error that stopped it; opts.stopped: the signal that stopped it and
-- when ("SIGINT at step 700").
function report.write(run_dir, opts)
  opts = opts or {}
  local records = opts.records
  if not records then
    local err
    records, err = report.read_metrics(run_dir .. "/metrics.jsonl")
    if not records then error(string.format("report: cannot read %s/metrics.jsonl: %s", run_dir, tostring(err)), 0) end
  end
  local run = read_json(run_dir .. "/run.json")
  local html = report.html(records, { run_dir = run_dir, run = run, live = opts.live, failed = opts.failed,
    stopped = opts.stopped, title = "mtl training report" .. (run and run.model and (": " .. run.model) or "") })
  local path = opts.out or (run_dir .. "/report.html")
  local ok, err = pcall(sys.write_atomic, path, html)
  if not ok then error(string.format("report: cannot write %s: %s", path, tostring(err):gsub("^mtl%.sys%.write_atomic: ", "")), 0) end
  return path
end

-- ---- several runs ---------------------------------------------------------------------------------
local function has_metrics(dir) return sys.exists(dir .. "/metrics.jsonl") end

-- Run directories from paths: a run directory (with metrics.jsonl) stands for
-- itself; another directory (a sweep's) for the runs in it (trial-1, trial-2, ...,
-- in numeric order).
function report.runs(paths)
  local dirs = {}
  for _, p in ipairs(paths) do
    p = p:gsub("/+$", "")
    if has_metrics(p) then
      dirs[#dirs + 1] = p
    else
      local found = {}
      for _, name in ipairs(sys.list_dir(p) or {}) do
        if has_metrics(p .. "/" .. name) then found[#found + 1] = name end
      end
      if #found == 0 then error(string.format("report: %s has no metrics.jsonl and no runs in it", p), 0) end
      table.sort(found, function(a, b)
        local na, nb = tonumber(a:match("(%d+)$")), tonumber(b:match("(%d+)$"))
        if na and nb and a:gsub("%d+$", "") == b:gsub("%d+$", "") then return na < nb end
        return a < b
      end)
      for _, name in ipairs(found) do dirs[#dirs + 1] = p .. "/" .. name end
    end
  end
  return dirs
end

-- Short names for run directories: the last path component, or more of the
-- path where two runs share it.
local function labels_of(dirs)
  local labels = {}
  for depth = 1, 8 do
    local seen, clash = {}, false
    for i, d in ipairs(dirs) do
      local parts = {}
      for part in d:gmatch("[^/]+") do parts[#parts + 1] = part end
      labels[i] = table.concat(parts, "/", math.max(1, #parts - depth + 1))
      if seen[labels[i]] then clash = true end
      seen[labels[i]] = true
    end
    if not clash then break end
  end
  return labels
end

-- A config as {["model.experts"] = "4", ...}: dotted paths to printable values
-- (lists of plain values as one value).
function report.flatten(cfg, prefix, out)
  out, prefix = out or {}, prefix or ""
  local function plain_list(v)
    if not util.is_list(v) then return false end
    for _, x in ipairs(v) do if type(x) == "table" then return false end end
    return true
  end
  for k, v in pairs(cfg) do
    local path = prefix == "" and tostring(k) or (prefix .. "." .. tostring(k))
    if type(v) == "table" and not plain_list(v) then
      report.flatten(v, path, out)
    elseif type(v) == "table" then
      local parts = {}
      for i, x in ipairs(v) do parts[i] = type(x) == "number" and string.format("%.6g", x) or tostring(x) end
      out[path] = "{" .. table.concat(parts, ", ") .. "}"
    else
      out[path] = type(v) == "number" and string.format("%.6g", v) or tostring(v)
    end
  end
  return out
end

-- A run's settings: its config.lua (written by `mtl train` and by sweep trials), flattened.
local function settings_of(dir)
  local chunk = loadfile(dir .. "/config.lua")
  if not chunk then return nil end
  setfenv(chunk, { math = math })
  local ok, cfg = pcall(chunk)
  if not ok or type(cfg) ~= "table" then return nil end
  local flat = report.flatten(cfg)
  flat.model_dir = nil
  return flat
end

-- A table of rows (name, one value per run), runs side by side; best:
-- "max" or "min" marks the best numeric value of each row in bold.
local function side_by_side(labels, rows, head)
  local out = { "<table><tr><th>" .. esc(head) .. "</th>" }
  for _, l in ipairs(labels) do out[#out] = out[#out] .. "<th>" .. esc(l) .. "</th>" end
  out[#out] = out[#out] .. "</tr>"
  for _, r in ipairs(rows) do
    local best
    for _, v in pairs(r.values) do
      if type(v) == "number" and r.best then
        if best == nil or (r.best == "max" and v > best) or (r.best == "min" and v < best) then best = v end
      end
    end
    local cells = {}
    for i = 1, #labels do
      local v = r.values[i]
      local text = v == nil and "&ndash;" or (type(v) == "number" and string.format(r.format or "%.4f", v) or esc(v))
      cells[i] = string.format("<td%s>%s</td>", (best ~= nil and v == best and #labels > 1) and ' class="best"' or "", text)
    end
    out[#out + 1] = "<tr><td>" .. esc(r.name) .. "</td>" .. table.concat(cells) .. "</tr>"
  end
  out[#out + 1] = "</table>"
  return table.concat(out, "\n")
end

local function final_rows(runs)
  local tasks = {}
  for _, r in ipairs(runs) do
    for t in pairs(r.curves.last_eval and r.curves.last_eval.metrics or {}) do tasks[t] = true end
  end
  local rows = { { name = "steps", values = {}, format = "%d" }, { name = "model", values = {} } }
  for i, r in ipairs(runs) do
    rows[1].values[i] = r.curves.last_step
    rows[2].values[i] = r.run and r.run.model or (r.settings and r.settings["model.name"])
  end
  for _, t in ipairs(sorted_keys(tasks)) do
    for _, m in ipairs { { "auc", "AUC", "max" }, { "gauc", "GAUC", "max" }, { "logloss", "logloss", "min" },
                         { "calibration", "calibration" } } do
      local row = { name = t .. " " .. m[2], values = {}, best = m[3], format = m[1] == "calibration" and "%.3f" or "%.4f" }
      local any = false
      for i, r in ipairs(runs) do
        local e = r.curves.last_eval and r.curves.last_eval.metrics[t]
        local v = type(e) == "table" and e[m[1]] or nil
        if not is_null(v) then row.values[i], any = v, true end
      end
      if any then rows[#rows + 1] = row end
    end
  end
  return rows
end

local function settings_rows(runs, only_differing)
  local keys = {}
  for _, r in ipairs(runs) do for k in pairs(r.settings or {}) do keys[k] = true end end
  local rows = {}
  for _, k in ipairs(sorted_keys(keys)) do
    local row, first, differ = { name = k, values = {} }, nil, false
    for i, r in ipairs(runs) do
      local v = r.settings and r.settings[k]
      row.values[i] = v
      if i == 1 then first = v elseif v ~= first then differ = true end
    end
    if differ or not only_differing then rows[#rows + 1] = row end
  end
  return rows
end

-- The comparison page of runs {{dir =, label =, records =, run =, settings =}}.
function report.compare_html(runs, info)
  info = info or {}
  local last = 0
  for i, r in ipairs(runs) do
    r.curves = report.curves(r.records)
    r.color = color_of(i)
    last = math.max(last, r.curves.last_step)
  end
  local body, labels = {}, {}
  for i, r in ipairs(runs) do labels[i] = r.label end
  local function add(s) body[#body + 1] = s end
  local function overlay(title, pick, ylabel)
    local series = {}
    for _, r in ipairs(runs) do
      local pts = pick(r.curves)
      if pts and #pts > 0 then series[#series + 1] = { name = r.label, points = pts, color = r.color } end
    end
    return report.line_chart({ title = title, series = series, ylabel = ylabel, xmin = 0, xmax = last })
  end
  add('<p class="muted">' .. #runs .. " runs: " .. esc(table.concat(labels, ", ")) .. "</p>")
  add("<h2>Final metrics</h2>")
  add('<p class="muted">each run\'s last evaluation; the best value of a row in bold</p>')
  add(side_by_side(labels, final_rows(runs), "metric"))
  add("<h2>Settings that differ</h2>")
  local differing = settings_rows(runs, true)
  if #differing == 0 then add('<p class="muted">the runs\' configs (config.lua) are the same</p>')
  else add(side_by_side(labels, differing, "setting")) end
  add("<details><summary>all settings</summary>" .. side_by_side(labels, settings_rows(runs, false), "setting") .. "</details>")
  add('<h2>Training</h2><div class="charts">')
  add(overlay("training loss", function(c) return c.loss end, "loss"))
  add(overlay("learning rate", function(c) return c.lr end, "lr"))
  add(overlay("throughput (examples/s since the start)", function(c) return c.rate end, "examples/s"))
  add("</div><h2>Evaluation</h2>")
  local tasks = {}
  for _, r in ipairs(runs) do for t in pairs(r.curves.eval_auc) do tasks[t] = true end end
  for _, t in ipairs(sorted_keys(tasks)) do
    add('<div class="charts">')
    add(overlay(t .. ": evaluation AUC", function(c) return c.eval_auc[t] end, "AUC"))
    add(overlay(t .. ": evaluation log loss", function(c) return c.eval_loss[t] end, "logloss"))
    add("</div>")
  end
  return page(info.title or "mtl runs compared", body, false)
end

-- Writes the comparison of the runs in paths (report.runs) to opts.out
-- (default compare.html); returns its path.
function report.write_compare(paths, opts)
  opts = opts or {}
  local dirs = report.runs(paths)
  local labels = labels_of(dirs)
  local runs = {}
  for i, d in ipairs(dirs) do
    local records = report.read_metrics(d .. "/metrics.jsonl")
    runs[i] = { dir = d, label = labels[i], records = records, run = read_json(d .. "/run.json"), settings = settings_of(d) }
  end
  local path = opts.out or "compare.html"
  local ok, err = pcall(sys.write_atomic, path, report.compare_html(runs))
  if not ok then error(string.format("report: cannot write %s: %s", path, tostring(err):gsub("^mtl%.sys%.write_atomic: ", "")), 0) end
  return path, dirs
end

return report
