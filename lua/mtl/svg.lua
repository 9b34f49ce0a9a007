-- mtl.svg: the report's charts as inline SVG (no scripts, no network):
-- line charts of series over steps and bar charts of a gate's weights.
--
--   svg.line_chart{title =, series = {{name =, points = {{x, y}, ...}, color =, dash =}}, ...}
--   svg.bar_chart{title =, labels = {...}, weights = {...}}
--   svg.ticks(lo, hi, n)        -- round tick values covering [lo, hi]
local svg = {}

local COLORS = { "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
                 "#bcbd22", "#7f7f7f" }
svg.COLORS = COLORS

local function esc(s)
  return (tostring(s):gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;" }))
end
svg.escape = esc

local function num(v) return string.format("%.2f", v) end
local function color_of(i) return COLORS[(i - 1) % #COLORS + 1] end
svg.num, svg.color_of = num, color_of

-- "Nice" axis ticks over [lo, hi]: about n steps of 1, 2 or 5 x 10^k.
function svg.ticks(lo, hi, n)
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
  if v == math.floor(v) and math.abs(v) >= 1e4 and v % 1000 == 0 then return string.format("%dk", v / 1000) end
  if v == math.floor(v) and math.abs(v) < 1e6 then return string.format("%d", v) end
  return (string.format("%.4g", v))
end

-- ---- charts -------------------------------------------------------------------------------------
-- The extent of the series' points.
local function extent(series)
  local xlo, xhi, ylo, yhi = math.huge, -math.huge, math.huge, -math.huge
  for _, s in ipairs(series) do
    for _, p in ipairs(s.points) do
      xlo, xhi = math.min(xlo, p[1]), math.max(xhi, p[1])
      ylo, yhi = math.min(ylo, p[2]), math.max(yhi, p[2])
    end
  end
  return xlo, xhi, ylo, yhi
end

-- A line chart: series = {{name =, points = {{x, y}, ...}, dash = bool, color =}}.
-- opts.xmin, opts.xmax: the x axis exactly (default: nice ticks around the
-- points). Returns an <svg> element as a string.
function svg.line_chart(opts)
  local longest = 0
  for _, s in ipairs(opts.series) do longest = math.max(longest, #tostring(s.name)) end
  local ml, mr, mt, mb = 60, 50 + 7 * longest, 30, 40
  local W, H = (opts.width or 360) + mr, opts.height or 260
  local pw, ph = W - ml - mr, H - mt - mb
  local xlo, xhi, ylo, yhi = extent(opts.series)
  local out = {}
  local function add(fmt, ...) out[#out + 1] = select("#", ...) > 0 and string.format(fmt, ...) or fmt end
  add('<svg class="chart" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="%s">', W, H, W, H, esc(opts.title or ""))
  add('<text x="%d" y="18" class="title">%s</text>', ml, esc(opts.title or ""))
  if xlo == math.huge then
    add('<text x="%d" y="%d" class="note">no data</text></svg>', ml + 10, mt + ph / 2)
    return table.concat(out, "\n")
  end
  local yt, y0, y1 = svg.ticks(ylo, yhi, 5)
  local xt, x0, x1
  if opts.xmax then
    x0, x1 = opts.xmin or 0, opts.xmax
    if not (x1 > x0) then x1 = x0 + 1 end
    xt = svg.ticks(x0, x1, 6)
  else
    xt, x0, x1 = svg.ticks(xlo, xhi, 6)
    if xlo == xhi then x0, x1 = xlo - 1, xhi + 1 end
    if x0 < 0 and xlo >= 0 then x0 = 0 end
  end
  local function X(x) return ml + (x - x0) / (x1 - x0) * pw end
  local function Y(y) return mt + ph - (y - y0) / (y1 - y0) * ph end
  for _, v in ipairs(yt) do
    add('<line class="grid" x1="%s" y1="%s" x2="%s" y2="%s"/>', num(ml), num(Y(v)), num(ml + pw), num(Y(v)))
    add('<text class="tick" x="%s" y="%s" text-anchor="end">%s</text>', num(ml - 6), num(Y(v) + 4), fmt_tick(v))
  end
  for _, v in ipairs(xt) do
    if v >= x0 and v <= x1 + 1e-9 then
      add('<text class="tick" x="%s" y="%s" text-anchor="middle">%s</text>', num(X(v)), num(mt + ph + 16), fmt_tick(v))
    end
  end
  add('<rect class="frame" x="%d" y="%d" width="%d" height="%d"/>', ml, mt, pw, ph)
  add('<text class="axis" x="%s" y="%d" text-anchor="middle">%s</text>', num(ml + pw / 2), H - 6, esc(opts.xlabel or "step"))
  if opts.ylabel then
    add('<text class="axis" transform="translate(14 %s) rotate(-90)" text-anchor="middle">%s</text>', num(mt + ph / 2), esc(opts.ylabel))
  end
  for i, s in ipairs(opts.series) do
    local color = s.color or color_of(i)
    local dash = s.dash and ' stroke-dasharray="5 4"' or ""
    local pts = {}
    for _, p in ipairs(s.points) do pts[#pts + 1] = num(X(p[1])) .. "," .. num(Y(p[2])) end
    if #pts > 0 then
      add('<polyline class="series" data-name="%s" fill="none" stroke="%s" stroke-width="2"%s points="%s"/>',
        esc(s.name), color, dash, table.concat(pts, " "))
      if #pts <= 40 then
        for _, p in ipairs(s.points) do
          add('<circle cx="%s" cy="%s" r="2.5" fill="%s"><title>%s step %s: %.4g</title></circle>',
            num(X(p[1])), num(Y(p[2])), color, esc(s.name), fmt_tick(p[1]), p[2])
        end
      end
    end
    local ly = mt + 10 + (i - 1) * 18
    add('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/>', ml + pw + 12, ly, ml + pw + 32, ly, color, dash)
    add('<text class="legend" x="%d" y="%d">%s</text>', ml + pw + 38, ly + 4, esc(s.name))
  end
  add("</svg>")
  return table.concat(out, "\n")
end

-- Bars of one gate: labels[k] and weights[k]; a dashed line marks 1/n (a
-- gate that does not choose).
function svg.bar_chart(opts)
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

return svg
