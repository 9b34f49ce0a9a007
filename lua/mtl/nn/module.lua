-- nn.Module: the base of every block and model (Torch-flavoured).
--
--   local M = nn.class("MyBlock")            -- a new class (optionally a parent)
--   function M:__init(opts) self.fc = nn.Linear(4, 2) end   -- children by assignment
--   function M:forward(x) return self.fc(x) end
--   local m = M{...}; local y = m(x)         -- calling a module runs forward
--
-- Parameters are leaf tensors registered with self:param(name, tensor);
-- buffers (running statistics) with self:buffer(name, tensor); child modules
-- are found by assignment (any field holding a Module), in assignment order.
local mtl = require "mtl"

local nn = {}

local Module = {}
Module.__index = Module
Module.__name = "Module"
nn.Module = Module

local function is_module(v)
  return type(v) == "table" and getmetatable(v) ~= nil and rawget(getmetatable(v), "__is_module") == true
end
nn.is_module = is_module

-- nn.class(name[, parent]) -> class; class(...) or class.new(...) builds one.
function nn.class(name, parent)
  parent = parent or Module
  local cls = {}
  for k, v in pairs(parent) do
    if k:sub(1, 2) == "__" and k ~= "__index" and k ~= "__name" then cls[k] = v end
  end
  cls.__index = cls
  cls.__name = name
  cls.__is_module = true
  cls.__parent = parent
  setmetatable(cls, {
    __index = parent,
    __call = function(c, ...) return c.new(...) end,
  })
  cls.new = function(...)
    local self = setmetatable({ _order = {}, _params = {}, _buffers = {}, training = true }, cls)
    if not self.__init then return self end
    -- models and blocks (a class with an options schema, see mtl.models)
    -- get their options checked and their defaults filled in first
    if rawget(cls, "options") then self:__init(require("mtl.config.check").prepare(cls, ...))
    else self:__init(...) end
    return self
  end
  return cls
end

Module.__is_module = true
Module.__call = function(self, ...) return self:forward(...) end

