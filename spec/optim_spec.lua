-- Optimizers: every kind's updates over several steps against its closed-form
-- rule written out in Lua doubles, on the dense path and on the row-wise path
-- of embedding tables (lazy: untouched rows and their state bit-for-bit
-- unchanged); sparse Adam against dense Adam; groups, schedules, clipping,
-- state round trips and error texts.
local mtl = require "mtl"
local check = require "helpers.check"

local assert_close, assert_error = check.assert_close, check.assert_error
local sqrt, abs = math.sqrt, math.abs

-- ---- reference rules (Lua doubles) ----------------------------------------------------
-- Each updates w (a list) in place from gradient g with state s (a table of
-- lists created by init); t is the parameter's step count (1 for the first
-- update); sparse selects SparseAdam's eps placement (SPEC.md 3.3).
local defaults = {
  sgd = { lr = 0.01, momentum = 0, nesterov = false, weight_decay = 0 },
  adam = { lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0 },
  adamw = { lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 1e-2 },
  adagrad = { lr = 1e-2, lr_decay = 0, weight_decay = 0, initial_accumulator = 0, eps = 1e-10 },
  ftrl = { lr = 1e-3, lr_power = -0.5, l1 = 0, l2 = 0, initial_accumulator = 0.1 },
  rmsprop = { lr = 1e-2, alpha = 0.99, eps = 1e-8, weight_decay = 0, momentum = 0, centered = false },
}

local function with_defaults(kind, cfg)
  local c = {}
  for k, v in pairs(defaults[kind]) do c[k] = v end
  for k, v in pairs(cfg) do c[k] = v end
  return c
end

local function init_state(kind, c, n)
  local function fill(v)
    local t = {}
    for i = 1, n do t[i] = v end
    return t
  end
  if kind == "adagrad" then return { sum = fill(c.initial_accumulator) } end
  if kind == "ftrl" then return { acc = fill(c.initial_accumulator), z = fill(0) } end
  return { a = fill(0), b = fill(0), c = fill(0) }
end

local rules = {}

function rules.sgd(c, w, g, s)
  for i = 1, #w do
    local d = g[i] + c.weight_decay * w[i]
    if c.momentum ~= 0 then
      s.a[i] = c.momentum * s.a[i] + d
      d = c.nesterov and d + c.momentum * s.a[i] or s.a[i]
    end
    w[i] = w[i] - c.lr * d
  end
end

local function adam(c, w, g, s, t, sparse, decoupled)
  local bc1, bc2 = 1 - c.beta1 ^ t, 1 - c.beta2 ^ t
  for i = 1, #w do
    local gi = g[i]
    if decoupled then w[i] = w[i] * (1 - c.lr * c.weight_decay) else gi = gi + c.weight_decay * w[i] end
    s.a[i] = c.beta1 * s.a[i] + (1 - c.beta1) * gi
    s.b[i] = c.beta2 * s.b[i] + (1 - c.beta2) * gi * gi
    if sparse then
      w[i] = w[i] - c.lr * sqrt(bc2) / bc1 * s.a[i] / (sqrt(s.b[i]) + c.eps)
    else
      w[i] = w[i] - c.lr / bc1 * s.a[i] / (sqrt(s.b[i]) / sqrt(bc2) + c.eps)
    end
  end
end
function rules.adam(c, w, g, s, t, sparse) adam(c, w, g, s, t, sparse, false) end
function rules.adamw(c, w, g, s, t, sparse) adam(c, w, g, s, t, sparse, true) end

function rules.adagrad(c, w, g, s, t)
  local clr = c.lr / (1 + (t - 1) * c.lr_decay)
  for i = 1, #w do
    local gi = g[i] + c.weight_decay * w[i]
    s.sum[i] = s.sum[i] + gi * gi
    w[i] = w[i] - clr * gi / (sqrt(s.sum[i]) + c.eps)
  end
end

-- FTRL-Proximal as in McMahan et al. (2013), TensorFlow's ApplyFtrl.
function rules.ftrl(c, w, g, s)
  local p = -c.lr_power
  for i = 1, #w do
    local acc_new = s.acc[i] + g[i] * g[i]
    local sigma = (acc_new ^ p - s.acc[i] ^ p) / c.lr
    s.z[i] = s.z[i] + g[i] - sigma * w[i]
    s.acc[i] = acc_new
    if abs(s.z[i]) <= c.l1 then
      w[i] = 0
    else
      local sign = s.z[i] > 0 and 1 or -1
      w[i] = (sign * c.l1 - s.z[i]) / (acc_new ^ p / c.lr + 2 * c.l2)
    end
  end
