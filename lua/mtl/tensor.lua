-- The Lua half of mtl.Tensor: operators, Torch7's indexing idioms (t[i], t[{...}],
-- t[k] = v, #t, mtl.Tensor(...)), printing, conversion to tables, and t.grad.
local format, concat, floor, abs, max = string.format, table.concat, math.floor, math.abs, math.max

return function(mtl, core)
  local methods, mt = core.Tensor, core.Tensor_mt

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

  -- ---- Torch7's indexing and size idioms ----------------------------------------
  --   t[i]          1-D: the value at i; more dims: t:select(1, i), a view
  --   t[{i, {a, b}, {}}]  per dimension: a number selects (the dim goes),
  --                 {a, b} narrows to a..b, {a} to a..a, {} keeps it whole;
  --                 numbers for every dimension give the value
  --   t[ids]        an int64 tensor: t:index_select(1, ids), a copy
  --   t[k] = v      writes v (a number fills, a tensor is copied) into t[k]
  --   #t            t:size(1)
  --   mtl.Tensor(2, 3), mtl.Tensor{{1, 2}, {3, 4}}, mtl.Tensor(t), mtl.Tensor()
  -- Indices are 1-based; negative ones count from the end (-1 is the last).
  -- Anything else is an error that says so, never a silent nil.
  -- shown: the dimension named in messages (default d)
  local function position(t, d, i, what, level, shown)
    local n = t:size(d)
    shown = shown or d
    if type(i) ~= "number" or i ~= floor(i) then
      error(format("%s: expected an integer index for dimension %d, got %s", what, shown,
        type(i) == "number" and tostring(i) or type(i)), level or 4)
    end
    local p = i < 0 and n + i + 1 or i
    if p < 1 or p > n then
      error(format("%s: index %d out of range for dimension %d (expected 1..%d or -%d..-1)", what, i, shown, n, n),
        level or 4)
    end
    return p
  end

  -- t:select(d, i): the slice at position i of dimension d, without that dimension (a view).
  function methods.select(t, d, i)
    check_tensor(t, "select")
    if t:dim() == 0 then error("select: a 0-dim tensor (a scalar) has no dimension to select from", 2) end
    if type(d) ~= "number" or d ~= floor(d) or d == 0 or abs(d) > t:dim() then
      error(format("select: dimension %s out of range (expected 1..%d or -%d..-1)", tostring(d), t:dim(), t:dim()), 2)
    end
    if d < 0 then d = t:dim() + d + 1 end
    return t:narrow(d, position(t, d, i, "select", 3), 1):squeeze(d)
  end

  -- the view (or value) that key k names; nil for a string key (methods)
  local function indexed(t, k, what)
    local kt = type(k)
    if kt == "number" then
      if t:dim() == 0 then error(format("%s: a 0-dim tensor (a scalar) cannot be indexed; use t:item()", what), 3) end
      local p = position(t, 1, k, what)
      if t:dim() == 1 then return t:narrow(1, p, 1), true end
      return t:narrow(1, p, 1):squeeze(1)
    elseif kt == "table" then
      local nd = t:dim()
      if #k > nd then
        error(format("%s: %d indices for a %d-dim tensor", what, #k, nd), 3)
      end
      local v, d, numbers = t, 1, 0
      for j = 1, #k do
        local e = k[j]
        if type(e) == "number" then
          v = v:narrow(d, position(v, d, e, what, 4, j), 1)
          numbers = numbers + 1
          if numbers < nd then v = v:squeeze(d) else d = d + 1 end
        elseif type(e) == "table" then
          local n = v:size(d)
          local a = e[1] == nil and 1 or position(v, d, e[1], what, 4, j)
          local b = e[2] == nil and (e[1] == nil and n or a) or position(v, d, e[2], what, 4, j)
          if b < a then error(format("%s: the range {%s, %s} of dimension %d is empty", what, tostring(e[1]),
            tostring(e[2]), j), 3) end
          v = v:narrow(d, a, b - a + 1)
          d = d + 1
        else
          error(format("%s: index %d must be a number or a table {from, to}, got %s", what, j, type(e)), 3)
        end
      end
      return v, numbers == nd
    elseif kt == "userdata" and getmetatable(k) == mt then
      if k:dtype() ~= "int64" then
        error(format("%s: a %s tensor as an index; use an int64 tensor of positions (index_select) or mtl.where",
          what, k:dtype()), 3)
      end
      return t:index_select(1, k)
    end
    error(format("%s: cannot index a tensor with a %s", what, kt), 3)
  end

  -- t.grad reads the gradient; other strings name methods.
  local get_grad = methods.get_grad
  mt.__index = function(t, k)
    if type(k) == "string" then
      local m = methods[k]
      if m ~= nil then return m end
      if k == "grad" then return get_grad(t) end
      return nil
    end
    local v, element = indexed(t, k, "t[k]")
    if element then return v:reshape(v:numel()):get(1) end
    return v
  end

  mt.__newindex = function(t, k, value)
    if type(k) == "string" then
      error(format("t.%s = ...: tensors have no fields to set (t[i] = v writes values)", k), 2)
    end
    if getmetatable(k) == mt then
      error("t[k] = v: an index tensor selects a copy, which cannot be written through; index with numbers or tables", 2)
    end
    local v = indexed(t, k, "t[k] = v")
    if type(value) == "number" then
      v:fill(value)
    elseif getmetatable(value) == mt then
      v:copy(value)
    else
      error(format("t[k] = v: expected a number or a tensor to write, got %s", type(value)), 2)
    end
  end

  mt.__len = function(t)
    if t:dim() == 0 then error("#t: a 0-dim tensor (a scalar) has no dimension 1; use t:item()", 2) end
    return t:size(1)
  end

  setmetatable(methods, {
    __call = function(_, a, ...)
      if a == nil then return core.zeros(0) end
      if type(a) == "number" then return core.zeros(a, ...) end
      if select("#", ...) > 0 then
        error("mtl.Tensor: expected sizes (mtl.Tensor(2, 3)), a table of values, or a tensor", 2)
      end
      if type(a) == "table" then return core.tensor(a) end
      if getmetatable(a) == mt then return a:view(a:shape()) end
      error(format("mtl.Tensor: expected sizes (mtl.Tensor(2, 3)), a table of values, or a tensor, got %s", type(a)), 2)
    end,
  })

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

  -- t:format(): the text print(t) shows, in Torch7's manner (docs/tensor.md, "Printing").
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
