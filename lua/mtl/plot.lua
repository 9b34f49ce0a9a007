-- mtl.plot: a text chart of one or more series, for the REPL and logs.
--   mtl.plot(losses)                      -- a list of numbers
--   mtl.plot({click = a, pay = b}, {width = 60, height = 12, title = "auc"})
-- Each series gets its own mark; the y axis shows the range. It prints the
-- chart, or returns it as a string with {print = false}.
local marks = { "*", "o", "+", "x", "#", "@" }

return function(series, opts)
  opts = opts or {}
  local W, H = opts.width or 60, opts.height or 12
  if type(series) ~= "table" then error("mtl.plot: expected a list of numbers or a table of lists", 2) end
  local named = {}
  if type(series[1]) == "number" or #series == 0 and next(series) == nil then
    named[1] = { name = opts.name or "", values = series }
  else
    local keys = {}
    for k in pairs(series) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    for _, k in ipairs(keys) do named[#named + 1] = { name = tostring(k), values = series[k] } end
  end
  local lo, hi, n = math.huge, -math.huge, 0
  for _, s in ipairs(named) do
    for _, v in ipairs(s.values) do
      if v == v then lo, hi = math.min(lo, v), math.max(hi, v) end
    end
    n = math.max(n, #s.values)
  end
  if n == 0 then return "(no data)" end
  if hi <= lo then lo, hi = lo - 0.5, hi + 0.5 end
  local grid = {}
  for r = 1, H do
    grid[r] = {}
    for c = 1, W do grid[r][c] = " " end
  end
  for si, s in ipairs(named) do
    local m = marks[(si - 1) % #marks + 1]
    for i, v in ipairs(s.values) do
      if v == v then
        local c = n == 1 and 1 or math.floor((i - 1) / (n - 1) * (W - 1) + 0.5) + 1
        local r = H - math.floor((v - lo) / (hi - lo) * (H - 1) + 0.5)
        grid[r][c] = m
      end
    end
  end
  local lines = {}
  if opts.title then lines[#lines + 1] = opts.title end
  for r = 1, H do
    local label = r == 1 and string.format("%10.4g |", hi) or r == H and string.format("%10.4g |", lo) or "           |"
    lines[#lines + 1] = label .. table.concat(grid[r])
  end
  lines[#lines + 1] = "           +" .. string.rep("-", W)
  lines[#lines + 1] = string.format("            1%s%d", string.rep(" ", math.max(1, W - #tostring(n) - 1)), n)
  if #named > 1 then
    local legend = {}
    for si, s in ipairs(named) do legend[#legend + 1] = marks[(si - 1) % #marks + 1] .. " " .. s.name end
    lines[#lines + 1] = "            " .. table.concat(legend, "   ")
  end
  local text = table.concat(lines, "\n")
  if opts.print == false then return text end
  print(text)
end