end

function rules.rmsprop(c, w, g, s)
  for i = 1, #w do
    local gi = g[i] + c.weight_decay * w[i]
    s.a[i] = c.alpha * s.a[i] + (1 - c.alpha) * gi * gi
    local avg
    if c.centered then
      s.c[i] = c.alpha * s.c[i] + (1 - c.alpha) * gi
      avg = sqrt(s.a[i] - s.c[i] * s.c[i]) + c.eps
    else
      avg = sqrt(s.a[i]) + c.eps
    end
    if c.momentum > 0 then
      s.b[i] = c.momentum * s.b[i] + gi / avg
      w[i] = w[i] - c.lr * s.b[i]
    else
      w[i] = w[i] - c.lr * gi / avg
    end
  end
end

-- The configurations every rule is checked with.
local cases = {
  { "sgd", { lr = 0.1 } },
  { "sgd", { lr = 0.05, momentum = 0.9 } },
  { "sgd", { lr = 0.05, momentum = 0.8, nesterov = true, weight_decay = 0.1 } },
  { "adam", { lr = 0.01 } },
  { "adam", { lr = 0.02, beta1 = 0.8, beta2 = 0.9, eps = 1e-3, weight_decay = 0.05 } },
  { "adamw", { lr = 0.01, weight_decay = 0.1 } },
  { "adagrad", { lr = 0.1 } },
  { "adagrad", { lr = 0.1, lr_decay = 0.5, initial_accumulator = 0.3, weight_decay = 0.02 } },
  { "ftrl", { lr = 0.5 } },
  { "ftrl", { lr = 0.2, l1 = 0.05, l2 = 0.1, lr_power = -0.6, initial_accumulator = 0.2 } },
  { "rmsprop", { lr = 0.01 } },
  { "rmsprop", { lr = 0.01, momentum = 0.9, weight_decay = 0.01 } },
  { "rmsprop", { lr = 0.005, centered = true, alpha = 0.9 } },
}

