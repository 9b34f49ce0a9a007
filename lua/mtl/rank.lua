-- mtl.rank: ranking scores from task outputs (docs/cli.md, "Ranking").
--
--   rank_score = pCTR * pCVR * log(max(price, price_floor)) ^ alpha
--
-- cfg.rank = {
--   ctr = "click",        -- the task whose probability is pCTR (default: the first task)
--   cvr = "pay",          -- the task that gives pCVR (default: the second task; none: pCVR = 1)
--   cvr_mode = "auto",    -- "direct": pCVR is that task's output (ESMM's cvr tower, or a
--                         --   task trained on clicked rows only, i.e. with a mask);
--                         -- "ratio": the task predicts click AND pay over all impressions,
--                         --   so pCVR = p_pay / p_click clipped to [0, 1];
--                         -- "auto": direct for ESMM and masked tasks, ratio otherwise
--   price = "price",      -- the price column (none: the price factor is 1)
--   alpha = 1,            -- the price exponent
--   price_floor = e,      -- prices below it (<= 1, 0, negative, empty) count as the floor
--   expression = "ctr * cvr * log(price) ^ 0.5",  -- optional: a second score, `score`
-- }
--
-- Prices <= 1: log(price) is 0 at 1 and negative below, and a negative base
-- with a fractional alpha has no real power. mtl raises every price below
-- price_floor (default e = 2.718..., where log is 1) to the floor: the factor
-- is then >= 1 and continuous in price, items at or below the floor rank by
-- pCTR * pCVR alone, and a price never turns a score negative, zero or NaN.
-- A floor must be > 1.
--
-- The expression grammar (parsed with LPeg, evaluated by closures; nothing is
-- loaded as Lua code):
--   expr  := sum;  sum := prod (("+" | "-") prod)*;  prod := unary (("*" | "/") unary)*
--   unary := "-" unary | power;  power := atom ("^" unary)?      (right-assoc; -x^2 = -(x^2))
--   atom  := number | name "(" expr ("," expr)* ")" | name | "(" expr ")"
-- Names: task outputs (their probabilities), input columns (their numbers),
-- pctr, pcvr and rank_score (as above). Functions: log, log1p, exp, sqrt, abs,
-- min, max, clip(x, lo, hi).
local lpeg = require "lpeg"
local P, R, S, C, Ct, Cp, Cmt, V = lpeg.P, lpeg.R, lpeg.S, lpeg.C, lpeg.Ct, lpeg.Cp, lpeg.Cmt, lpeg.V

local rank = {}

local E_NUMBER = math.exp(1)

-- ---- the formula -----------------------------------------------------------------------
local function clip(x, lo, hi)
  if x ~= x then return lo end
  return math.min(math.max(x, lo), hi)
end

-- pCVR from the cvr task's output p and pCTR: direct, or p / pCTR in [0, 1].
function rank.pcvr(p, pctr, mode)
  if mode == "direct" then return p end
  if not (pctr > 0) then return 0 end
  return clip(p / pctr, 0, 1)
end

-- The price factor log(max(price, floor)) ^ alpha.
function rank.price_factor(price, alpha, floor)
  floor = floor or E_NUMBER
  if not price or price ~= price or price < floor then price = floor end
  if alpha == 0 then return 1 end
  return math.log(price) ^ alpha
end

function rank.score(pctr, pcvr, price, alpha, floor)
  return pctr * pcvr * rank.price_factor(price, alpha or 1, floor)
end

-- ---- the expression grammar ---------------------------------------------------------------
local FUNCTIONS = {
  log = { 1, math.log }, log1p = { 1, function(x) return math.log(1 + x) end }, exp = { 1, math.exp },
  sqrt = { 1, math.sqrt }, abs = { 1, math.abs }, min = { 2, math.min }, max = { 2, math.max },
  clip = { 3, function(x, lo, hi) return math.min(math.max(x, lo), hi) end },
}

local function fail(pos, msg) error({ pos = pos, msg = msg }, 0) end
-- a pattern that raises "expected <what>" at the current position
local function expect(what)
  return Cmt(P(true), function(_, i) fail(i, "expected " .. what) end)
end

local space = S(" \t\r\n") ^ 0
local function tok(p) return space * p * space end
local digit = R("09")
local number = C((digit ^ 1 * (P(".") * digit ^ 0) ^ -1 + P(".") * digit ^ 1) * (S("eE") * S("+-") ^ -1 * digit ^ 1) ^ -1)
local name = C((R("az", "AZ") + P("_")) * (R("az", "AZ", "09") + P("_")) ^ 0)

