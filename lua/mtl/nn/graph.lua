-- nn.Graph: a DAG of registered blocks (mtl.models.block), wired by name, as
-- Torch7's nngraph wired nn modules and EasyRec's backbone wires its blocks.
--
--   local g = nn.Graph{
--     inputs = { all = 48 },                     -- named inputs and their widths
--     lists = { all = { 16, 16, 16 } },          -- inputs given as lists of tensors (feature lists)
--     blocks = {
--       { name = "fields", list = "all" },       -- an input block: the list itself
--       { name = "se", inputs = { "fields" }, block = "SENet", options = { reduction_ratio = 2 } },
--       { name = "mlp", inputs = { "se" }, block = "MLP", options = { hidden = { 32 } } },
--     },
--     outputs = { "mlp" },                       -- returned as a list; or concat = {...}
--   }
--   local outs = g({ all = x }, { all = { e1, e2, e3 } })
--
-- A block's inputs are block or input names; several are concatenated along
-- the last dimension (lists are joined into one list), or given as one list
-- with merge = "list". A block without `block` passes its (merged) inputs on.
-- The block class says how it is wired: graph_input = "tensor" (its option
-- `input` is the width) or "list" (its option `dims` the widths); a built
-- block gives output_dim (a tensor) or output_dims (a list). Without outputs
-- and concat, the leaves (blocks no other reads) are concatenated.
local mtl = require "mtl"

