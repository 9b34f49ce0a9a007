-- mtl.optim: optimizers over dense tensors and embedding tables (docs/optim.md).
--
--   local opt = mtl.optim.adam{params = model:parameters(), lr = 1e-3}
--   opt:zero_grad(); loss:backward(); opt:step()
--
-- The update kernels and all state live in C (runtime/src/optim.c); this file
-- builds the parameter groups, resolves each group's lr (a number, or a
-- schedule / function of the step) and makes one C call per step.
local format = string.format

return function(mtl, core)
  local C = core._optim
  mtl._optim = nil -- copied from core by init.lua; reached through mtl.optim only

  local optim = {}
  local Optimizer = {}
  Optimizer.__index = Optimizer

  local function is_param(x)
    return type(x) == "userdata" and (mtl.Embedding.is(x) or getmetatable(x) == core.Tensor_mt)
  end

  -- Appends the parameters in x (a parameter, a list, or a module with
  -- :parameters()) to out.
  local function collect(x, out, fname)
    if is_param(x) then
      out[#out + 1] = x
    elseif type(x) == "table" and type(x.parameters) == "function" then
      for _, p in ipairs(x:parameters()) do out[#out + 1] = p end
    elseif type(x) == "table" then
      for _, p in ipairs(x) do collect(p, out, fname) end
    else
      error(format("%s: expected tensors, embedding tables or modules in params, got %s", fname, type(x)), 4)
    end
    return out
  end

  -- A group is a plain table with a params field; anything else is a parameter list.
  local function is_group(x)
    return type(x) == "table" and not is_param(x) and x.params ~= nil and type(x.parameters) ~= "function"
  end

  local function resolve(lr, step)
    if type(lr) == "number" or lr == nil then return lr end
    return lr(step) -- a function or a schedule object (callable)
  end

  local function build(kind, cfg)
    local fname = "mtl.optim." .. kind
    if type(cfg) ~= "table" then
      error(format("%s: expected a table {params = ..., lr = ...}, got %s", fname, type(cfg)), 3)
    end
    if cfg.params == nil then error(fname .. ": params is required (tensors, embedding tables or groups)", 3) end
    local given = cfg.params
    local list = (is_param(given) or is_group(given)) and { given } or given
    if type(list) == "table" and type(list.parameters) == "function" then list = { list } end
    -- groups: each given group, or one group of all parameters
    local user_groups = {}
    if type(list) == "table" and is_group(list[1]) then
      for i, g in ipairs(list) do
        if not is_group(g) then error(format("%s: params entry %d is not a group {params = ...}", fname, i), 3) end
        user_groups[i] = g
      end
    else
      user_groups[1] = { params = list }
    end
    local self = setmetatable({ kind = kind, lr = cfg.lr, groups = {}, steps = 0, _lrs = {} }, Optimizer)
    local c_groups = {}
    for i, g in ipairs(user_groups) do
      local group, options = { params = collect(g.params, {}, fname) }, {}
      for k, v in pairs(cfg) do if k ~= "params" then options[k] = v end end
      for k, v in pairs(g) do if k ~= "params" then options[k] = v; group[k] = v end end
      options.params = group.params
      -- the lr the C side starts with; schedules are resolved at each step
      local lr = options.lr
      if lr ~= nil and type(lr) ~= "number" then
        if type(lr) ~= "function" and not (type(lr) == "table" and getmetatable(lr) and getmetatable(lr).__call) then
          error(format("%s: lr must be a number, a function of the step or a schedule, got %s", fname, type(lr)), 3)
        end
        options.lr = nil
      end
      self.groups[i] = group
      c_groups[i] = options
    end
    self._handle = C.new(kind, c_groups)
    return self
  end

  -- opt:step(): one update of every parameter with the current lrs.
  function Optimizer:step()
    local lrs, groups, k = self._lrs, self.groups, self.steps
    local n = #groups
    for i = 1, n do
      local lr = groups[i].lr
      if lr == nil then lr = self.lr end
      lrs[i] = resolve(lr, k) -- nil keeps the group's current lr
    end
    self.steps = self._handle:step(unpack(lrs, 1, n))
    return self.steps
  end

  function Optimizer:zero_grad() self._handle:zero_grad() end

  -- The lr group i (default 1) uses at the next step.
  function Optimizer:get_lr(i)
    local g = self.groups[i or 1]
    if not g then error(format("get_lr: group %s out of range (expected 1..%d)", tostring(i), #self.groups), 2) end
    local lr = g.lr
    if lr == nil then lr = self.lr end
    return resolve(lr, self.steps) or self._handle:group(i or 1).lr
  end

  -- Per parameter (in the order given): {kind =, step =, <state> = tensor ...}.
  function Optimizer:state() return self._handle:state() end

  -- Plain tables and tensors (tensors may share memory with the live state).
  function Optimizer:state_dict() return self._handle:state_dict() end

  function Optimizer:load_state_dict(sd)
    if type(sd) ~= "table" then
      error(format("mtl.optim.%s.load_state_dict: expected a table, got %s", self.kind, type(sd)), 2)
    end
    self._handle:load_state_dict(sd)
    self.steps = sd.steps
    return self
  end

  function Optimizer:__tostring()
    local n = 0
    for _, g in ipairs(self.groups) do n = n + #g.params end
    return format("mtl.optim.%s(%d parameters in %d group%s, %d steps)", self.kind, n, #self.groups,
      #self.groups == 1 and "" or "s", self.steps)
  end

  for _, kind in ipairs { "sgd", "adam", "adamw", "adagrad", "ftrl", "rmsprop" } do
    optim[kind] = function(cfg) return build(kind, cfg) end
  end
  optim.Optimizer = Optimizer

  -- Scales all gradients (dense and sparse) so their global L2 norm is at
  -- most max_norm; returns the norm before clipping.
  function optim.clip_grad_norm(x, max_norm)
    if getmetatable(x) == Optimizer then return C.clip_grad_norm(x._handle, max_norm) end
    if is_param(x) then return C.clip_grad_norm(x, max_norm) end
    if type(x) ~= "table" then
      error(format("mtl.optim.clip_grad_norm: expected an optimizer or parameters, got %s", type(x)), 2)
    end
    local params = {}
    for _, g in ipairs(is_group(x[1]) and x or { x }) do
      collect(is_group(g) and g.params or g, params, "mtl.optim.clip_grad_norm")
    end
    return C.clip_grad_norm(params, max_norm)
  end

  -- Checkpoints (mtl.save) store an optimizer as its state_dict under this type
  -- name; mtl.load gives that state back (pass it to opt:load_state_dict, since
  -- an optimizer cannot be rebuilt without its parameters). An embedding table
  -- is rebuilt whole from its state.
  Optimizer.__typename = "mtl.optim.Optimizer"
  if mtl.checkpoint then
    mtl.checkpoint.register("mtl.optim.Optimizer", function(state) return state end)
    mtl.checkpoint.register("mtl.Embedding", mtl.Embedding.from_state)
  end

  mtl.optim = optim
end