-- Nodes: {"num", v} {"var", name, pos} {"call", name, pos, args} {"neg", x} {op, a, b}
local function fold(list)
  local acc = list[1]
  for i = 2, #list, 2 do acc = { list[i], acc, list[i + 1] } end
  return acc
end

local grammar = P {
  "top",
  top = space * V("sum") * (-P(1) + expect("an operator or the end of the expression")),
  sum = Ct(V("prod") * (tok(C(S("+-"))) * (V("prod") + expect("an operand"))) ^ 0) / fold,
  prod = Ct(V("unary") * (tok(C(S("*/"))) * (V("unary") + expect("an operand"))) ^ 0) / fold,
  unary = tok(P("-")) * (V("unary") + expect("an operand")) / function(x) return { "neg", x } end + V("power"),
  power = V("atom") * (tok(P("^")) * (V("unary") + expect("an operand after '^'"))) ^ -1
          / function(a, b) if b then return { "^", a, b } end return a end,
  atom = tok(number) / function(s) return { "num", tonumber(s) } end
       + tok(Cp() * name * tok(P("(")) * (Ct(V("sum") * (tok(P(",")) * (V("sum") + expect("an argument"))) ^ 0)
                                             + expect("an argument"))
             * (tok(P(")")) + expect("')' or ','")))
         / function(pos, n, args) return { "call", n, pos, args } end
       + tok(Cp() * name) / function(pos, n) return { "var", n, pos } end
       + tok(P("(")) * (V("sum") + expect("an expression")) * (tok(P(")")) + expect("')'")),
}

-- Parses an expression into a tree; errors read
-- "rank: expected an operand at character 7 of 'ctr * * cvr'".
function rank.parse(text)
  if type(text) ~= "string" then error("rank: the expression must be a string", 0) end
  local ok, res = pcall(lpeg.match, grammar, text)
  if not ok then
    if type(res) == "table" then
      local where = res.pos > #text and "the end" or ("character " .. res.pos)
      error(string.format("rank: %s at %s of '%s'", res.msg, where, text), 0)
    end
    error(res, 0)
  end
  if not res then error(string.format("rank: expected an expression at character 1 of '%s'", text), 0) end
  return res
end