return function(nn)
  local Graph = nn.class("Graph")
  nn.Graph = Graph
  Graph.block = true
  Graph.options = {
    inputs = { "any", default = {} },
    lists = { "any", default = {} },
    blocks = { "any", required = true, check = function(c, v, path) c:list(v, path, "a list of blocks {name =, inputs =, block =}") end },
    outputs = { "any" },
    concat = { "any" },
    lookup = { "any" },   -- name -> block class (default: mtl.nn's blocks; the backbone model: mtl.models.block)
  }

  local function fail(fmt, ...) error("nn.Graph: " .. string.format(fmt, ...), 0) end

  -- Widths of merged inputs: one width (tensors), or a list of widths.
  local function merge_shape(shapes, as_list)
    if #shapes == 1 and not as_list then return shapes[1] end
    local any_list, total, list = as_list, 0, {}
    for _, s in ipairs(shapes) do
      if type(s) == "table" then any_list = true end
    end
    for _, s in ipairs(shapes) do
      if type(s) == "table" then for _, w in ipairs(s) do list[#list + 1] = w end
      else list[#list + 1] = s; total = total + s end
    end
    return any_list and list or total
  end

  -- Merged input values, as merge_shape merges their widths.
  local function merge_values(values, as_list)
    if #values == 1 and not as_list then return values[1] end
    local any_list = as_list
    for _, v in ipairs(values) do if not type(v) == "userdata" then any_list = true end end
    if not any_list then return mtl.concat(values, -1) end
    local list = {}
    for _, v in ipairs(values) do
      if type(v) == "userdata" then list[#list + 1] = v else for _, t in ipairs(v) do list[#list + 1] = t end end
    end
    return list
  end

  -- Topological order of the blocks (a cycle or an unknown input is an error).
  local function order(blocks, opts)
    local by_name, out, state = {}, {}, {}
    for i, b in ipairs(blocks) do
      if type(b) ~= "table" or type(b.name) ~= "string" then fail("block %d needs a name", i) end
      if by_name[b.name] then fail("two blocks are named '%s'", b.name) end
      by_name[b.name] = b
    end
    local function visit(b, path)
      if state[b.name] == "done" then return end
      if state[b.name] == "active" then fail("the blocks form a cycle: %s -> %s", table.concat(path, " -> "), b.name) end
      state[b.name] = "active"
      path[#path + 1] = b.name
      for _, n in ipairs(b.inputs or {}) do
        if by_name[n] then visit(by_name[n], path)
        elseif opts.inputs[n] == nil and opts.lists[n] == nil then
          fail("block '%s' reads '%s', which is neither a block nor an input", b.name, tostring(n))
        end
      end
      path[#path] = nil
      state[b.name] = "done"
      out[#out + 1] = b
    end
    for _, b in ipairs(blocks) do visit(b, {}) end
    return out, by_name
  end

  -- Builds block spec b of class cls on inputs of the given shape.
  local function build(b, cls, shape)
    local o = {}
    for k, v in pairs(b.options or {}) do o[k] = v end
    local how = rawget(cls, "graph_input")
    if how == "tensor" then
      if type(shape) ~= "number" then fail("block '%s' (%s) reads one tensor, its inputs give a list", b.name, b.block) end
      o.input = shape
    elseif how == "list" then
      if type(shape) ~= "table" then fail("block '%s' (%s) reads a list of tensors, its inputs give one tensor", b.name, b.block) end
      o.dims = shape
    else
      fail("block '%s': %s cannot be wired in a graph (it declares no graph_input)", b.name, b.block)
    end
    local ok, m = pcall(cls, o)
    if not ok then fail("block '%s': %s", b.name, tostring(m)) end
    return m, m.output_dims or m.output_dim
  end

  -- mtl.nn's own blocks by name.
  local function nn_block(name)
    local cls = rawget(nn, name)
    if type(cls) ~= "table" or not rawget(cls, "block") then fail("unknown block '%s'", tostring(name)) end
    return cls
  end

  function Graph:__init(opts)
    local lookup = opts.lookup or nn_block
    local blocks, by_name = order(opts.blocks, opts)
    self.order, self.shapes, self.specs = {}, {}, {}
    for _, b in ipairs(blocks) do
      local shape
      if b.list or b.input then
        local name = b.list or b.input
        shape = b.list and opts.lists[name] or opts.inputs[name]
        if shape == nil then fail("block '%s' reads input '%s', which is not given", b.name, name) end
      else
        local shapes = {}
        for i, n in ipairs(b.inputs or {}) do shapes[i] = self.shapes[n] or opts.inputs[n] or opts.lists[n] end
        if #shapes == 0 then fail("block '%s' has no inputs", b.name) end
        shape = merge_shape(shapes, b.merge == "list")
        if b.block then
          local m
          m, shape = build(b, lookup(b.block), shape)
          self["block_" .. b.name] = m
        end
      end
      self.shapes[b.name] = shape
      self.order[#self.order + 1] = b
    end
    self:outputs_of(opts, by_name)
  end

  -- What the graph returns: outputs (a list), concat (one tensor), or the leaves concatenated.
  function Graph:outputs_of(opts, by_name)
    for _, n in ipairs(opts.outputs or opts.concat or {}) do
      if not by_name[n] then fail("output '%s' is not a block", tostring(n)) end
    end
    if opts.outputs then self.outputs = opts.outputs; return end
    local concat = opts.concat
    if not concat then
      local read = {}
      for _, b in ipairs(self.order) do for _, n in ipairs(b.inputs or {}) do read[n] = true end end
      concat = {}
      for _, b in ipairs(self.order) do if not read[b.name] then concat[#concat + 1] = b.name end end
    end
    self.concat = concat
    local shapes = {}
    for i, n in ipairs(concat) do shapes[i] = self.shapes[n] end
    self.output_shape = merge_shape(shapes)
  end

  -- inputs: {name = tensor}; lists: {name = {tensors}} -> outputs (a list) or one tensor.
  function Graph:forward(inputs, lists)
    local values = {}
    lists = lists or {}
    for _, b in ipairs(self.order) do
      local v
      if b.list then v = lists[b.list]
      elseif b.input then v = inputs[b.input]
      else
        local ins = {}
        for i, n in ipairs(b.inputs) do ins[i] = values[n] or inputs[n] or lists[n] end
        v = merge_values(ins, b.merge == "list")
        local m = self["block_" .. b.name]
        if m then v = m(v) end
      end
      values[b.name] = v
    end
    self.last_values = values
    if self.outputs then
      local out = {}
      for i, n in ipairs(self.outputs) do out[i] = values[n] end
      return out
    end
    local parts = {}
    for i, n in ipairs(self.concat) do parts[i] = values[n] end
    return merge_values(parts)
  end
end