-- Children are kept in assignment order so parameters() is deterministic.
Module.__newindex = function(self, k, v)
  if is_module(v) and rawget(self, k) == nil then
    local order = rawget(self, "_order")
    order[#order + 1] = k
  end
  rawset(self, k, v)
end

function Module:forward()
  error(string.format("%s: forward is not implemented", self.__name), 2)
end

-- Registers a parameter (marked to require a gradient) and returns it.
function Module:param(name, t)
  t:requires_grad(true)
  local list = self._params
  list[#list + 1] = name
  rawset(self, name, t)
  return t
end

-- Registers a buffer: state saved with the module but not trained.
function Module:buffer(name, t)
  local list = self._buffers
  list[#list + 1] = name
  rawset(self, name, t)
  return t
end

-- Child modules in order: name, module.
function Module:children()
  local out = {}
  for _, k in ipairs(self._order) do
    local v = rawget(self, k)
    if is_module(v) then out[#out + 1] = { k, v } end
  end
  return out
end

-- Appends {dotted name, tensor} to out for each name in m[list] (_params or
-- _buffers) of m and its children, depth first.
local function named_tensors(m, list, prefix, out)
  for _, name in ipairs(m[list]) do
    out[#out + 1] = { prefix .. name, m[name] }
  end
  for _, c in ipairs(m:children()) do
    named_tensors(c[2], list, prefix .. c[1] .. ".", out)
  end
  return out
end

-- List of {dotted name, tensor} for every parameter, depth first.
function Module:named_parameters(prefix, out)
  return named_tensors(self, "_params", prefix or "", out or {})
end

function Module:parameters()
  local out = {}
  for i, np in ipairs(self:named_parameters()) do out[i] = np[2] end
  return out
end

-- List of {dotted name, tensor} for every buffer, depth first.
function Module:named_buffers(prefix, out)
  return named_tensors(self, "_buffers", prefix or "", out or {})
end

-- Every module in the tree (self first), with dotted names.
function Module:modules(prefix, out)
  out = out or {}
  prefix = prefix or ""
  out[#out + 1] = { prefix, self }
  for _, c in ipairs(self:children()) do
    c[2]:modules(prefix == "" and c[1] or prefix .. "." .. c[1], out)
  end
  return out
end

-- The precision of inference in the dense layers (docs/performance.md, "bf16
-- inference" and "Packed FP32 inference"). "fp32" packs every 2-D or 3-D
-- parameter named weight* into FP32 panels for mtl.linear's inference kernel
-- (which packs an unpacked weight per call otherwise: the same bits, more
-- time); "bf16" packs those with more than one output row into bf16 instead,
-- which mtl.linear then multiplies in bf16 with FP32 accumulation whenever it
-- records no gradient. A packing is a snapshot: writes through mtl (copy,
-- fill, set) and forwards that record gradients, as training does, drop it;
-- set the precision again after changing the weights. Returns the precision
-- inference runs in ("fp32" when the CPU lacks AVX512-BF16 or MTL_NO_BF16 is
-- set), what it runs on (mtl.bf16_status()'s text for bf16, "fp32 (avx512)" and
-- the like for fp32) and the bytes packed.
function Module:set_precision(p)
  if p ~= "bf16" and p ~= "fp32" then
    error(string.format("set_precision: expected 'bf16' or 'fp32', got %s", tostring(p)), 2)
  end
  local available, status = mtl.bf16_status()
  local bf16 = p == "bf16" and available
  local fp32 = mtl.fp32_status() ~= "blas"
  local bytes = 0
  for _, np in ipairs(self:named_parameters()) do
    local name, t = np[1], np[2]
    if (name:match("^weight[^.]*$") or name:match("%.weight[^.]*$")) and (t:dim() == 2 or t:dim() == 3) then
      -- a single output (a logit) stays FP32: sgemm's vector path beats a panel of
      -- 16 columns with 15 empty (7 against 24 us for x [1024, 64])
      if bf16 and t:size(t:dim() - 1) > 1 then
        mtl.fp32_unpack(t)
        bytes = bytes + mtl.bf16_pack(t)
      else
        mtl.bf16_unpack(t)
        if fp32 then bytes = bytes + mtl.fp32_pack(t) else mtl.fp32_unpack(t) end
      end
    end
  end
  if bf16 then return "bf16", status, bytes end
  return "fp32", string.format("fp32 (%s)", mtl.fp32_status()), bytes
end

function Module:train(mode)
  if mode == nil then mode = true end
  for _, m in ipairs(self:modules()) do rawset(m[2], "training", mode) end
  return self
end

function Module:eval() return self:train(false) end

function Module:zero_grad()
  for _, p in ipairs(self:parameters()) do p:zero_grad() end
end

function Module:num_parameters()
  local n = 0
  for _, p in ipairs(self:parameters()) do n = n + p:numel() end
  return n
end

-- name -> tensor (copies, so later training does not change a saved state)
function Module:state_dict()
  local sd = {}
  for _, np in ipairs(self:named_parameters()) do sd[np[1]] = np[2]:clone() end
  for _, nb in ipairs(self:named_buffers()) do sd[nb[1]] = nb[2]:clone() end
  return sd
end

local function shape_str(t)
  return "[" .. table.concat(t:shape(), ",") .. "]"
end

-- Copies values in place; strict (default) demands the same set of names.
function Module:load_state_dict(sd, strict)
  if strict == nil then strict = true end
  local seen = {}
  local function load(list)
    for _, np in ipairs(list) do
      local name, t = np[1], np[2]
      local v = sd[name]
      if v == nil then
        if strict then error(string.format("load_state_dict: missing entry '%s'", name), 3) end
      else
        if shape_str(v) ~= shape_str(t) then
          error(string.format("load_state_dict: entry '%s' has shape %s, the module expects %s",
            name, shape_str(v), shape_str(t)), 3)
        end
        mtl.no_grad(function() t:copy(v) end)
        seen[name] = true
      end
    end
  end
  load(self:named_parameters())
  load(self:named_buffers())
  if strict then
    for k in pairs(sd) do
      if not seen[k] then error(string.format("load_state_dict: unexpected entry '%s'", k), 2) end
    end
  end
  return self
end

-- One line for the module itself (blocks override extra_repr).
function Module:extra_repr() return "" end

-- A tree with each module's parameters' shapes and counts.
function Module:__tostring()
  local lines = {}
  local function walk(m, name, indent)
    local own = 0
    local shapes = {}
    for _, pname in ipairs(m._params) do
      local t = m[pname]
      own = own + t:numel()
      shapes[#shapes + 1] = pname .. shape_str(t)
    end
    local extra = m:extra_repr()
    local head = string.format("%s%s%s%s", indent, name ~= "" and name .. ": " or "", m.__name,
      extra ~= "" and "(" .. extra .. ")" or "")
    if #shapes > 0 then head = head .. "  " .. table.concat(shapes, " ") end
    local total = m:num_parameters()
    head = head .. string.format("  {%d params}", total)
    lines[#lines + 1] = head
    for _, c in ipairs(m:children()) do walk(c[2], c[1], indent .. "  ") end
  end
  walk(self, "", "")
  return table.concat(lines, "\n")
end

return nn