-- Compiles an expression into fn(env, i) -> number, where env[name] is an
-- array of numbers (one per row). known: {name = true} for allowed names.
function rank.compile(text, known)
  local tree = rank.parse(text)
  local used = {}
  local function build(node)
    local kind = node[1]
    if kind == "num" then
      local v = node[2]
      return function() return v end
    elseif kind == "var" then
      local n = node[2]
      if FUNCTIONS[n] then
        error(string.format("rank: '%s' is a function (call it as %s(...)) at character %d of '%s'", n, n, node[3], text), 0)
      end
      if known and not known[n] then
        local names = {}
        for k in pairs(known) do names[#names + 1] = k end
        table.sort(names)
        error(string.format("rank: unknown name '%s' at character %d of '%s' (known: %s)", n, node[3], text,
          table.concat(names, ", ")), 0)
      end
      used[n] = true
      return function(env, i) return env[n][i] end
    elseif kind == "call" then
      local f = FUNCTIONS[node[2]]
      if not f then
        error(string.format("rank: unknown function '%s' at character %d of '%s' (known: clip, abs, exp, log, log1p, max, min, sqrt)",
          node[2], node[3], text), 0)
      end
      if #node[4] ~= f[1] then
        error(string.format("rank: %s takes %d argument%s, got %d at character %d of '%s'", node[2], f[1],
          f[1] == 1 and "" or "s", #node[4], node[3], text), 0)
      end
      local fn, a = f[2], {}
      for j, x in ipairs(node[4]) do a[j] = build(x) end
      if #a == 1 then
        local x = a[1]
        return function(env, i) return fn(x(env, i)) end
      elseif #a == 2 then
        local x, y = a[1], a[2]
        return function(env, i) return fn(x(env, i), y(env, i)) end
      end
      local x, y, z = a[1], a[2], a[3]
      return function(env, i) return fn(x(env, i), y(env, i), z(env, i)) end
    elseif kind == "neg" then
      local x = build(node[2])
      return function(env, i) return -x(env, i) end
    end
    local a, b = build(node[2]), build(node[3])
    if kind == "+" then return function(env, i) return a(env, i) + b(env, i) end end
    if kind == "-" then return function(env, i) return a(env, i) - b(env, i) end end
    if kind == "*" then return function(env, i) return a(env, i) * b(env, i) end end
    if kind == "/" then return function(env, i) return a(env, i) / b(env, i) end end
    return function(env, i) return a(env, i) ^ b(env, i) end
  end
  local fn = build(tree)
  local names = {}
  for n in pairs(used) do names[#names + 1] = n end
  table.sort(names)
  return fn, names
end

-- ---- a scorer for one model -----------------------------------------------------------------
local Scorer = {}
Scorer.__index = Scorer

local KEYS = { ctr = true, cvr = true, cvr_mode = true, price = true, alpha = true, price_floor = true, expression = true }

-- spec: cfg.rank (or nil); info = {tasks = {task names in order}, outputs =
-- {all output names}, direct = {task = true: its output is a conditional pCVR},
-- columns = {column names available}}.
function rank.new(spec, info)
  spec = spec or {}
  if type(spec) ~= "table" then error("rank: cfg.rank must be a table", 0) end
  for k in pairs(spec) do
    if not KEYS[k] then error(string.format("rank: unknown key 'rank.%s' (known: alpha, ctr, cvr, cvr_mode, expression, price, price_floor)", tostring(k)), 0) end
  end
  local outputs = {}
  for _, n in ipairs(info.outputs or info.tasks) do outputs[n] = true end
  local self = setmetatable({}, Scorer)
  self.ctr = spec.ctr or info.tasks[1]
  if not outputs[self.ctr] then error(string.format("rank: rank.ctr names '%s', which is not a model output", tostring(self.ctr)), 0) end
  self.cvr = spec.cvr
  if self.cvr == nil then self.cvr = info.tasks[2] end
  if self.cvr == false then self.cvr = nil end
  if self.cvr and not outputs[self.cvr] then
    error(string.format("rank: rank.cvr names '%s', which is not a model output", tostring(self.cvr)), 0)
  end
  local mode = spec.cvr_mode or "auto"
  if mode == "auto" then mode = (info.direct or {})[self.cvr] and "direct" or "ratio" end
  if mode ~= "direct" and mode ~= "ratio" then
    error(string.format("rank: rank.cvr_mode must be 'auto', 'direct' or 'ratio', got '%s'", tostring(mode)), 0)
  end
  self.cvr_mode = mode
  self.alpha = spec.alpha or 1
  if type(self.alpha) ~= "number" then error("rank: rank.alpha must be a number", 0) end
  self.price_floor = spec.price_floor or E_NUMBER
  if type(self.price_floor) ~= "number" or not (self.price_floor > 1) then
    error(string.format("rank: rank.price_floor must be a number > 1 (log of it must be positive), got %s", tostring(spec.price_floor)), 0)
  end
  self.price = spec.price
  self.columns = {}
  if self.price then self.columns[#self.columns + 1] = self.price end
  if spec.expression then
    local known = { pctr = true, pcvr = true, rank_score = true }
    for n in pairs(outputs) do known[n] = true end
    for _, c in ipairs(info.columns or {}) do known[c] = true end
    self.expression_text = spec.expression
    local fn, names = rank.compile(spec.expression, known)
    self.expression = fn
    for _, n in ipairs(names) do
      if not outputs[n] and not ({ pctr = true, pcvr = true, rank_score = true })[n] and n ~= self.price then
        self.columns[#self.columns + 1] = n
      end
    end
  end
  return self
end

-- Scores n rows. env: {output name = array of probabilities, column name =
-- array of numbers} (the columns of self.columns). Adds env.pctr, env.pcvr,
-- env.rank_score (and env.score with an expression); returns env.
function Scorer:score(env, n)
  local pctr_a, pcvr_a, rs = {}, {}, {}
  local ctr, cvr = env[self.ctr], self.cvr and env[self.cvr]
  local price = self.price and env[self.price]
  local alpha, floor, mode = self.alpha, self.price_floor, self.cvr_mode
  for i = 1, n do
    local pctr = ctr[i]
    local pcvr = cvr and rank.pcvr(cvr[i], pctr, mode) or 1
    pctr_a[i], pcvr_a[i] = pctr, pcvr
    rs[i] = pctr * pcvr * (price and rank.price_factor(price[i], alpha, floor) or 1)
  end
  env.pctr, env.pcvr, env.rank_score = pctr_a, pcvr_a, rs
  if self.expression then
    local s, f = {}, self.expression
    for i = 1, n do s[i] = f(env, i) end
    env.score = s
  end
  return env
end

return rank
