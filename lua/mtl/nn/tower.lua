-- Towers and task lists, shared by the multi-task models in models/.
local mtl = require "mtl"

return function(nn)
  -- Tower{input=, hidden={64}, activation="relu", classes=1}: MLP then
  -- Linear(h, classes); forward returns logits [B] (classes = 2: [B, 2]).
  -- With hidden = {} it is a single Linear.
  local Tower = nn.class("Tower")
  nn.Tower = Tower
  Tower.block = true
  Tower.options = {
    input = { "int", required = true },
    hidden = { "sizes", empty = true, default = { 64 } },
    activation = { "any", default = "relu", check = nn.check_activation },
    batch_norm = { "boolean", default = false },
    dropout = { "any", default = 0, check = nn.check_dropout },
    bias = { "boolean", default = true },
    last_activation = { "boolean", default = true },
    last_batch_norm = { "boolean" },
    classes = { "any", default = 1, check = function(c, v, path)
      if v ~= 1 and v ~= 2 then c:err("'%s' must be 1 (one logit) or 2 (two-class logits), got %s", path, tostring(v)) end
    end },
  }
  function Tower:__init(opts)
    local hidden = opts.hidden
    local last = opts.input
    if #hidden > 0 then
      self.mlp = nn.MLP{ input = opts.input, hidden = hidden, activation = opts.activation,
                         batch_norm = opts.batch_norm, dropout = opts.dropout, bias = opts.bias,
                         last_activation = opts.last_activation, last_batch_norm = opts.last_batch_norm }
      last = self.mlp.output_dim
    end
    self.classes = opts.classes
    self.out = nn.Linear(last, opts.classes)
  end
  function Tower:forward(x)
    if self.mlp then x = self.mlp(x) end
    local y = self.out(x)
    if self.classes == 2 then return y end
    return y:reshape(y:size(1))
  end

  -- Normalizes a task list: strings or {name=, label=, ...} -> list of tables.
  -- Default: click (is_click) and pay (is_pay), the seed's two targets.
  -- A task's tower: its own "mlp" option, else the model's; on input.
  function nn.task_tower(t, default, input)
    local o = nn.mlp_options(t.tower or default, input)
    o.classes = t.classes
    return Tower(o)
  end

  function nn.tasks(list)
    list = list or { { name = "click", label = "is_click" }, { name = "pay", label = "is_pay" } }
    local out, seen = {}, {}
    for i, t in ipairs(list) do
      if type(t) == "string" then t = { name = t } end
      assert(type(t) == "table" and type(t.name) == "string",
        string.format("tasks[%d]: expected a name or {name = ..., label = ...}", i))
      if seen[t.name] then error(string.format("tasks: task '%s' is listed twice", t.name), 2) end
      seen[t.name] = true
      local c = {}
      for k, v in pairs(t) do c[k] = v end
      c.label = c.label or t.name
      c.type = c.type or "binary"
      out[i] = c
    end
    assert(#out > 0, "tasks: at least one task is needed")
    return out
  end

  -- The usual output of a task head: logits [B] and probabilities [B]; for
  -- two-class logits [B, 2], prob is the softmax's second class.
  function nn.head(logits)
    if logits:dim() == 2 then
      return { logits = logits, prob = mtl.softmax(logits, 2):narrow(2, 2, 1):reshape(logits:size(1)) }
    end
    return { logits = logits, prob = mtl.sigmoid(logits) }
  end
end
