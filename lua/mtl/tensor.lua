-- The Lua half of mtl.Tensor: operators, printing, conversion to tables,
-- and the properties t.grad / t.requires_grad.
local format, concat, floor, abs, max = string.format, table.concat, math.floor, math.abs, math.max

return function(mtl, core)
  local methods, mt = core.Tensor, core.Tensor_mt

  -- t.grad reads the gradient; everything else is a method.
  local get_grad = methods.get_grad
  mt.__index = function(t, k)
    local m = methods[k]
    if m ~= nil then return m end
    if k == "grad" then return get_grad(t) end
    return nil
  end

  mt.__add = core.add
  mt.__sub = core.sub
  mt.__mul = core.mul
  mt.__div = core.div
  mt.__unm = core.neg
  mt.__pow = core.pow

  -- Raises "<name>: expected a tensor, got <type>" unless t is a tensor.
  local function check_tensor(t, name)
    if getmetatable(t) ~= mt then
      error(format("%s: expected a tensor, got %s", name, type(t)), 3)
    end
  end

  -- t:totable(): nested Lua tables (a number for a 0-dim tensor).
  function methods.totable(t)
    check_tensor(t, "totable")
    local vals, shape = t:values(), t:shape()
    local nd = #shape
    if nd == 0 then return vals[1] end
    local pos = 0
    local function build(d)
      local out = {}
      for i = 1, shape[d] do
        if d == nd then
          pos = pos + 1
          out[i] = vals[pos]
        else
          out[i] = build(d + 1)
        end
      end
      return out
    end
    return build(1)
  end

  -- ---- printing, in Torch7's manner -----------------------------------------
  local EDGE, LIMIT = 3, 1000 -- rows/cols shown at each end when abbreviating

  -- Chooses one format for all values so the columns line up.
  -- (int64 tensors always print as integers; nan/inf need 4 columns)
  local function number_format(vals, int64)
    local all_int, amax, amin = true, 0, math.huge
    local finite = 0
    for i = 1, #vals do
      local v = vals[i]
      if v ~= v or v == math.huge or v == -math.huge then
        -- nan/inf print as such
      else
        finite = finite + 1
        if v ~= floor(v) then all_int = false end
        local a = abs(v)
        if a > amax then amax = a end
        if a > 0 and a < amin then amin = a end
      end
    end
    if finite == 0 then return "%g", 4 end
    local special = finite < #vals
    local function width(n) return special and max(n, 4) or n end
    if all_int and (int64 or amax < 1e9) then
      return "%d", width(#format("%d", amax) + 1)
    end
    if amax < 1e5 and (amin >= 1e-4 or amin == math.huge) then
      return "%.4f", width(#format("%.4f", amax) + 1)
    end
    return "%.4e", 11
  end

  local function fmt_value(f, width, v)
    local s
    if v ~= v then s = "nan"
    elseif v == math.huge then s = "inf"
    elseif v == -math.huge then s = "-inf"
    elseif f == "%d" then s = format("%d", v)
    else s = format(f, v) end
    return string.rep(" ", width - #s) .. s
  end

  -- indices shown along a dim of size n: all, or the first and last EDGE
  local function shown(n, abbreviate)
    local idx = {}
    if not abbreviate or n <= 2 * EDGE then
      for i = 1, n do idx[#idx + 1] = i end
    else
      for i = 1, EDGE do idx[#idx + 1] = i end
      idx[#idx + 1] = false -- the "..." marker
      for i = n - EDGE + 1, n do idx[#idx + 1] = i end
    end
    return idx
  end

  local function matrix_lines(get, rows, cols, f, width, abbreviate, lines)
    for _, i in ipairs(shown(rows, abbreviate)) do
      if not i then
        lines[#lines + 1] = " ..."
      else
        local parts = {}
        for _, j in ipairs(shown(cols, abbreviate)) do
          parts[#parts + 1] = j and fmt_value(f, width, get(i, j)) or " ..."
        end
        lines[#lines + 1] = concat(parts, " ")
      end
    end
  end

  function methods.format(t)
    check_tensor(t, "format")
    local shape, nd = t:shape(), t:dim()
    local dims = {}
    for i = 1, nd do dims[i] = format("%d", shape[i]) end
    local footer = format("[mtl.Tensor %s of size %s]", t:dtype(), nd == 0 and "scalar" or concat(dims, "x"))
    if t:numel() == 0 then return "[empty]\n" .. footer end
    if nd == 0 then return format("%g", t:item()) .. "\n" .. footer end
    local abbreviate = t:numel() > LIMIT
    -- values used for the common format: all, or a sample for big tensors
    local c = t:contiguous_values_sample(abbreviate and 4096 or nil)
    local f, width = number_format(c, t:dtype() == "int64")
    local lines = {}
    if nd == 1 then
      for _, i in ipairs(shown(shape[1], abbreviate)) do
        lines[#lines + 1] = i and fmt_value(f, width, t:get(i)) or " ..."
      end
    elseif nd == 2 then
      matrix_lines(function(i, j) return t:get(i, j) end, shape[1], shape[2], f, width, abbreviate, lines)
    else
      -- print each 2-D slice with its leading indices, like Torch7's (1,.,.)
      local lead = {}
      for d = 1, nd - 2 do lead[d] = 1 end
      local function walk(d)
        if d > nd - 2 then
          local idx = {}
          for k = 1, nd - 2 do idx[k] = lead[k] end
          lines[#lines + 1] = "(" .. concat(idx, ",") .. ",.,.) = "
          matrix_lines(function(i, j)
            idx[nd - 1], idx[nd] = i, j
            return t:get(unpack(idx))
          end, shape[nd - 1], shape[nd], f, width, abbreviate, lines)
          idx[nd - 1], idx[nd] = nil, nil
          lines[#lines + 1] = ""
          return
        end
        for _, i in ipairs(shown(shape[d], abbreviate)) do
          if i then
            lead[d] = i
            walk(d + 1)
          else
            lines[#lines + 1] = "..."
            lines[#lines + 1] = ""
          end
        end
      end
      walk(1)
    end
    lines[#lines + 1] = footer
    return concat(lines, "\n")
  end

  -- a flat sample of the values (all when n is nil)
  function methods.contiguous_values_sample(t, n)
    check_tensor(t, "contiguous_values_sample")
    if not n or t:numel() <= n then return t:values() end
    local flat = t:reshape(t:numel())
    local step = max(1, floor(t:numel() / n))
    local idx = core.arange(1, t:numel() + 1, step, "int64") -- 1-based positions
    return flat:index_select(1, idx):values()
  end

  mt.__tostring = methods.format
end
