-- mtl.report: a training report as one self-contained HTML file with inline
-- SVG (no scripts, no network): docs/training.md, "The report".
--
--   local path = require("mtl.report").write("runs/mmoe")   -- runs/mmoe/report.html
--
-- It reads RUN_DIR/metrics.jsonl (the records Run:fit logs) and, when there,
-- RUN_DIR/run.json (what `mtl train` ran). It shows: the final metrics per
-- task; the training loss (total and per task) by step; each task's
-- evaluation AUC by step, with the running AUC over recent training batches
-- dashed; and for gated models (MMoE, CGC, PLE, DBMTL with an MMoE bottom)
-- each task's mean gate weight per expert over the last evaluation, as bars.
local json = require "cjson"

local report = {}

local COLORS = { "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf" }

local function esc(s)
  return (tostring(s):gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;" }))
end
report.escape = esc

local function num(v) return string.format("%.2f", v) end

local function sorted_keys(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = k end
  table.sort(ks, function(a, b) return tostring(a) < tostring(b) end)
  return ks
end

-- "Nice" axis ticks over [lo, hi]: about n steps of 1, 2 or 5 x 10^k.
function report.ticks(lo, hi, n)
  n = n or 5
  if not (hi > lo) then
    local pad = math.abs(lo) * 0.05 + 0.05
    lo, hi = lo - pad, hi + pad
  end
  local raw = (hi - lo) / n
  local mag = 10 ^ math.floor(math.log10(raw))
  local step = mag
  for _, m in ipairs({ 1, 2, 5, 10 }) do
    if m * mag >= raw then step = m * mag break end
  end
  local first = math.floor(lo / step) * step
  local last = math.ceil(hi / step) * step
  local ticks = {}
  local v = first
  while v <= last + step * 1e-9 do
    ticks[#ticks + 1] = math.abs(v) < step * 1e-9 and 0 or v
    v = v + step
  end
  return ticks, first, last
end

local function fmt_tick(v)
  if v == math.floor(v) and math.abs(v) < 1e6 then return string.format("%d", v) end
  return (string.format("%.4g", v))
end

-- A line chart: series = {{name =, points = {{x, y}, ...}, dash = bool}}.
-- Returns an <svg> element as a string.
function report.line_chart(opts)
  local longest = 0
  for _, s in ipairs(opts.series) do longest = math.max(longest, #tostring(s.name)) end
  local ml, mr, mt, mb = 60, 50 + 7 * longest, 30, 40
  local W, H = (opts.width or 500) + mr, opts.height or 300
  local pw, ph = W - ml - mr, H - mt - mb
  local xlo, xhi, ylo, yhi = math.huge, -math.huge, math.huge, -math.huge
  for _, s in ipairs(opts.series) do
    for _, p in ipairs(s.points) do
      xlo, xhi = math.min(xlo, p[1]), math.max(xhi, p[1])
      ylo, yhi = math.min(ylo, p[2]), math.max(yhi, p[2])
    end
  end
  local out = {}
  local function add(...) for _, s in ipairs({ ... }) do out[#out + 1] = s end end
  add(string.format('<svg class="chart" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="%s">', W, H, W, H, esc(opts.title or "")))
  add(string.format('<text x="%d" y="18" class="title">%s</text>', ml, esc(opts.title or "")))
  if xlo == math.huge then
    add(string.format('<text x="%d" y="%d" class="note">no data</text></svg>', ml + 10, mt + ph / 2))
    return table.concat(out, "\n")
  end
  local yt, y0, y1 = report.ticks(ylo, yhi, 5)
  local xt, x0, x1 = report.ticks(xlo, xhi, 6)
  if xlo == xhi then x0, x1 = xlo - 1, xhi + 1 end
  if x0 < 0 and xlo >= 0 then x0 = 0 end
  local function X(x) return ml + (x - x0) / (x1 - x0) * pw end
  local function Y(y) return mt + ph - (y - y0) / (y1 - y0) * ph end
  -- axes and grid
  for _, v in ipairs(yt) do
    add(string.format('<line class="grid" x1="%s" y1="%s" x2="%s" y2="%s"/>', num(ml), num(Y(v)), num(ml + pw), num(Y(v))))
    add(string.format('<text class="tick" x="%s" y="%s" text-anchor="end">%s</text>', num(ml - 6), num(Y(v) + 4), fmt_tick(v)))
  end
  for _, v in ipairs(xt) do
    if v >= x0 and v <= x1 then
      add(string.format('<text class="tick" x="%s" y="%s" text-anchor="middle">%s</text>', num(X(v)), num(mt + ph + 16), fmt_tick(v)))
    end
  end
  add(string.format('<rect class="frame" x="%d" y="%d" width="%d" height="%d"/>', ml, mt, pw, ph))
  add(string.format('<text class="axis" x="%s" y="%d" text-anchor="middle">%s</text>', num(ml + pw / 2), H - 6, esc(opts.xlabel or "step")))
  if opts.ylabel then
    add(string.format('<text class="axis" transform="translate(14 %s) rotate(-90)" text-anchor="middle">%s</text>', num(mt + ph / 2), esc(opts.ylabel)))
  end
  for i, s in ipairs(opts.series) do
    local color = s.color or COLORS[(i - 1) % #COLORS + 1]
    local pts = {}
    for _, p in ipairs(s.points) do pts[#pts + 1] = num(X(p[1])) .. "," .. num(Y(p[2])) end
    if #pts > 0 then
      add(string.format('<polyline class="series" data-name="%s" fill="none" stroke="%s" stroke-width="2"%s points="%s"/>',
        esc(s.name), color, s.dash and ' stroke-dasharray="5 4"' or "", table.concat(pts, " ")))
      if #pts <= 40 then
        for _, p in ipairs(s.points) do
          add(string.format('<circle cx="%s" cy="%s" r="2.5" fill="%s"><title>%s step %s: %.4f</title></circle>',
            num(X(p[1])), num(Y(p[2])), color, esc(s.name), fmt_tick(p[1]), p[2]))
        end
      end
    end
    local ly = mt + 10 + (i - 1) * 18
    add(string.format('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/>', ml + pw + 12, ly, ml + pw + 32, ly,
      color, s.dash and ' stroke-dasharray="5 4"' or ""))
    add(string.format('<text class="legend" x="%d" y="%d">%s</text>', ml + pw + 38, ly + 4, esc(s.name)))
  end
  add("</svg>")
  return table.concat(out, "\n")
end

-- Bars of one gate: labels[k] and weights[k]; a dashed line marks 1/n (a
-- gate that does not choose).
function report.bar_chart(opts)
  local labels, weights = opts.labels, opts.weights
  local n = #weights
  local bw, gap = 34, 12
  local ml, mt, mb = 50, 40, 70
  local W = math.max(260, ml + n * (bw + gap) + 20)
  local H = opts.height or 240
  local ph = H - mt - mb
  local top = 1 / math.max(n, 1)
  for _, w in ipairs(weights) do top = math.max(top, w) end
  top = math.min(1, math.ceil(top * 10 + 0.5) / 10)
  local out = {}
  local function add(s) out[#out + 1] = s end
  add(string.format('<svg class="chart gates" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="%s">', W, H, W, H, esc(opts.title)))
  add(string.format('<text x="%d" y="18" class="title">%s</text>', ml, esc(opts.title)))
  local function Y(v) return mt + ph - v / top * ph end
  for _, v in ipairs({ 0, top / 2, top }) do
    add(string.format('<line class="grid" x1="%d" y1="%s" x2="%d" y2="%s"/>', ml, num(Y(v)), W - 10, num(Y(v))))
    add(string.format('<text class="tick" x="%d" y="%s" text-anchor="end">%.2f</text>', ml - 6, num(Y(v) + 4), v))
  end
  for k, w in ipairs(weights) do
    local x = ml + 10 + (k - 1) * (bw + gap)
    local color = opts.colors and opts.colors[k] or COLORS[1]
    add(string.format('<rect class="bar" data-expert="%s" x="%d" y="%s" width="%d" height="%s" fill="%s"><title>%s: %.4f</title></rect>',
      esc(labels[k]), x, num(Y(w)), bw, num(math.max(Y(0) - Y(w), 0)), color, esc(labels[k]), w))
    add(string.format('<text class="value" x="%s" y="%s" text-anchor="middle">%.2f</text>', num(x + bw / 2), num(Y(w) - 4), w))
    add(string.format('<text class="tick" transform="translate(%s %s) rotate(35)">%s</text>', num(x + bw / 2 - 4), num(Y(0) + 14), esc(labels[k])))
  end
  add(string.format('<line class="uniform" x1="%d" y1="%s" x2="%d" y2="%s" stroke-dasharray="4 3"><title>uniform 1/%d</title></line>',
    ml, num(Y(1 / n)), W - 10, num(Y(1 / n)), n))
  add("</svg>")
  return table.concat(out, "\n")
end

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

local CSS = [[
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1100px; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; }
table { border-collapse: collapse; } td, th { padding: 3px 10px; border-bottom: 1px solid #ddd; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.chart { margin: 8px 16px 8px 0; } .chart text { font-size: 11px; fill: #333; }
.chart .title { font-size: 13px; font-weight: 600; } .grid { stroke: #eee; } .frame { fill: none; stroke: #999; }
.uniform { stroke: #888; } .note { fill: #888; } .muted { color: #777; }
]]

-- The report's HTML for records (and info: {title =, run_dir =, run = run.json table}).
function report.html(records, info)
  info = info or {}
  local train_loss, task_loss, running = {}, {}, {}
  local eval_auc, last_eval, last_gates = {}, nil, nil
  for _, r in ipairs(records) do
    if r.kind == "train" and type(r.step) == "number" then
      if not is_null(r.loss) then train_loss[#train_loss + 1] = { r.step, r.loss } end
      for task, v in pairs(type(r.task_loss) == "table" and r.task_loss or {}) do
        if not is_null(v) then
          task_loss[task] = task_loss[task] or {}
          table.insert(task_loss[task], { r.step, v })
        end
      end
      for task, v in pairs(type(r.running_auc) == "table" and r.running_auc or {}) do
        if not is_null(v) then
          running[task] = running[task] or {}
          table.insert(running[task], { r.step, v })
        end
      end
    elseif r.kind == "eval" and type(r.metrics) == "table" then
      last_eval = r
      for task, m in pairs(r.metrics) do
        if type(m) == "table" and not is_null(m.auc) then
          eval_auc[task] = eval_auc[task] or {}
          table.insert(eval_auc[task], { r.step, m.auc })
        end
      end
      if type(r.gates) == "table" then last_gates = r.gates end
    end
  end
  local out = {}
  local function add(s) out[#out + 1] = s end
  local title = info.title or "mtl training report"
  add("<!DOCTYPE html>")
  add('<html lang="en"><head><meta charset="utf-8"><title>' .. esc(title) .. "</title>")
  add("<style>" .. CSS .. "</style></head><body>")
  add("<h1>" .. esc(title) .. "</h1>")
  local run = info.run or {}
  local facts = {}
  if run.model then facts[#facts + 1] = "model <b>" .. esc(run.model) .. "</b>" end
  if run.config then facts[#facts + 1] = "config " .. esc(run.config) end
  if info.run_dir then facts[#facts + 1] = "run " .. esc(info.run_dir) end
  local last = records[#records]
  if last and last.step then facts[#facts + 1] = "step " .. esc(last.step) end
  if #facts > 0 then add('<p class="muted">' .. table.concat(facts, " &middot; ") .. "</p>") end

  add("<h2>Final metrics</h2>")
  if last_eval then
    add(string.format('<p class="muted">%s evaluation at step %s</p>', last_eval.final and "final" or "last", esc(last_eval.step)))
    add("<table><tr><th>task</th><th>AUC</th><th>GAUC</th><th>logloss</th><th>calibration</th><th>rows</th></tr>")
    for _, task in ipairs(sorted_keys(last_eval.metrics)) do
      local m = last_eval.metrics[task]
      local function cell(v, f) return is_null(v) and "&ndash;" or string.format(f, v) end
      add(string.format("<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>", esc(task),
        cell(m.auc, "%.4f"), cell(m.gauc, "%.4f"), cell(m.logloss, "%.4f"), cell(m.calibration, "%.3f"), cell(m.count, "%d")))
    end
    add("</table>")
  else
    add('<p class="muted">no evaluation records (the config has no data.eval, or the run has not evaluated yet)</p>')
  end

  add("<h2>Training loss</h2>")
  local series = { { name = "total", points = train_loss } }
  for _, task in ipairs(sorted_keys(task_loss)) do series[#series + 1] = { name = task, points = task_loss[task] } end
  add(report.line_chart({ title = "loss (mean over each log interval)", series = series, ylabel = "loss" }))

  add("<h2>AUC per task</h2>")
  local auc_series = {}
  local tasks = {}
  for t in pairs(eval_auc) do tasks[t] = true end
  for t in pairs(running) do tasks[t] = true end
  for i, task in ipairs(sorted_keys(tasks)) do
    local color = COLORS[(i - 1) % #COLORS + 1]
    if eval_auc[task] then auc_series[#auc_series + 1] = { name = task .. " (eval)", points = eval_auc[task], color = color } end
    if running[task] then auc_series[#auc_series + 1] = { name = task .. " (train window)", points = running[task], color = color, dash = true } end
  end
  add(report.line_chart({ title = "AUC", series = auc_series, ylabel = "AUC" }))

  if last_gates and #last_gates > 0 then
    add("<h2>Expert utilization</h2>")
    add('<p class="muted">mean gate weight per expert over the evaluation rows (step ' .. esc(last_eval and last_eval.step or "?") ..
      '); the dashed line is 1/n, a gate that does not choose</p>')
    add("<div>")
    for _, g in ipairs(last_gates) do
      local colors, labels = {}, {}
      for k, lab in ipairs(g.experts or {}) do
        labels[k] = lab
        colors[k] = lab:match("^shared") and "#7f7f7f" or COLORS[1]
      end
      for k = #labels + 1, #(g.weights or {}) do labels[k] = "expert " .. k end
      local t = "task " .. tostring(g.task) .. (is_null(g.level) and "" or (" · level " .. tostring(g.level)))
      add(report.bar_chart({ title = t, labels = labels, weights = g.weights or {}, colors = colors }))
    end
    add("</div>")
  end
  add("</body></html>")
  return table.concat(out, "\n")
end

-- Writes RUN_DIR/report.html (or opts.out) from RUN_DIR/metrics.jsonl; returns its path.
function report.write(run_dir, opts)
  opts = opts or {}
  local records, err = report.read_metrics(run_dir .. "/metrics.jsonl")
  if not records then error(string.format("report: cannot read %s/metrics.jsonl: %s", run_dir, tostring(err)), 0) end
  local run
  local f = io.open(run_dir .. "/run.json")
  if f then
    local ok, r = pcall(json.decode, f:read("*a"))
    f:close()
    if ok and type(r) == "table" then run = r end
  end
  local html = report.html(records, { run_dir = run_dir, run = run,
    title = "mtl training report" .. (run and run.model and (": " .. run.model) or "") })
  local path = opts.out or (run_dir .. "/report.html")
  local ok, werr = pcall(require("mtl.sys").write_file, path, html)
  if not ok then error("report: " .. tostring(werr), 0) end
  return path
end

return report