local function label(kind, cfg)
  local parts = {}
  for k, v in pairs(cfg) do parts[#parts + 1] = k .. "=" .. tostring(v) end
  table.sort(parts)
  return kind .. "{" .. table.concat(parts, ", ") .. "}"
end

local function merged(cfg, extra)
  local c = {}
  for k, v in pairs(cfg) do c[k] = v end
  for k, v in pairs(extra) do c[k] = v end
  return c
end

-- A deterministic gradient entry (float32-representable after a round trip).
local function grad_value(step, i, j) return math.sin(step * 1.7 + i * 0.9 + (j or 0) * 2.3) * (1 + (i % 3)) end

-- ---- dense path ---------------------------------------------------------------------------
describe("mtl.optim dense updates", function()
  for _, case in ipairs(cases) do
    local kind, cfg = case[1], case[2]
    it("follow the rule of " .. label(kind, cfg), function()
      mtl.seed(1)
      local p = mtl.randn(2, 3):requires_grad(true)
      local opt = mtl.optim[kind](merged(cfg, { params = { p } }))
      local c = with_defaults(kind, cfg)
      local w = p:values()
      local s = init_state(kind, c, #w)
      for step = 1, 5 do
        local gt = {}
        for i = 1, 6 do gt[i] = grad_value(step, i) end
        local g = mtl.tensor(gt):reshape(2, 3)
        opt:zero_grad()
        mtl.sum(p * g):backward() -- p.grad = g exactly
        opt:step()
        rules[kind](c, w, g:values(), s, step, false)
        assert_close(p, w, 2e-5, label(kind, cfg) .. " step " .. step)
      end
      assert.are.equal(5, opt:state()[1].step)
    end)
  end

  it("skip parameters without a gradient", function()
    local p, q = mtl.ones(2):requires_grad(true), mtl.ones(2):requires_grad(true)
    local opt = mtl.optim.adam { params = { p, q }, lr = 0.1 }
    mtl.sum(p * 2):backward()
    opt:step()
    assert.are.same({ 1, 1 }, q:values())
    assert.are.equal(0, opt:state()[2].step)
    assert.is_nil(opt:state()[2].exp_avg)
    assert.are.equal(1, opt:state()[1].step)
  end)
end)

-- ---- row-wise path --------------------------------------------------------------------------
describe("mtl.optim row-wise updates of embedding tables", function()
  local batches = { { 1, 3, 1 }, { 0, 4 }, { 3 }, { 1, 2, 2, 2 }, { 4, 0, 4 } }

  for _, case in ipairs(cases) do
    local kind, cfg = case[1], case[2]
    it("touch only the batch's rows, by the rule of " .. label(kind, cfg), function()
      mtl.seed(2)
      local t = mtl.Embedding { num_buckets = 5, dim = 3, init = "normal", scale = 0.5 }
      local opt = mtl.optim[kind](merged(cfg, { params = { t } }))
      local c = with_defaults(kind, cfg)
      local w, s = {}, {}
      for id = 0, 4 do
        w[id] = t:get(id):values()
        s[id] = init_state(kind, c, 3)
      end
      for step, ids in ipairs(batches) do
        -- gradient rows per occurrence, coalesced per id in Lua
        local g, sum = {}, {}
        for i, id in ipairs(ids) do
          g[i] = { grad_value(step, i, 1), grad_value(step, i, 2), grad_value(step, i, 3) }
          sum[id] = sum[id] or { 0, 0, 0 }
          for j = 1, 3 do sum[id][j] = sum[id][j] + g[i][j] end
        end
        opt:zero_grad()
        t:lookup(ids):backward(mtl.tensor(g))
        local before, state_before = {}, {}
        for id = 0, 4 do before[id] = t:get(id):values() end
        for name, v in pairs(opt:state()[1]) do
          if type(v) ~= "number" and type(v) ~= "string" then state_before[name] = v:clone() end
        end
        opt:step()
        local state_after = opt:state()[1]
        assert.are.equal(step, state_after.step) -- one counter per table, every step
        for id = 0, 4 do
          if sum[id] then
            rules[kind](c, w[id], sum[id], s[id], step, true)
            assert_close(t:get(id), w[id], 2e-5, string.format("%s step %d row %d", label(kind, cfg), step, id))
          else
            assert.are.same(before[id], t:get(id):values()) -- bit-for-bit
            for name, v in pairs(state_before) do
              assert.are.same(v:narrow(1, id + 1, 1):values(), state_after[name]:narrow(1, id + 1, 1):values())
            end
          end
        end
      end
    end)
  end

  it("apply L2 weight decay to the touched rows only", function()
    local t = mtl.Embedding { num_buckets = 3, dim = 1, init = "zeros" }
    t:set(0, { 2 })
    t:set(1, { 4 })
    local opt = mtl.optim.sgd { params = { t }, lr = 0.5, weight_decay = 0.25 }
    t:lookup({ 0 }):backward(mtl.tensor { { 1 } })
    opt:step()
    assert.are.same({ 2 - 0.5 * (1 + 0.25 * 2) }, t:get(0):values())
    assert.are.same({ 4 }, t:get(1):values())
  end)

  it("match dense Adam when every row is touched every step", function()
    mtl.seed(3)
    local t = mtl.Embedding { num_buckets = 4, dim = 3, init = "normal", scale = 0.3 }
    local p = t:weight():clone():requires_grad(true)
    local sparse = mtl.optim.adam { params = { t }, lr = 0.01 }
    local dense = mtl.optim.adam { params = { p }, lr = 0.01 }
    for step = 1, 20 do
      local g = {}
      for i = 1, 4 do g[i] = { grad_value(step, i, 1), grad_value(step, i, 2), grad_value(step, i, 3) } end
      local gt = mtl.tensor(g)
      sparse:zero_grad()
      dense:zero_grad()
      t:lookup({ 0, 1, 2, 3 }):backward(gt)
      mtl.sum(p * gt):backward()
      sparse:step()
      dense:step()
    end
    assert_close(t:weight(), p, 1e-5)
  end)

  it("update the rows of a dynamic table and reset the state of re-admitted ids", function()
    local t = mtl.Embedding { kind = "dynamic", dim = 2, ttl_steps = 2, evict_interval = 1, init = "zeros" }
    local opt = mtl.optim.adam { params = { t }, lr = 0.1 }
    t:lookup({ 7, 8 }):backward(mtl.ones(2, 2))
    opt:step() -- the table's clock ticks to 1
    local st = opt:state()[1]
    assert.are.same({ 7, 8 }, st.ids:values())
    assert_close(st.exp_avg, { 0.1, 0.1, 0.1, 0.1 }, 1e-6)
    opt:zero_grad()
    t:lookup({ 8 }):backward(mtl.ones(1, 2))
    opt:step() -- clock 2: 7 (seen at 0) kept
    opt:zero_grad()
    opt:step() -- clock 3: 7 unseen for 3 steps: evicted; 8 (seen at 1) kept
    assert.is_false(t:has(7))
    t:lookup { 7 }
    st = opt:state()[1]
    assert.are.same({ 7, 8 }, st.ids:values())
    assert.are.same({ 0, 0 }, st.exp_avg:narrow(1, 1, 1):values())
    assert.are.same({ 0, 0 }, st.exp_avg_sq:narrow(1, 1, 1):values())
  end)
end)

-- ---- groups, schedules, lr -------------------------------------------------------------------
describe("mtl.optim groups and learning rates", function()
  it("give each group its own settings", function()
    local p = mtl.zeros(2):requires_grad(true)
    local t = mtl.Embedding { num_buckets = 2, dim = 2, init = "zeros" }
    local opt = mtl.optim.sgd { lr = 0.1, params = { { params = { p } }, { params = { t }, lr = 0.5 } } }
    mtl.sum(p * mtl.tensor { 1, 2 }):backward()
    t:lookup({ 1 }):backward(mtl.tensor { { 1, 2 } })
    opt:step()
    assert_close(p, { -0.1, -0.2 }, 1e-7)
    assert_close(t:get(1), { -0.5, -1.0 }, 1e-7)
    assert.are.equal(0.1, opt:get_lr(1))
    assert.are.equal(0.5, opt:get_lr(2))
    assert.are.equal(0.5, opt:state_dict().groups[2].lr)
    assert.are.equal("mtl.optim.sgd(2 parameters in 2 groups, 1 steps)", tostring(opt))
  end)

  it("accept modules (anything with :parameters()) and nested lists", function()
    local a, b = mtl.zeros(1):requires_grad(true), mtl.zeros(1):requires_grad(true)
    local module = { parameters = function() return { a } end }
    local opt = mtl.optim.sgd { params = { module, { b } }, lr = 1 }
    mtl.sum(a + b):backward()
    opt:step()
    assert.are.same({ -1 }, a:values())
    assert.are.same({ -1 }, b:values())
  end)

  it("read the lr of each step from a number, a function or a schedule", function()
    local p = mtl.zeros(1):requires_grad(true)
    local sched = mtl.schedule.step { lr = 1, step_size = 2, gamma = 0.5 }
    local opt = mtl.optim.sgd { params = { p }, lr = sched }
    local expect = 0
    local lrs = {}
    for k = 0, 5 do
      if k == 4 then opt.lr = function(step) return 0.1 * step end end
      lrs[#lrs + 1] = opt:get_lr()
      opt:zero_grad()
      mtl.sum(p):backward()
      opt:step()
      expect = expect - (k < 4 and 0.5 ^ math.floor(k / 2) or 0.1 * k)
    end
    assert.are.same({ 1, 1, 0.5, 0.5, 0.4, 0.5 }, lrs)
    assert_close(p, { expect }, 1e-6)
    opt.lr = 0.25
    opt:zero_grad()
    mtl.sum(p):backward()
    opt:step()
    assert_close(p, { expect - 0.25 }, 1e-6)
  end)
end)

-- ---- clipping ----------------------------------------------------------------------------------
describe("mtl.optim.clip_grad_norm", function()
  local function setup()
    local p = mtl.zeros(3):requires_grad(true)
    local t = mtl.Embedding { num_buckets = 4, dim = 2 }
    mtl.sum(p * mtl.tensor { 1, -2, 2 }):backward()
    t:lookup({ 3, 1, 3 }):backward(mtl.tensor { { 1, 1 }, { 0, 2 }, { 1, 1 } }) -- rows 3: (2, 2), 1: (0, 2)
    return p, t
  end
  local norm = sqrt(1 + 4 + 4 + 4 + 4 + 0 + 4) -- 5

  it("clips dense and sparse gradients together by their global norm", function()
    local p, t = setup()
    local opt = mtl.optim.sgd { params = { p, t } }
    assert_close(mtl.optim.clip_grad_norm(opt, 2.5), norm, 1e-12)
    local coef = 2.5 / (norm + 1e-6)
    assert_close(p.grad, { coef, -2 * coef, 2 * coef }, 1e-6)
    local _, vals = t:grad()
    assert_close(vals, { 0, 2 * coef, 2 * coef, 2 * coef }, 1e-6)
    -- under the limit nothing changes; lists of parameters work too
    p, t = setup()
    assert_close(mtl.optim.clip_grad_norm({ p, t }, 10), norm, 1e-12)
    assert.are.same({ 1, -2, 2 }, p.grad:values())
    assert_close(mtl.optim.clip_grad_norm({ { params = { p } }, { params = { t } } }, 10), norm, 1e-12)
  end)

  it("leaves non-finite gradients alone and checks max_norm", function()
    local p = mtl.zeros(2):requires_grad(true)
    mtl.sum(p * mtl.tensor { 1 / 0, 1 }):backward()
    assert.are.equal(math.huge, mtl.optim.clip_grad_norm(p, 1))
    assert.are.same({ math.huge, 1 }, p.grad:values())
    assert_error("mtl.optim.clip_grad_norm: max_norm must be a finite number > 0, got -1",
      mtl.optim.clip_grad_norm, p, -1)
    assert_error("mtl.optim.clip_grad_norm: max_norm must be a finite number > 0, got nil",
      mtl.optim.clip_grad_norm, p)
    assert_error("mtl.optim.clip_grad_norm: expected an optimizer or parameters, got number",
      mtl.optim.clip_grad_norm, 5, 1)
  end)
end)

-- ---- state -------------------------------------------------------------------------------------
describe("mtl.optim state", function()
  -- deep copy with tensors cloned (a state_dict's tensors may share memory)
  local function snapshot(x)
    if type(x) == "userdata" and getmetatable(x) == mtl.core.Tensor_mt then return x:clone() end
    if type(x) ~= "table" then return x end
    local out = {}
    for k, v in pairs(x) do out[k] = snapshot(v) end
    return out
  end

  local function train(opt, p, t, d, steps, from)
    for step = from, from + steps - 1 do
      mtl.seed(100 + step) -- new dynamic rows draw the same numbers in both runs
      opt:zero_grad()
      local loss = mtl.sum(p * grad_value(step, 1)) + mtl.sum(t:lookup { step % 4, 2 } * grad_value(step, 2))
        + mtl.sum(d:lookup { step % 3, 10 } * grad_value(step, 3))
      loss:backward()
      opt:step()
    end
  end

  for _, kind in ipairs { "adam", "sgd", "ftrl", "rmsprop", "adagrad" } do
    it("round-trips bit-exactly through state_dict (" .. kind .. ")", function()
      mtl.seed(5)
      local p = mtl.randn(3):requires_grad(true)
      local t = mtl.Embedding { num_buckets = 4, dim = 2 }
      local d = mtl.Embedding { kind = "dynamic", dim = 2, ttl_steps = 2, evict_interval = 1 }
      local cfg = { params = { p, t, d }, lr = 0.05 }
      if kind == "sgd" or kind == "rmsprop" then cfg.momentum = 0.5 end
      local opt = mtl.optim[kind](cfg)
      train(opt, p, t, d, 3, 1)
      local saved = snapshot { p = p, t = t:state_dict(), d = d:state_dict(), opt = opt:state_dict() }
      train(opt, p, t, d, 3, 4)
      -- rebuild everything from the saved state and run the same steps
      local p2 = saved.p:clone():requires_grad(true)
      local t2, d2 = mtl.Embedding.from_state(saved.t), mtl.Embedding.from_state(saved.d)
      local cfg2 = { params = { p2, t2, d2 }, lr = 0.05, momentum = cfg.momentum }
      local opt2 = mtl.optim[kind](cfg2):load_state_dict(saved.opt)
      assert.are.equal(3, opt2.steps)
      train(opt2, p2, t2, d2, 3, 4)
      assert.are.same(p:values(), p2:values())
      assert.are.same(t:weight():values(), t2:weight():values())
      local ia, va = d:export()
      local ib, vb = d2:export()
      assert.are.same(ia:values(), ib:values())
      assert.are.same(va:values(), vb:values())
      local sa, sb = opt:state_dict(), opt2:state_dict()
      for i = 1, 3 do
        for name, v in pairs(sa.params[i]) do
          if type(v) == "userdata" then assert.are.same(v:values(), sb.params[i][name]:values()) end
        end
      end
    end)
  end

  it("saves an optimizer through mtl.save as its state", function()
    local p = mtl.ones(2):requires_grad(true)
    local opt = mtl.optim.adam { params = { p }, lr = 0.1 }
    mtl.sum(p * mtl.tensor { 1, 2 }):backward()
    opt:step()
    local path = os.tmpname()
    mtl.save(path, { opt = opt })
    local state = mtl.load(path).opt
    os.remove(path)
    local q = mtl.ones(2):requires_grad(true)
    local opt2 = mtl.optim.adam({ params = { q }, lr = 0.1 }):load_state_dict(state)
    assert.are.same(opt:state()[1].exp_avg_sq:values(), opt2:state()[1].exp_avg_sq:values())
    assert.are.equal(1, opt2.steps)
  end)

  it("rejects a state that does not fit", function()
    local p = mtl.zeros(2):requires_grad(true)
    local t = mtl.Embedding { num_buckets = 3, dim = 2 }
    local opt = mtl.optim.adam { params = { p, t } }
    mtl.sum(p):backward()
    opt:step()
    local sd = opt:state_dict()
    local cases = {
      { { kind = "sgd", steps = 1, params = {} }, "mtl.optim.adam.load_state_dict: the state is of a sgd optimizer" },
      { { kind = "adam", steps = 1, params = {} }, "mtl.optim.adam.load_state_dict: expected params with 2 entries, got another count" },
      { { kind = "adam", steps = -1, params = sd.params }, "mtl.optim.adam.load_state_dict: steps must be an integer >= 0" },
      { { kind = "adam", steps = 1, params = { sd.params[2], sd.params[1] } },
        "mtl.optim.adam.load_state_dict: parameter 1: the state is of embedding, the parameter is tensor" },
      { { kind = "adam", steps = 1, params = { { kind = "tensor", step = 1, exp_avg = mtl.zeros(3), exp_avg_sq = mtl.zeros(2) }, sd.params[2] } },
        "mtl.optim.adam.load_state_dict: parameter 1: 'exp_avg' must be float32 [2], got float32 [3]" },
      { { kind = "adam", steps = 1, params = { { kind = "tensor", step = 1 }, sd.params[2] } },
        "mtl.optim.adam.load_state_dict: parameter 1: 'exp_avg' missing" },
    }
    local before = opt:state()[1].exp_avg:values()
    for _, c in ipairs(cases) do assert_error(c[2], opt.load_state_dict, opt, c[1]) end
    assert.are.same(before, opt:state()[1].exp_avg:values())
  end)

  it("hands a table's state to the optimizer created last", function()
    local t = mtl.Embedding { num_buckets = 2, dim = 1 }
    local first = mtl.optim.adam { params = { t } }
    local second = mtl.optim.sgd { params = { t }, momentum = 0.9 }
    t:lookup({ 1 }):backward(mtl.ones(1, 1))
    second:step()
    assert_error("mtl.optim.adam: parameter 1 (an embedding table) is now updated by another optimizer created later",
      first.step, first)
    local stale = first:state()[1] -- no state tensors: they belong to the later optimizer
    assert.are.same({ kind = "embedding", step = 0 }, stale)
    assert_error("mtl.optim.adam.load_state_dict: parameter 1: the embedding table is now updated by another optimizer",
      first.load_state_dict, first, { kind = "adam", steps = 0, params = { stale } })
  end)
end)

-- ---- errors ----------------------------------------------------------------------------------
describe("mtl.optim errors", function()
  local p = mtl.zeros(3):requires_grad(true)
  it("name the optimizer, the option and the value", function()
    local cases = {
      { "adam", 5, "mtl.optim.adam: expected a table {params = ..., lr = ...}, got number" },
      { "sgd", {}, "mtl.optim.sgd: params is required (tensors, embedding tables or groups)" },
      { "sgd", { params = { 1 } }, "mtl.optim.sgd: expected tensors, embedding tables or modules in params, got number" },
      { "adam", { params = { p }, momentum = 0.9 }, "mtl.optim.adam: unknown option 'momentum' (expected lr, beta1, beta2, eps, weight_decay)" },
      { "ftrl", { params = { p }, weight_decay = 0.1 }, "mtl.optim.ftrl: unknown option 'weight_decay' (expected lr, lr_power, l1, l2, initial_accumulator)" },
      { "sgd", { params = { p }, nesterov = true }, "mtl.optim.sgd: nesterov needs a momentum > 0" },
      { "sgd", { params = { p }, nesterov = 1 }, "mtl.optim.sgd: option 'nesterov' must be a boolean, got number" },
      { "sgd", { params = { p }, momentum = "x" }, "mtl.optim.sgd: option 'momentum' must be a number, got string" },
      { "sgd", { params = { p }, lr = -1 }, "mtl.optim.sgd: lr must be a finite number >= 0, got -1" },
      { "sgd", { params = { p }, lr = "fast" }, "mtl.optim.sgd: lr must be a number, a function of the step or a schedule, got string" },
      { "adam", { params = { p }, beta1 = 1 }, "mtl.optim.adam: beta1 must be in [0, 1), got 1" },
      { "adam", { params = { p }, eps = 0 / 0 }, "mtl.optim.adam: eps must be a finite number >= 0, got" },
      { "ftrl", { params = { p }, lr_power = 0.5 }, "mtl.optim.ftrl: lr_power must be a finite number <= 0, got 0.5" },
      { "rmsprop", { params = { p }, alpha = 2 }, "mtl.optim.rmsprop: alpha must be in [0, 1], got 2" },
      { "sgd", { params = { p, p } }, "mtl.optim.sgd: parameter 2 appears twice" },
      { "sgd", { params = { mtl.zeros({ 2 }, "int64") } }, "mtl.optim.sgd: parameter 1 must be a contiguous float32 tensor, got int64 [2]" },
      { "sgd", { params = { mtl.zeros(2, 3):transpose(1, 2) } }, "mtl.optim.sgd: parameter 1 must be a contiguous float32 tensor, got float32 [3,2] (not contiguous)" },
      { "sgd", { params = { { params = { p } }, 5 } }, "mtl.optim.sgd: params entry 2 is not a group {params = ...}" },
    }
    for _, c in ipairs(cases) do assert_error(c[3], mtl.optim[c[1]], c[2]) end
  end)

  it("check each step's lr", function()
    local opt = mtl.optim.sgd { params = { p }, lr = function() return 0 / 0 end }
    assert_error("mtl.optim.sgd: lr must be a finite number >= 0, got", opt.step, opt)
    local ftrl = mtl.optim.ftrl { params = { p }, lr = mtl.schedule.linear_warmup { lr = 1, warmup_steps = 5 } }
    mtl.sum(p):backward()
    assert_error("mtl.optim.ftrl: lr must be > 0, got 0", ftrl.step, ftrl)
    p:zero_grad()
  end)
end)

describe("mtl.optim table state through checkpoints", function()
  it("saves a table's state (views of the live state) and loads it bit-exactly", function()
    mtl.seed(9)
    local t = mtl.Embedding { num_buckets = 50, dim = 4 }
    local opt = mtl.optim.rmsprop { params = { t }, lr = 0.01, momentum = 0.5, centered = true }
    for step = 1, 3 do
      opt:zero_grad()
      t:lookup({ step, 7, 49 - step }):backward(mtl.ones(3, 4) * step)
      opt:step()
    end
    local path = os.tmpname()
    mtl.save(path, { t = t, opt = opt })
    local back = mtl.load(path)
    os.remove(path)
    local t2 = back.t
    local opt2 = mtl.optim.rmsprop({ params = { t2 }, lr = 0.01, momentum = 0.5, centered = true })
      :load_state_dict(back.opt)
    local a, b = opt:state()[1], opt2:state()[1]
    for _, name in ipairs { "square_avg", "momentum_buffer", "grad_avg" } do
      assert.are.same(a[name]:values(), b[name]:values())
    end
    for _, o in ipairs { { opt, t }, { opt2, t2 } } do -- the same next step
      o[1]:zero_grad()
      o[2]:lookup({ 7 }):backward(mtl.ones(1, 4))
      o[1]:step()
    end
    assert.are.same(t:weight():values(), t2:weight():values())
  end)
end)
