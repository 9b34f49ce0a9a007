-- A scripted misuse run: calls every function exposed by mtl (the module
-- table, one level of its sub-tables, the Tensor methods, every function of
-- the binding mtl.core and its sub-tables, every method of every userdata
-- type the binding registers, and the serving library's Scorer) with wrong
-- types, nil, bad shapes, bad dims and indices, empty and zero-sized
-- tensors, NaN/Inf values and huge sizes. Nothing may crash the process.
--
--   mtl spec/scripts/misuse.lua [TRACEFILE]
--
-- Run by spec/misuse_spec.lua in a child process (a crash must not take the
-- test runner down). Before each call the call's description is written to
-- TRACEFILE, so after a crash the file names the call that crashed it.
--
-- Output (stdout): one line per problem, then a summary line
--   "MUST-ERROR <call>: returned normally"   a misuse that raised no error
--   "UNNAMED <call>: <message>"              an error that does not name the function
--   "misuse: covered <registry> <name> <name> ..."  what was called, per registry:
--       mtl.core (the binding's functions), each userdata class registered
--       as mtl.* (its luaL_Reg methods) and mtl.serve.Scorer
--   "misuse: done <calls> calls, <errors> errors, <problems> problems"
-- Calls whose outcome depends on the arguments (the fuzzing part) only have
-- to return or raise a Lua error; the MUST-ERROR checks are the calls that
-- are a misuse for every function they are applied to.
local mtl = require "mtl"
local util = require "mtl.config.util"

local trace = arg and arg[1] and assert(io.open(arg[1], "w"))
local calls, errors, problems = 0, 0, 0
local DEFAULT_LIMIT = 64 * 2 ^ 30

-- Functions not called, each with the reason.
local SKIP = {
  no_grad = "calls its argument: covered by the spec of autograd",
  set_memory_limit = "changes the limit for later calls (called below with bad values only)",
}

-- ---- values ------------------------------------------------------------------
local spent -- a tensor whose graph was freed by a backward
do
  local p = mtl.param(mtl.ones(2, 3))
  spent = p * 2
  mtl.sum(spent):backward()
end

-- A fresh pool for each function, so in-place writes by one cannot change
-- what the next one sees. Each entry: { description, value }.
local function make_pool()
  mtl.seed(1)
  local base = mtl.randn(3, 2)
  local nan = mtl.tensor { { 0 / 0, 1 / 0, -1 / 0 }, { 1, -0.0, 3.4e38 } }
  return {
    { "nil", nil }, { "false", false }, { "true", true },
    { "0", 0 }, { "1", 1 }, { "2", 2 }, { "-1", -1 }, { "1.5", 1.5 },
    { "nan", 0 / 0 }, { "inf", 1 / 0 }, { "-inf", -1 / 0 }, { "1e13", 1e13 }, { "2^62", 2 ^ 62 },
    { '"x"', "x" }, { '""', "" }, { '"mean"', "mean" },
    { "{}", {} }, { "{1,2}", { 1, 2 } }, { "{{1,2},{3}}", { { 1, 2 }, { 3 } } }, { "{-1}", { -1 } },
    { "function", function() end }, { "io.stdout", io.stdout }, { "coroutine", coroutine.create(function() end) },
    { "float[2,3]", mtl.randn(2, 3) },
    { "int64[2,3]", mtl.tensor({ { 1, 2, 3 }, { 3, 2, 1 } }, "int64") },
    { "int64[2,3] bad indices", mtl.tensor({ { 0, -7, 99 }, { 2 ^ 40, -(2 ^ 40), 4 } }, "int64") },
    { "int64[5]", mtl.tensor({ 1, 2, 3, 4, 5 }, "int64") },
    { "int64[2] with 1e6", mtl.tensor({ 1, 1e6 }, "int64") },
    { "float scalar", mtl.tensor(2.5) },
    { "float[1]", mtl.tensor { 4 } },
    { "float[0]", mtl.zeros(0) },
    { "float[3,0]", mtl.zeros(3, 0) },
    { "int64[0]", mtl.zeros(0, "int64") },
    { "float[5]", mtl.randn(5) },
    { "float[2,3,4]", mtl.randn(2, 3, 4) },
    { "float[1,1,1,1,1,1,1,1]", mtl.ones(1, 1, 1, 1, 1, 1, 1, 1) },
    { "float[2,3] transposed", base:transpose(1, 2) },
    { "float[2,3] expanded", mtl.randn(1, 3):expand(2, 3) },
    { "float[2,3] nan/inf", nan },
    { "param[2,3]", mtl.param(mtl.randn(2, 3)) },
    { "spent graph [2,3]", spent },
    { "{t, t}", { mtl.randn(2, 3), mtl.randn(2, 3) } },
    { "{t, 'x'}", { mtl.randn(2, 3), "x" } },
    { "{t[2,3], t[4]}", { mtl.randn(2, 3), mtl.randn(4) } },
    { "{weight=t}", { weight = mtl.randn(2, 3), reduction = "bogus" } },
    -- option tables whose every field reads as a bad number
    { "{any=1e300}", setmetatable({}, { __index = function() return 1e300 end }) },
    { "{any=nan}", setmetatable({}, { __index = function() return 0 / 0 end }) },
    { "{any=-1}", setmetatable({}, { __index = function() return -1 end }) },
  }
end

-- The arguments for the second and later positions of the 3- and 4-argument
-- calls (a smaller set keeps the run short).
local SMALL = { 1, 4, 5, 7, 9, 12, 14, 17, 22, 24, 25, 26, 29, 31, 32, 38, 39, 42, 46, 47 }

-- ---- calling -------------------------------------------------------------------
local function restore()
  mtl.set_memory_limit(DEFAULT_LIMIT)
  mtl.set_grad_enabled(true)
  mtl.set_num_threads(1)
end

local function describe(name, descs)
  return name .. "(" .. table.concat(descs, ", ") .. ")"
end

local function problem(kind, what, msg)
  problems = problems + 1
  print(kind .. " " .. what .. (msg and (": " .. msg) or ""))
end

-- A short name as it appears in messages: "mtl.add" -> "add"
local function short(name) return (name:gsub("^.*[.:]", "")) end

-- Calls f as a user would (through a field named like the function, so
-- Lua's own "bad argument" messages name it too) with the arguments in args.
local callers = {}
local function invoke(name, f, args, n)
  local key = short(name)
  local caller = callers[key]
  if not caller then
    -- a constant field name and no tail call, so the frame keeps the name
    caller = assert(loadstring("local holder, args, n = ...\nholder." .. key .. "(unpack(args, 1, n))"))
    callers[key] = caller
  end
  return pcall(caller, { [key] = f }, args, n)
end

-- Writes the call's description `what` to TRACEFILE, then calls f with
-- args[1..n] (as `name`, see invoke) and counts it; returns ok, err.
local function traced(what, name, f, args, n)
  if trace then
    trace:seek("set")
    trace:write(what, "\n")
    trace:flush()
  end
  calls = calls + 1
  local ok, err = invoke(name, f, args, n)
  restore()
  return ok, err
end

-- Calls f with the pool entries at positions idx; returns ok, err.
local function call(name, f, pool, idx)
  local args, descs = {}, {}
  for i, k in ipairs(idx) do
    args[i] = pool[k][2]
    descs[i] = pool[k][1]
  end
  local what = describe(name, descs)
  local ok, err = traced(what, name, f, args, #idx)
  if not ok then
    errors = errors + 1
    if type(err) ~= "string" or err == "" then
      problem("UNNAMED", what, "error value is " .. type(err))
    end
  end
  return ok, err, what
end

-- A C function pushed twice (mtl.add and the method t:add, or an alias) is
-- two function values with one C address: that address is its identity.
local funcinfo = require("jit.util").funcinfo
local function identity(f)
  local info = funcinfo(f)
  return info.addr or f
end

-- Every name a function is exposed under (mtl.view is mtl.reshape, ...),
-- plus the names its messages use for a Lua property.
local names_of = {}
local PROPERTY = { get_grad = "grad" } -- t:get_grad() is the method behind t.grad

-- True when the message names the function (under any of its names), or is
-- a plain out-of-memory report.
local function names_function(f, name, err)
  if type(err) ~= "string" then return false end
  if err:find("out of memory", 1, true) then return true end
  for _, n in ipairs(names_of[identity(f)] or { short(name) }) do
    if err:find(n, 1, true) then return true end
  end
  return false
end

-- A misuse: must raise an error that names the function.
local function must_error(name, f, pool, idx)
  local ok, err, what = call(name, f, pool, idx)
  if ok then
    problem("MUST-ERROR", what, "returned normally")
  elseif not names_function(f, name, err) then
    problem("UNNAMED", what, tostring(err))
  end
end

-- ---- the functions ---------------------------------------------------------------
local targets, seen = {}, {}
local function add_target(name, f)
  if type(f) ~= "function" or SKIP[short(name)] then return end
  local id = identity(f)
  names_of[id] = names_of[id] or {}
  table.insert(names_of[id], short(name))
  if PROPERTY[short(name)] then table.insert(names_of[id], PROPERTY[short(name)]) end
  if not seen[id] then
    seen[id] = true
    targets[#targets + 1] = { name = name, f = f }
  end
end
-- The string keys of t, sorted.
local function names(t)
  local set = {}
  for k in pairs(t) do if type(k) == "string" then set[k] = true end end
  return util.sorted_keys(set)
end
for _, k in ipairs(names(mtl)) do add_target("mtl." .. k, rawget(mtl, k)) end
for _, k in ipairs(names(mtl.Tensor)) do add_target("Tensor:" .. k, mtl.Tensor[k]) end
for _, k in ipairs(names(mtl)) do
  local sub = rawget(mtl, k)
  if type(sub) == "table" and sub ~= mtl.Tensor then
    for _, kk in ipairs(names(sub)) do add_target("mtl." .. k .. "." .. kk, sub[kk]) end
  end
end

-- the binding itself: every function of mtl.core and of its sub-tables (some
-- are reached through mtl only by Lua wrappers)
local core = mtl.core
local core_ids = {}
for _, k in ipairs(names(core)) do
  local v = core[k]
  if type(v) == "function" then
    core_ids[#core_ids + 1] = { identity(v), "mtl.core." .. k }
    add_target("mtl.core." .. k, v)
  elseif type(v) == "table" and k ~= "Tensor" and k ~= "Tensor_mt" then
    for _, kk in ipairs(names(v)) do
      if type(v[kk]) == "function" then
        core_ids[#core_ids + 1] = { identity(v[kk]), "mtl.core." .. k .. "." .. kk }
        add_target("mtl.core." .. k .. "." .. kk, v[kk])
      end
    end
  end
end

-- A function "takes a tensor first" when a call with a float[2,3] first
-- argument succeeds and the same call with "x" in its place fails; for
-- those, calling without a tensor is always a misuse.
local FLOAT23, STRING = 24, 14
local NOT_TENSORS = { 1, 21, 22, 23 } -- nil, function, io.stdout, coroutine
local function takes_tensor_first(name, f, pool)
  for _, idx in ipairs { { FLOAT23 }, { FLOAT23, FLOAT23 }, { FLOAT23, 5 }, { FLOAT23, 5, 5 }, { FLOAT23, 42 } } do
    if call(name, f, pool, idx) then
      idx[1] = STRING
      return not call(name, f, pool, idx)
    end
  end
  return false
end

-- Functions for which a non-tensor first argument is valid, with the reason.
local FIRST_ARG_FREE = {
  tensor = "mtl.tensor(t) copies a tensor, mtl.tensor(x) also takes numbers and tables",
  concat = "takes a table of tensors", stack = "takes a table of tensors",
}

-- what was called, for the coverage lines
local called = {}
local function mark(f) called[identity(f)] = true end

mtl.seed(2024)
local rng_state = 12345
local function rand_index(n) -- deterministic, independent of mtl's stream
  rng_state = (rng_state * 1103515245 + 12345) % 2147483648
  return rng_state % n + 1
end

for _, t in ipairs(targets) do
  local name, f = t.name, t.f
  mark(f)
  local pool = make_pool()
  local n = #pool
  -- 0 and 1 argument
  call(name, f, pool, {})
  for a = 1, n do call(name, f, pool, { a }) end
  -- every pair
  for a = 1, n do
    for b = 1, n do call(name, f, pool, { a, b }) end
  end
  -- triples and quadruples over a smaller set, and random longer calls
  for _, a in ipairs(SMALL) do
    for _, b in ipairs(SMALL) do
      for _, c in ipairs(SMALL) do call(name, f, pool, { a, b, c }) end
      call(name, f, pool, { FLOAT23, a, b, SMALL[rand_index(#SMALL)] })
    end
  end
  for _ = 1, 500 do
    local idx = {}
    for i = 1, 3 + rand_index(4) do idx[i] = rand_index(n) end
    call(name, f, pool, idx)
  end
  -- the misuses every tensor function must reject
  if not FIRST_ARG_FREE[short(name)] and takes_tensor_first(name, f, pool) then
    must_error(name, f, pool, {})
    for _, k in ipairs(NOT_TENSORS) do must_error(name, f, pool, { k }) end
  end
  collectgarbage()
end

-- ---- every method of every userdata type, and the Scorer ---------------------------
-- The binding registers each userdata class's metatable as "mtl.<Class>"
-- (debug.getregistry()), its __index the luaL_Reg table of its methods. Each
-- method is called on fresh instances (a factory per kind of instance) with
-- the pool's arguments, and with a wrong self (nil, a number, a string, a
-- table, a tensor, another class's instance), which must raise an error
-- naming the method.
local scratch = os.tmpname()
local saved = os.tmpname()
mtl.save(saved, { a = mtl.ones(2, 3), b = "x", c = { 1, 2 } })
local function reader_opts()
  return { text = "1,2.5,7|8\n3,-1,\n", batch_size = 1,
           columns = { { name = "id", type = "int64" }, { name = "x", type = "float" },
                       { name = "tags", type = "multi", separator = "|", default = "" } } }
end
local MAKE = {
  ["mtl.Embedding"] = {
    function() return mtl.Embedding { num_buckets = 10, dim = 3 } end,
    function() return mtl.Embedding { hash_bucket_size = 7, dim = 2 } end,
    function() return mtl.Embedding { kind = "dynamic", dim = 3, min_count = 2, ttl_steps = 3 } end,
  },
  ["mtl.Reader"] = { function() return mtl.data.csv(reader_opts())._core end },
  ["mtl.Optimizer"] = {
    function() return mtl.optim.adam { params = { mtl.param(mtl.ones(2, 3)) } }._handle end,
    function() return mtl.optim.sgd { params = { mtl.Embedding { num_buckets = 5, dim = 2 } }, lr = 0.1 }._handle end,
  },
  ["mtl.CheckpointWriter"] = { function() return core.checkpoint_io.writer(scratch) end },
  ["mtl.CheckpointReader"] = { function() return core.checkpoint_io.reader(saved) end },
  ["mtl.dist.Request"] = {
    function() return mtl.dist.iallreduce(mtl.ones(2, 3))._request end,
    function() return mtl.dist.iallreduce_many({ mtl.ones(2), mtl.ones(3) })._request end,
  },
}
local classes, methods_called = {}, {}
for name, mt in pairs(debug.getregistry()) do
  if type(name) == "string" and name:match("^mtl%.") and name ~= "mtl.Tensor" and type(mt) == "table"
    and type(rawget(mt, "__index")) == "table" then
    classes[#classes + 1] = name
  end
end
table.sort(classes)
local instances = {} -- one of each class, for the wrong-self calls
for _, cname in ipairs(classes) do
  if MAKE[cname] then instances[#instances + 1] = { cname, MAKE[cname][1]() } end
end

-- Calls method (of class cname) on fresh instances from each factory.
local function exercise(cname, mname, f, factories)
  methods_called[cname] = methods_called[cname] or {}
  methods_called[cname][mname] = true
  local label = cname:gsub("^mtl%.", "") .. ":" .. mname
  for _, make in ipairs(factories) do
    local pool = make_pool()
    pool[#pool + 1] = { "self", make() }
    local SELF = #pool
    call(label, f, pool, { SELF })
    for a = 1, SELF do call(label, f, pool, { SELF, a }) end
    for _, a in ipairs(SMALL) do
      for _, b in ipairs(SMALL) do call(label, f, pool, { SELF, a, b }) end
    end
    for _ = 1, 200 do
      local idx = { SELF }
      for i = 2, 2 + rand_index(4) do idx[i] = rand_index(SELF) end
      call(label, f, pool, idx)
    end
    -- a wrong self
    for _, k in ipairs({ 1, 4, 14, 17, 24 }) do must_error(label, f, pool, { k }) end
    for _, other in ipairs(instances) do
      if other[1] ~= cname then
        pool[#pool + 1] = { other[1], other[2] }
        must_error(label, f, pool, { #pool })
      end
    end
    collectgarbage()
  end
end

for _, cname in ipairs(classes) do
  local factories = MAKE[cname]
  if not factories then
    problem("NO-FACTORY", cname, "misuse.lua has no way to make one: add it to MAKE")
  else
    local methods = rawget(debug.getregistry()[cname], "__index")
    for _, mname in ipairs(names(methods)) do
      local f = methods[mname]
      if type(f) == "function" then
        names_of[identity(f)] = names_of[identity(f)] or {}
        table.insert(names_of[identity(f)], mname)
        exercise(cname, mname, f, factories)
      end
    end
  end
end

-- the serving library's Scorer (lua/mtl/serve.lua), on a tiny exported model
do
  local serve = require "mtl.serve"
  local work = os.tmpname()
  os.remove(work)
  os.execute("mkdir -p " .. work)
  local model_dir, request = require("spec.helpers.tiny_model").make(work)
  local function make()
    local s = serve.load(model_dir)
    s.reader:set_text(request)
    return s
  end
  methods_called["mtl.serve.Scorer"] = {}
  for _, mname in ipairs(names(serve.Scorer)) do
    local f = serve.Scorer[mname]
    if type(f) == "function" then
      methods_called["mtl.serve.Scorer"][mname] = true
      local pool = make_pool()
      pool[#pool + 1] = { "scorer", make() }
      local SELF = #pool
      local label = "Scorer:" .. mname
      call(label, f, pool, { SELF })
      for a = 1, SELF do call(label, f, pool, { SELF, a }) end
      for _, a in ipairs(SMALL) do
        for _, b in ipairs(SMALL) do call(label, f, pool, { SELF, a, b }) end
      end
    end
  end
  os.execute("rm -rf " .. work)
end
os.remove(scratch)
os.remove(saved)

-- ---- specific misuses: each must raise an error naming the function ---------------
local case = 0
local function misuse(name, f, ...)
  local args = { n = select("#", ...), ... }
  case = case + 1
  local what = name .. " (specific case " .. case .. ")"
  mark(f)
  local ok, err = traced(what, name, f, args, args.n)
  if ok then
    problem("MUST-ERROR", what, "returned normally")
  else
    errors = errors + 1
    if not names_function(f, name, err) then problem("UNNAMED", what, tostring(err)) end
  end
end

local a23, a45, l23 = mtl.randn(2, 3), mtl.randn(4, 5), mtl.tensor({ { 1, 2, 3 }, { 1, 2, 3 } }, "int64")
-- wrong shapes
misuse("mtl.add", mtl.add, a23, mtl.randn(4))
misuse("mtl.mul", mtl.mul, a23, a45)
misuse("mtl.matmul", mtl.matmul, a23, a45)
misuse("mtl.matmul", mtl.matmul, mtl.randn(3), a23)
misuse("mtl.matmul", mtl.matmul, mtl.randn(2, 3, 4), mtl.randn(3, 4, 5))
misuse("mtl.linear", mtl.linear, a23, a45)
misuse("mtl.where", mtl.where, mtl.ones(4), a23, a23)
misuse("mtl.concat", mtl.concat, { a23, a45 }, 1)
misuse("mtl.stack", mtl.stack, { a23, a45 })
misuse("mtl.reshape", mtl.reshape, a23, 4, 2)
misuse("mtl.expand", mtl.expand, a23, 4, 3)
misuse("mtl.gather", mtl.gather, a23, 2, mtl.tensor({ 1, 2 }, "int64"))
misuse("mtl.cross_entropy", mtl.cross_entropy, a23, mtl.tensor({ 1, 2, 3 }, "int64"))
misuse("mtl.bce_with_logits", mtl.bce_with_logits, a23, a45)
misuse("mtl.mse", mtl.mse, a23, a45)
misuse("mtl.layer_norm", mtl.layer_norm, a23, mtl.ones(4), mtl.zeros(4))
misuse("mtl.batch_norm", mtl.batch_norm, a23, mtl.ones(4), mtl.zeros(4), mtl.zeros(4), mtl.ones(4))
misuse("Tensor:copy", a23.copy, a23, a45)
misuse("Tensor:backward", a23.backward, mtl.param(a23:clone()) * 2)
-- wrong types and nil
misuse("mtl.add", mtl.add, a23, "x")
misuse("mtl.add", mtl.add, a23, nil)
misuse("mtl.add", mtl.add, nil, nil)
misuse("mtl.matmul", mtl.matmul, l23, l23:transpose(1, 2))
misuse("mtl.exp", mtl.exp, l23)
misuse("mtl.softmax", mtl.softmax, a23, "x")
misuse("mtl.sum", mtl.sum, a23, "x")
misuse("mtl.gather", mtl.gather, a23, 2, a23)
misuse("mtl.index_select", mtl.index_select, a23, 1, a23)
misuse("mtl.cross_entropy", mtl.cross_entropy, a23, mtl.tensor { 1, 2 })
misuse("mtl.tensor", mtl.tensor, { 1, "a" })
misuse("mtl.zeros", mtl.zeros, "a")
misuse("Tensor:get", a23.get, a23, "a", 1)
misuse("Tensor:requires_grad", a23.requires_grad, l23, true)
-- bad dims
misuse("mtl.sum", mtl.sum, a23, 3)
misuse("mtl.sum", mtl.sum, a23, 0)
misuse("mtl.mean", mtl.mean, a23, -3)
misuse("mtl.max", mtl.max, a23, 5)
misuse("mtl.softmax", mtl.softmax, a23, 3)
misuse("mtl.log_softmax", mtl.log_softmax, a23, 0)
misuse("mtl.transpose", mtl.transpose, a23, 1, 3)
misuse("mtl.narrow", mtl.narrow, a23, 3, 1, 1)
misuse("mtl.concat", mtl.concat, { a23, a23 }, 3)
misuse("mtl.stack", mtl.stack, { a23, a23 }, 4)
misuse("mtl.squeeze", mtl.squeeze, a23, 3)
misuse("mtl.unsqueeze", mtl.unsqueeze, a23, 4)
misuse("mtl.permute", mtl.permute, a23, 1, 1)
misuse("mtl.split", mtl.split, a23, 1, 3)
misuse("Tensor:size", a23.size, a23, 3)
-- bad indices
misuse("mtl.index_select", mtl.index_select, a23, 1, mtl.tensor({ 0 }, "int64"))
misuse("mtl.index_select", mtl.index_select, a23, 1, mtl.tensor({ 3 }, "int64"))
misuse("mtl.index_select", mtl.index_select, a23, 2, { 1, 2 ^ 40 })
misuse("mtl.gather", mtl.gather, a23, 2, mtl.tensor({ { 1, 4, 1 }, { 1, 1, 1 } }, "int64"))
misuse("mtl.gather", mtl.gather, a23, 2, mtl.tensor({ { 1, -1, 1 }, { 1, 1, 1 } }, "int64"))
misuse("mtl.cross_entropy", mtl.cross_entropy, a23, mtl.tensor({ 1, 4 }, "int64"))
misuse("mtl.cross_entropy", mtl.cross_entropy, a23, mtl.tensor({ 0, 1 }, "int64"))
misuse("mtl.narrow", mtl.narrow, a23, 2, 3, 2)
misuse("mtl.narrow", mtl.narrow, a23, 2, 0, 1)
misuse("Tensor:get", a23.get, a23, 3, 1)
misuse("Tensor:set", a23.set, a23, 1, 0, 5)
misuse("Tensor:get_flat", a23.get_flat, a23, 7)
-- empty tensors and zero-sized dims
misuse("mtl.max", mtl.max, mtl.zeros(0))
misuse("mtl.min", mtl.min, mtl.zeros(3, 0), 2)
misuse("Tensor:item", a23.item, mtl.zeros(0))
misuse("mtl.matmul", mtl.matmul, mtl.zeros(0, 3), mtl.zeros(2, 0))
misuse("mtl.concat", mtl.concat, {}, 1)
misuse("mtl.stack", mtl.stack, {})
misuse("mtl.index_select", mtl.index_select, mtl.zeros(0, 3), 1, mtl.tensor({ 1 }, "int64"))
-- NaN/Inf where a size, dim or index is expected
misuse("mtl.zeros", mtl.zeros, 0 / 0)
misuse("mtl.ones", mtl.ones, 1 / 0)
misuse("mtl.arange", mtl.arange, 0 / 0)
misuse("mtl.sum", mtl.sum, a23, 0 / 0)
misuse("mtl.narrow", mtl.narrow, a23, 1, 1 / 0, 1)
misuse("mtl.reshape", mtl.reshape, a23, 0 / 0)
misuse("Tensor:get", a23.get, a23, 0 / 0, 1)
misuse("mtl.index_select", mtl.index_select, a23, 1, { 0 / 0 })
misuse("mtl.tensor", mtl.tensor, { 0 / 0 }, "int64")
-- huge sizes: a clear out-of-memory error
misuse("mtl.zeros", mtl.zeros, 1e13)
misuse("mtl.randn", mtl.randn, 1e7, 1e7)
misuse("mtl.ones", mtl.ones, 2 ^ 62, 2 ^ 62)
misuse("mtl.full", mtl.full, { 1e12, 1e3 }, 1)
misuse("mtl.arange", mtl.arange, 0, 2 ^ 62)
misuse("mtl.expand", mtl.expand, mtl.ones(1, 1), 2 ^ 62, 2 ^ 62)
misuse("mtl.reshape", mtl.reshape, a23, 2 ^ 62, 2 ^ 62)
misuse("mtl.matmul", mtl.matmul, mtl.ones(1, 1):expand(1e6, 1), mtl.ones(1, 1):expand(1, 1e6))
misuse("mtl.set_memory_limit", mtl.set_memory_limit, -1)
misuse("mtl.set_memory_limit", mtl.set_memory_limit, 0 / 0)
misuse("mtl.seed", mtl.seed, 0 / 0)
misuse("mtl.seed", mtl.seed, 1e300)
do
  mtl.set_memory_limit(2 ^ 20)
  local ok, err = pcall(mtl.zeros, 1024, 1024)
  restore()
  calls = calls + 1
  if ok then problem("MUST-ERROR", "mtl.zeros(1024, 1024) under a 1 MiB limit", "returned normally")
  elseif not err:find("out of memory", 1, true) then problem("UNNAMED", "mtl.zeros under a limit", err)
  else errors = errors + 1 end
end

if trace then trace:close() end
-- what was called, per registry (spec/misuse_spec.lua compares these with the registries)
local core_names = {}
for _, e in ipairs(core_ids) do if called[e[1]] then core_names[#core_names + 1] = e[2] end end
table.sort(core_names)
print("misuse: covered mtl.core " .. table.concat(core_names, " "))
local tensor_names = {}
for _, k in ipairs(names(mtl.Tensor)) do
  if type(mtl.Tensor[k]) == "function" and called[identity(mtl.Tensor[k])] then tensor_names[#tensor_names + 1] = k end
end
print("misuse: covered mtl.Tensor " .. table.concat(tensor_names, " "))
local registries = names(methods_called)
for _, cname in ipairs(registries) do
  print(string.format("misuse: covered %s %s", cname, table.concat(names(methods_called[cname]), " ")))
end
print(string.format("misuse: done %d calls, %d errors, %d problems", calls, errors, problems))
