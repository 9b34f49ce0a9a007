-- Embedding tables: kinds, initializers, lookups and bags (values against rows
-- read back with get), sparse gradients (against hand sums and finite
-- differences), dynamic admission / eviction / default rows, state round
-- trips and error texts.
local mtl = require "mtl"
local check = require "helpers.check"
local ffi = require "ffi"

local assert_close, assert_error = check.assert_close, check.assert_error

-- ---- helpers -------------------------------------------------------------------
local function row(t, id) return t:get(id):values() end

-- The sparse gradient as {[id] = {values}} (and the sorted id list).
local function grad_map(t)
  local ids, vals = t:grad()
  local out, list = {}, {}
  if not ids then return out, list end
  local dim = t:dim()
  local v = vals:values()
  for k = 1, ids:numel() do
    local id = ids:get(k)
    list[k] = id
    local r = {}
    for j = 1, dim do r[j] = v[(k - 1) * dim + j] end
    out[id] = r
  end
  return out, list
end

local dot = check.dot

-- Finite-difference check of a table's sparse gradient: L = sum(f(t) * R) for
-- a fixed random R; the analytic gradient is t:grad() after L:backward(), the
-- numeric one perturbs each entry of the rows `ids` (central differences).
-- f is linear in the rows, so the differences are exact up to float rounding.
local function table_gradcheck(t, f, ids, eps)
  eps = eps or 1e-2
  t:zero_grad()
  local out = f(t)
  mtl.seed(4321)
  local r = mtl.randn(out:shape())
  local rv = r:values()
  mtl.sum(out * r):backward()
  local analytic = grad_map(t)
  t:zero_grad()
  for _, id in ipairs(ids) do
    local base = row(t, id)
    for j = 1, #base do
      local function at(v)
        local p = { unpack(base) }
        p[j] = v
        t:set(id, p)
        return mtl.no_grad(function() return dot(f(t):values(), rv) end)
      end
      local plus, minus = base[j] + eps, base[j] - eps
      local num = (at(plus) - at(minus)) / (2 * eps)
      t:set(id, base)
      local ana = analytic[id] and analytic[id][j] or 0
      if math.abs(ana - num) > 1e-4 + 1e-3 * math.max(math.abs(ana), math.abs(num)) then
        error(string.format("gradient of row %s, entry %d: analytic %.7g, numeric %.7g", tostring(id), j, ana, num), 2)
      end
    end
  end
end

-- XXH3 from the system library, independently of mtl's binding.
ffi.cdef [[
uint64_t XXH3_64bits(const void *data, size_t len);
uint64_t XXH3_64bits_withSeed(const void *data, size_t len, uint64_t seed);
]]
local ok_lib, xxh = pcall(ffi.load, "xxhash")
if not ok_lib then xxh = ffi.load("libxxhash.so.0") end

local function le8(key)
  local b, u = ffi.new("uint8_t[8]"), ffi.cast("uint64_t", ffi.cast("int64_t", key))
  for i = 0, 7 do b[i] = tonumber(bit.band(bit.rshift(u, 8 * i), 0xff)) end
  return b
end

local function expected_bucket(key, n, seed)
  return tonumber(xxh.XXH3_64bits_withSeed(le8(key), 8, seed or 0) % n)
end

local function string_key(s) return ffi.cast("int64_t", xxh.XXH3_64bits(s, #s)) end

-- ---- construction --------------------------------------------------------------------
describe("mtl.Embedding construction", function()
  it("builds the three kinds", function()
    local cases = {
      { cfg = { num_buckets = 7, dim = 3 }, kind = "fixed", rows = 7 },
      { cfg = { hash_bucket_size = 11, dim = 2 }, kind = "hashed", rows = 11 },
      { cfg = { kind = "dynamic", dim = 4 }, kind = "dynamic", rows = 0 },
      { cfg = { kind = "fixed", num_buckets = 2, dim = 1 }, kind = "fixed", rows = 2 },
    }
    for _, c in ipairs(cases) do
      local t = mtl.Embedding(c.cfg)
      assert.are.equal(c.kind, t:kind())
      assert.are.equal(c.rows, t:rows())
      assert.are.same({ c.rows, c.cfg.dim }, t:size())
      assert.are.equal(c.cfg.dim, t:dim())
      assert.is_true(mtl.Embedding.is(t))
    end
    assert.is_false(mtl.Embedding.is(mtl.zeros(2)))
    assert.are.equal("mtl.Embedding(fixed, 7 x 3)", tostring(mtl.Embedding { num_buckets = 7, dim = 3 }))
    assert.are.equal("mtl.Embedding(dynamic, 0 rows x 4, capacity 16)",
      tostring(mtl.Embedding { kind = "dynamic", dim = 4, initial_capacity = 16 }))
  end)

  it("rejects bad configurations with clear messages", function()
    local cases = {
      { { dim = 4 }, "mtl.Embedding: give num_buckets (a fixed table), hash_bucket_size (a hashed table) or kind = 'dynamic'" },
      { { num_buckets = 4 }, "mtl.Embedding: option 'dim' (the row size) is required" },
      { { num_buckets = 4, dim = 0 }, "mtl.Embedding: option 'dim' must be an integer >= 1, got 0" },
      { { num_buckets = 4, dim = 2.5 }, "mtl.Embedding: option 'dim' must be an integer >= 1, got 2.5" },
      { { num_buckets = 0, dim = 2 }, "mtl.Embedding: option 'num_buckets' must be an integer >= 1, got 0" },
      { { num_buckets = "4", dim = 2 }, "mtl.Embedding: option 'num_buckets' must be an integer, got string" },
      { { num_buckets = 4, hash_bucket_size = 4, dim = 2 }, "mtl.Embedding: num_buckets and hash_bucket_size exclude each other" },
      { { num_buckets = 4, dim = 2, colour = 1 }, "mtl.Embedding: unknown option 'colour'" },
      { { num_buckets = 4, dim = 2, min_count = 2 }, "mtl.Embedding: option 'min_count' does not apply to a fixed table" },
      { { hash_bucket_size = 4, dim = 2, default_row = { 1, 2 } }, "mtl.Embedding: option 'default_row' does not apply to a hashed table" },
      { { num_buckets = 4, dim = 2, init = "xavier" }, "mtl.Embedding: option 'init' must be one of uniform, normal, truncated_normal, zeros, got xavier" },
      { { num_buckets = 4, dim = 2, kind = "sparse" }, "mtl.Embedding: option 'kind' must be one of fixed, hashed, dynamic, got sparse" },
      { { num_buckets = 4, dim = 2, scale = -1 }, "mtl.Embedding: the initializer scale must be finite and >= 0, got -1" },
      { { num_buckets = 4, dim = 2, scale = 0 / 0 }, "mtl.Embedding: the initializer scale must be finite and >= 0, got" },
      { { kind = "dynamic", dim = 2, default_row = { 1 } }, "mtl.Embedding: expected default_row as a table or tensor of 2 numbers, got a table of another length" },
      { { kind = "dynamic", dim = 2, min_count = 0 }, "mtl.Embedding: option 'min_count' must be an integer >= 1, got 0" },
      { { num_buckets = 2 ^ 50, dim = 2 ^ 20 }, "mtl.Embedding: a table of 1125899906842624 x 1048576 is too large" },
      { { num_buckets = 2 ^ 40, dim = 64 }, "mtl.Embedding: out of memory" },
    }
    for _, c in ipairs(cases) do assert_error(c[2], mtl.Embedding, c[1]) end
    assert_error("mtl.Embedding: expected a table of options", mtl.Embedding, 5)
  end)
end)

-- ---- initializers -------------------------------------------------------------------
describe("mtl.Embedding initializers", function()
  local function stats(vals)
    local s, s2, lo, hi = 0, 0, math.huge, -math.huge
    for _, v in ipairs(vals) do
      s, s2 = s + v, s2 + v * v
      lo, hi = math.min(lo, v), math.max(hi, v)
    end
    local n = #vals
    return s / n, math.sqrt(s2 / n - (s / n) ^ 2), lo, hi
  end

  it("draws uniform rows from mtl's seeded stream, row by row", function()
    mtl.seed(7)
    local t = mtl.Embedding { num_buckets = 5, dim = 3, init = "uniform", scale = 0.5 }
    mtl.seed(7)
    local u = mtl.rand(15):values() -- the same draws, as float32 in [0, 1)
    local w = t:weight():values()
    for i = 1, 15 do assert_close(w[i], (2 * u[i] - 1) * 0.5, 1e-6) end
  end)

  it("gives the requested distributions", function()
    local n = 4000
    local cases = {
      { init = "uniform", scale = 0.1, mean = 0, std = 0.1 / math.sqrt(3), lo = -0.1, hi = 0.1 },
      { init = "normal", scale = 0.2, mean = 0, std = 0.2 },
      -- N(0, 1) cut at +-2 has std 0.8796
      { init = "truncated_normal", scale = 0.2, mean = 0, std = 0.2 * 0.8796, lo = -0.4, hi = 0.4 },
      { init = "zeros", scale = 1, mean = 0, std = 0, lo = 0, hi = 0 },
    }
    for _, c in ipairs(cases) do
      mtl.seed(11)
      local t = mtl.Embedding { num_buckets = n, dim = 4, init = c.init, scale = c.scale }
      local mean, std, lo, hi = stats(t:weight():values())
      assert(math.abs(mean) < 0.05 * c.scale, c.init .. " mean " .. mean)
      assert(math.abs(std - c.std) <= 0.03 * c.scale, c.init .. " std " .. std .. " expected " .. c.std)
      if c.lo then assert(lo >= c.lo and hi <= c.hi, c.init .. " range") end
    end
  end)

  it("is reproducible under mtl.seed", function()
    mtl.seed(3)
    local a = mtl.Embedding { num_buckets = 20, dim = 4, init = "normal" }:weight():values()
    mtl.seed(3)
    local b = mtl.Embedding { num_buckets = 20, dim = 4, init = "normal" }:weight():values()
    assert.are.same(a, b)
  end)
end)

-- ---- lookups -------------------------------------------------------------------------
describe("mtl.Embedding.lookup", function()
  it("gathers rows for tensors and tables of ids, any id shape", function()
    mtl.seed(1)
    local t = mtl.Embedding { num_buckets = 6, dim = 3 }
    local cases = {
      { ids = mtl.tensor({ 0, 5, 2, 2 }, "int64"), flat = { 0, 5, 2, 2 }, shape = { 4, 3 } },
      { ids = { 4, 1 }, flat = { 4, 1 }, shape = { 2, 3 } },
      { ids = mtl.tensor({ { 1, 2, 3 }, { 5, 0, 1 } }, "int64"), flat = { 1, 2, 3, 5, 0, 1 }, shape = { 2, 3, 3 } },
      -- a transposed (non-contiguous) view: row-major order of the view
      { ids = mtl.tensor({ { 1, 2, 3 }, { 5, 0, 1 } }, "int64"):transpose(1, 2), flat = { 1, 5, 2, 0, 3, 1 }, shape = { 3, 2, 3 } },
      { ids = mtl.tensor({ 0, 1, 2, 3, 4, 5 }, "int64"):narrow(1, 3, 2), flat = { 2, 3 }, shape = { 2, 3 } },
    }
    for _, c in ipairs(cases) do
      local y = t:lookup(c.ids)
      assert.are.same(c.shape, y:shape())
      local expect = {}
      for _, id in ipairs(c.flat) do
        for _, v in ipairs(row(t, id)) do expect[#expect + 1] = v end
      end
      assert.are.same(expect, y:values()) -- a copy: bit-exact
    end
    local empty = t:lookup(mtl.zeros({ 0 }, "int64"))
    assert.are.same({ 0, 3 }, empty:shape())
  end)

  it("rejects bad ids", function()
    local t = mtl.Embedding { num_buckets = 10, dim = 2 }
    local cases = {
      { { 3, 10 }, "mtl.Embedding.lookup: id 10 out of range for a fixed table of 10 rows (valid ids: 0..9)" },
      { { -1 }, "mtl.Embedding.lookup: id -1 out of range for a fixed table of 10 rows (valid ids: 0..9)" },
      { { 1.5 }, "mtl.Embedding.lookup: id 1 must be an integer (use an int64 tensor beyond 2^53), got 1.5" },
      { { 1, true }, "mtl.Embedding.lookup: id 2 must be an integer or a string, got boolean" },
      { mtl.tensor { 1, 2 }, "mtl.Embedding.lookup: expected int64 ids, got float32" },
      { "3", "mtl.Embedding.lookup: expected ids as an int64 tensor or a table of integers or strings, got string" },
      { nil, "mtl.Embedding.lookup: expected ids as an int64 tensor or a table of integers or strings, got nil" },
    }
    for _, c in ipairs(cases) do assert_error(c[2], t.lookup, t, c[1]) end
    assert_error("mtl.Embedding.lookup: expected an mtl.Embedding for argument 1, got table", t.lookup, {}, { 1 })
    assert_error("mtl.Embedding.get: id 10 out of range for a fixed table of 10 rows (valid ids: 0..9)", t.get, t, 10)
  end)

  it("hashes integer and string ids with XXH3 (as libxxhash computes it)", function()
    local n, seed = 97, 5
    local t = mtl.Embedding { hash_bucket_size = n, dim = 2, hash_seed = seed }
    local w = t:weight()
    local ids = { 0, 1, 42, -7, 123456789012, 2 ^ 52, "apple", "", "user:17" }
    local y = t:lookup(ids)
    for i, id in ipairs(ids) do
      local key = type(id) == "string" and string_key(id) or id
      local b = expected_bucket(key, n, seed)
      for j = 1, 2 do assert.are.equal(w:get(b + 1, j), y:get(i, j)) end
    end
    -- large ids as int64 tensors hash all 64 bits
    local big = mtl.tensor({ 2 ^ 62, -2 ^ 62 }, "int64")
    local yb = t:lookup(big)
    assert.are.equal(w:get(expected_bucket(ffi.new("int64_t", 2 ^ 62), n, seed) + 1, 1), yb:get(1, 1))
    -- string ids of a dynamic table are keyed by XXH3 (seed 0)
    local d = mtl.Embedding { kind = "dynamic", dim = 2 }
    d:lookup { "apple" }
    local keys = d:export()
    assert.are.equal(string_key("apple"), ffi.cast("int64_t *", keys:data_ptr())[0])
  end)

  it("maps hashed ids the same way in another process", function()
    local build = os.getenv("MTL_BUILD") or "build"
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write([[
      local mtl = require "mtl"
      mtl.seed(99) -- the hash does not depend on the random stream
      local t = mtl.Embedding { hash_bucket_size = 1000, dim = 1, init = "zeros" }
      local w = t:weight() -- bucket b holds the value b
      for b = 0, 999 do w:set(b + 1, 1, b) end
      io.write(table.concat(t:lookup { 1, 2, 3, "a", "b", 1e12 }:values(), ","))
    ]])
    f:close()
    local function run()
      local p = assert(io.popen(build .. "/mtl " .. script))
      local out = p:read("*a")
      p:close()
      return out
    end
    local a, b = run(), run()
    os.remove(script)
    local expect = {}
    for i, id in ipairs { 1, 2, 3, "a", "b", 1e12 } do
      expect[i] = tostring(expected_bucket(type(id) == "string" and string_key(id) or id, 1000, 0))
    end
    assert.are.equal(table.concat(expect, ","), a)
    assert.are.equal(a, b)
  end)
end)

-- ---- bags ----------------------------------------------------------------------------
describe("mtl.Embedding.lookup_bag", function()
  mtl.seed(5)
  local t = mtl.Embedding { num_buckets = 8, dim = 3 }
  -- bags: {1, 2, 2}, {}, {7}, {0, 5, 6, 1}; offsets are 1-based positions
  local ids = { 1, 2, 2, 7, 0, 5, 6, 1 }
  local offsets = { 1, 4, 4, 5 }
  local bags = { { 1, 2, 3 }, {}, { 4 }, { 5, 6, 7, 8 } }
  local weights = { 0.5, 2.0, 1.5, -1.0, 0.25, 3.0, 1.0, 0.75 }

  -- The expected pooled rows, in Lua doubles.
  local function expected(combiner, w)
    local out = {}
    for _, bag in ipairs(bags) do
      local acc, d = { 0, 0, 0 }, 0
      for _, k in ipairs(bag) do
        local wk = w and w[k] or 1
        local r = row(t, ids[k])
        for j = 1, 3 do acc[j] = acc[j] + wk * r[j] end
        d = d + (combiner == "mean" and wk or wk * wk)
      end
      if combiner == "sum" then d = 1 elseif combiner == "sqrtn" then d = math.sqrt(d) end
      for j = 1, 3 do out[#out + 1] = d ~= 0 and acc[j] / d or 0 end
    end
    return out
  end

  it("pools with sum, mean and sqrtn, with and without weights", function()
    for _, combiner in ipairs { "sum", "mean", "sqrtn" } do
      for _, w in ipairs { false, true } do
        local opts = { combiner = combiner, weights = w and mtl.tensor(weights) or nil }
        local y = t:lookup_bag(ids, offsets, opts)
        assert.are.same({ 4, 3 }, y:shape())
        assert_close(y, expected(combiner, w and weights), 1e-6, combiner .. (w and " weighted" or ""))
      end
    end
    -- the default combiner is mean; a string names the combiner; tensors work as well
    assert_close(t:lookup_bag(ids, offsets), expected("mean"), 1e-6)
    assert_close(t:lookup_bag(mtl.tensor(ids, "int64"), mtl.tensor(offsets, "int64"), "sum"), expected("sum"), 1e-6)
    assert.are.same({ 0, 3 }, t:lookup_bag({}, {}):shape())
    -- base: 0-based offsets (as readers give them), or a slice of a bag column
    assert.are.same(t:lookup_bag(ids, offsets, "sum"):values(),
      t:lookup_bag(ids, { 0, 3, 3, 4 }, { combiner = "sum", base = 0 }):values())
    local tail = t:lookup_bag({ 7, 0, 5, 6, 1 }, { 3, 4 }, { combiner = "sum", base = 3 }) -- bags 3 and 4
    assert_close(tail, { unpack(expected("sum"), 7, 12) }, 1e-6)
  end)

  it("has finite-difference gradients for the rows and the weights", function()
    for _, combiner in ipairs { "sum", "mean", "sqrtn" } do
      table_gradcheck(t, function(tab)
        return tab:lookup_bag(ids, offsets, { combiner = combiner, weights = mtl.tensor(weights) })
      end, { 0, 1, 2, 3, 5, 6, 7 })
      table_gradcheck(t, function(tab) return tab:lookup_bag(ids, offsets, combiner) end, { 1, 2, 4 })
      -- weights (kept away from a zero denominator)
      check.gradcheck(function(w) return t:lookup_bag(ids, offsets, { combiner = combiner, weights = w }) end,
        { mtl.tensor(weights) })
    end
  end)

  it("rejects bad offsets, weights and combiners", function()
    local cases = {
      { ids, { 2, 4 }, nil, "mtl.Embedding.lookup_bag: offsets must start at 1 (the position of the first id), got 2" },
      { ids, { 0, 4 }, nil, "mtl.Embedding.lookup_bag: offsets must start at 1 (the position of the first id), got 0" },
      { ids, { 1, 5, 3 }, nil, "mtl.Embedding.lookup_bag: offsets must be nondecreasing positions in 1..9, got offsets[3] = 3 after 5" },
      { ids, { 1, 10 }, nil, "mtl.Embedding.lookup_bag: offsets must be nondecreasing positions in 1..9, got offsets[2] = 10 after 1" },
      { ids, {}, nil, "mtl.Embedding.lookup_bag: offsets is empty but there are 8 ids" },
      { ids, { 1, "a" }, nil, "mtl.Embedding.lookup_bag: offsets entry 2 must be an integer, got string" },
      { ids, offsets, "max", "mtl.Embedding.lookup_bag: combiner must be 'sum', 'mean' or 'sqrtn', got 'max'" },
      { ids, offsets, { weights = mtl.ones(3) }, "mtl.Embedding.lookup_bag: expected float32 weights with one value per id, [8], got float32 [3]" },
      { ids, offsets, { weights = 1 }, "mtl.Embedding.lookup_bag: weights must be a float32 tensor, got number" },
      { ids, offsets, { combine = "sum" }, "mtl.Embedding.lookup_bag: unknown option 'combine' (expected combiner, weights, base)" },
      { ids, offsets, { base = -1 }, "mtl.Embedding.lookup_bag: base must be a non-negative integer" },
      { ids, { 1, 4 }, { base = 0 }, "mtl.Embedding.lookup_bag: offsets must start at 0 (the position of the first id), got 1" },
      { mtl.tensor({ { 1, 2 } }, "int64"), { 1 }, nil, "mtl.Embedding.lookup_bag: expected 1-D ids and offsets, got [1,2] and [1]" },
      { { 1, 99 }, { 1 }, nil, "mtl.Embedding.lookup_bag: id 99 out of range for a fixed table of 8 rows (valid ids: 0..7)" },
    }
    for _, c in ipairs(cases) do assert_error(c[4], t.lookup_bag, t, c[1], c[2], c[3]) end
  end)
end)

-- ---- sparse gradients --------------------------------------------------------------------
describe("mtl.Embedding gradients", function()
  it("sums the upstream gradient per unique id, in sorted id order", function()
    mtl.seed(2)
    local t = mtl.Embedding { num_buckets = 10, dim = 2 }
    local ids = { 7, 3, 7, 0, 3, 7 }
    local g = {}
    for i = 1, #ids do g[i] = { i * 0.5, -i } end
    t:lookup(ids):backward(mtl.tensor(g))
    local grad, list = grad_map(t)
    assert.are.same({ 0, 3, 7 }, list)
    local expect = {}
    for i, id in ipairs(ids) do
      expect[id] = expect[id] or { 0, 0 }
      expect[id][1], expect[id][2] = expect[id][1] + g[i][1], expect[id][2] + g[i][2]
    end
    for id, v in pairs(expect) do assert_close(grad[id], v, 1e-6) end
    -- a second backward accumulates; zero_grad clears
    t:lookup({ 3 }):backward(mtl.tensor { { 1, 1 } })
    assert_close(grad_map(t)[3], { expect[3][1] + 1, expect[3][2] + 1 }, 1e-6)
    t:zero_grad()
    assert.is_nil(t:grad())
  end)

  it("passes finite differences for single-id lookups", function()
    mtl.seed(3)
    local t = mtl.Embedding { num_buckets = 6, dim = 3 }
    table_gradcheck(t, function(tab) return tab:lookup { 4, 1, 4, 0 } end, { 0, 1, 2, 4 })
    table_gradcheck(t, function(tab)
      local y = tab:lookup(mtl.tensor({ { 1, 2 }, { 2, 5 } }, "int64"))
      return mtl.sigmoid(y) -- through a nonlinearity downstream
    end, { 1, 2, 5 })
  end)

  it("lets one table serve two features (both gradients arrive)", function()
    mtl.seed(4)
    local items = mtl.Embedding { num_buckets = 10, dim = 2 }
    local item_ids, trigger_ids = { 1, 4, 4 }, { 4, 9, 1 }
    local gi = mtl.tensor { { 1, 2 }, { 3, 4 }, { 5, 6 } }
    local gt = mtl.tensor { { -1, 1 }, { 0.5, 0.5 }, { 2, -2 } }
    local loss = mtl.sum(items:lookup(item_ids) * gi) + mtl.sum(items:lookup(trigger_ids) * gt)
    loss:backward()
    local grad, list = grad_map(items)
    assert.are.same({ 1, 4, 9 }, list)
    assert_close(grad[1], { 1 + 2, 2 - 2 }, 1e-6)
    assert_close(grad[4], { 3 + 5 - 1, 4 + 6 + 1 }, 1e-6)
    assert_close(grad[9], { 0.5, 0.5 }, 1e-6)
    table_gradcheck(items, function(tab)
      return mtl.concat({ tab:lookup(item_ids), tab:lookup(trigger_ids) }, 2)
    end, { 1, 4, 9 })
  end)

  it("keeps the gradient sparse for a big table", function()
    local t = mtl.Embedding { num_buckets = 1000000, dim = 4, init = "zeros" }
    t:lookup({ 999999, 5, 5 }):backward(mtl.ones(3, 4))
    local ids, vals = t:grad()
    assert.are.same({ 5, 999999 }, ids:values())
    assert.are.same({ 2, 4 }, vals:shape())
  end)

  it("records nothing under no_grad or when frozen", function()
    local t = mtl.Embedding { num_buckets = 4, dim = 2 }
    local y = mtl.no_grad(function() return t:lookup { 1 } end)
    assert.is_false(y:requires_grad())
    t:requires_grad(false)
    assert.is_false(t:lookup({ 1 }):requires_grad())
    assert.is_false(t:requires_grad())
    t:requires_grad(true)
    assert.are.equal("embedding_lookup", t:lookup({ 1 }):grad_fn())
  end)
end)

-- ---- dynamic tables ----------------------------------------------------------------------
describe("dynamic mtl.Embedding", function()
  it("admits an id after min_count sightings, one value per id within a batch", function()
    local t = mtl.Embedding { kind = "dynamic", dim = 2, min_count = 3, default_row = { 9, 8 } }
    local y = t:lookup { 5, 6 }
    assert.are.same({ 9, 8, 9, 8 }, y:values()) -- not admitted: the default row
    assert.is_false(t:has(5))
    y = t:lookup { 5, 7, 5 } -- 5 reaches its 3rd sighting inside this batch
    assert.is_true(t:has(5))
    assert.is_false(t:has(7))
    local r5 = row(t, 5)
    assert.are.same({ r5[1], r5[2], 9, 8, r5[1], r5[2] }, y:values())
    assert.are.equal(1, t:rows())
    -- only admitted rows get a gradient
    y:backward(mtl.ones(3, 2))
    local grad, list = grad_map(t)
    assert.are.same({ 5 }, list)
    assert.are.same({ 2, 2 }, grad[5])
  end)

  it("does not admit or count ids at eval; unseen ids get zeros or the default row", function()
    local t = mtl.Embedding { kind = "dynamic", dim = 3 }
    t:lookup { 1 }
    t:eval()
    assert.is_false(t:training())
    local y = t:lookup { 1, 2 }
    local r1 = row(t, 1)
    assert.are.same({ r1[1], r1[2], r1[3], 0, 0, 0 }, y:values())
    assert.is_false(t:has(2))
    assert.is_nil(t:get(2))
    local d = mtl.Embedding { kind = "dynamic", dim = 2, default_row = mtl.tensor { 0.5, -0.5 } }
    d:eval()
    assert.are.same({ 0.5, -0.5 }, d:lookup({ 42 }):values())
    d:train()
    assert.is_true(d:training())
    d:lookup { 42 }
    assert.is_true(d:has(42))
  end)

  it("evicts ids not seen for more than ttl_steps steps, and reuses their rows", function()
    mtl.seed(8)
    local t = mtl.Embedding { kind = "dynamic", dim = 2, ttl_steps = 2, evict_interval = 1, min_count = 2 }
    t:lookup { 1, 1, 2, 2, 3 } -- step 0: 1 and 2 admitted, 3 seen once
    local old1 = row(t, 1)
    assert.are.equal(0, t:tick()) -- step 1
    t:lookup { 2 }
    assert.are.equal(0, t:tick()) -- step 2: 1 unseen for 2 steps: kept
    assert.is_true(t:has(1))
    assert.are.equal(1, t:tick()) -- step 3: 1 unseen for 3 steps: evicted; 3's count expires
    assert.is_false(t:has(1))
    assert.is_true(t:has(2))
    assert.are.equal(1, t:rows())
    assert.are.equal(3, t:steps())
    t:lookup { 3 }
    assert.is_false(t:has(3)) -- counting starts again
    t:lookup { 3 }
    assert.is_true(t:has(3)) -- admitted into 1's freed row, freshly initialized
    assert.are_not.same(old1, row(t, 3))
    assert.are.equal(2, t:rows())
    assert.are.equal(1, t:tick()) -- step 4: 2 (seen at 1) goes
    assert.is_false(t:has(2))
  end)

  it("scans every ttl_steps steps by default, or on evict()", function()
    local t = mtl.Embedding { kind = "dynamic", dim = 1, ttl_steps = 3 }
    t:lookup { 1 }
    for _ = 1, 3 do assert.are.equal(0, t:tick()) end -- the scan at step 3 keeps 1 (3 - 0 = 3)
    assert.are.equal(0, t:tick())                       -- step 4: no scan
    assert.are.equal(1, t:evict())                      -- an explicit scan evicts it
    local keep = mtl.Embedding { kind = "dynamic", dim = 1 } -- ttl 0: never evicts
    keep:lookup { 1 }
    for _ = 1, 5 do keep:tick() end
    assert.are.equal(0, keep:evict())
    assert.is_true(keep:has(1))
  end)

  it("refuses a backward after the lookup's rows were evicted", function()
    local t = mtl.Embedding { kind = "dynamic", dim = 2, ttl_steps = 1, evict_interval = 1 }
    t:lookup { 1 }
    local y = t:lookup { 2 }
    t:tick()
    t:tick() -- evicts 1 (and 2)
    assert_error("backward of embedding_lookup: the table's rows were evicted or reloaded after the lookup "
      .. "(run backward before the optimizer step)", function() mtl.sum(y):backward() end)
  end)

  it("grows past initial_capacity keeping every row", function()
    mtl.seed(9)
    local t = mtl.Embedding { kind = "dynamic", dim = 3, initial_capacity = 2 }
    local seen = {}
    for id = 100, 140 do
      t:lookup { id }
      seen[id] = row(t, id)
    end
    assert.are.equal(41, t:rows())
    assert.are.equal(64, t:capacity())
    for id = 100, 140 do assert.are.same(seen[id], row(t, id)) end
    local ids, vecs = t:export()
    assert.are.same({ 41 }, ids:shape())
    assert.are.same({ 41, 3 }, vecs:shape())
    for k = 1, 41 do
      assert.are.equal(99 + k, ids:get(k)) -- sorted by id
      assert.are.same(seen[99 + k], { vecs:get(k, 1), vecs:get(k, 2), vecs:get(k, 3) })
    end
    assert_error("mtl.Embedding.weight: a dynamic table has no fixed row order; use export()", t.weight, t)
  end)

  it("grows a big table with optimizer state as if it had had the room from the start", function()
    -- Past 64 MiB of rows and Adam state a doubling moves the buffer's pages
    -- (mremap) instead of copying into a new buffer; the rows, their state and
    -- the training that follows must be those of a table that never grew.
    local function run(initial_capacity)
      mtl.seed(13)
      local t = mtl.Embedding { kind = "dynamic", dim = 16, initial_capacity = initial_capacity }
      local opt = mtl.optim.adam { params = { t }, lr = 0.01 }
      local next_id = 1
      for _ = 1, 10 do -- 10 x 60,000 new ids: 600,000 rows, 115 MB with Adam
        local ids = {}
        for i = 1, 60000 do ids[i], next_id = next_id, next_id + 1 end
        for i = 1, 6000 do ids[#ids + 1] = 1 + (i * 7919) % (next_id - 1) end -- rows seen before
        opt:zero_grad()
        t:lookup(mtl.tensor(ids, "int64")):backward(mtl.randn(#ids, 16))
        opt:step()
      end
      local ids, vecs = t:export()
      local st = opt:state()[1]
      return t, ids, vecs, st
    end
    local grown, ids_g, vecs_g, st_g = run(1024)
    assert.are.equal(1048576, grown:capacity())
    local ids_r, vecs_r, st_r = select(2, run(700000))
    assert.are.equal(600000, ids_g:numel())
    assert.are.equal(0, mtl.sum(mtl.abs(ids_g:float() - ids_r:float())):item())
    assert.are.equal(0, mtl.sum(mtl.abs(vecs_g - vecs_r)):item())
    for _, k in ipairs { "exp_avg", "exp_avg_sq" } do
      assert.are.same(st_r[k]:shape(), st_g[k]:shape())
      assert.are.equal(0, mtl.sum(mtl.abs(st_g[k] - st_r[k])):item(), k)
    end
  end)

  it("sets rows directly (creating them in a dynamic table)", function()
    local t = mtl.Embedding { kind = "dynamic", dim = 2, min_count = 5 }
    t:set("k", { 1, 2 })
    assert.are.same({ 1, 2 }, row(t, "k"))
    assert.are.same({ 1, 2 }, t:lookup({ "k" }):values())
    assert_error("mtl.Embedding.set: expected values as a table or tensor of 2 numbers, got a table of another length",
      t.set, t, 1, { 1 })
    local f = mtl.Embedding { num_buckets = 3, dim = 2 }
    f:set(2, mtl.tensor { 5, 6 })
    assert.are.same({ 5, 6 }, row(f, 2))
    assert_error("mtl.Embedding.set: id 3 out of range for a fixed table of 3 rows (valid ids: 0..2)", f.set, f, 3, { 1, 2 })
  end)
end)

-- ---- state --------------------------------------------------------------------------------
describe("mtl.Embedding state", function()
  local function same_export(a, b)
    local ia, va = a:export()
    local ib, vb = b:export()
    assert.are.same(ia:values(), ib:values())
    assert.are.same(va:values(), vb:values())
  end

  it("round-trips fixed and hashed tables bit-exactly, without drawing random numbers", function()
    mtl.seed(12)
    for _, cfg in ipairs { { num_buckets = 9, dim = 3, init = "normal", scale = 0.3 },
                           { hash_bucket_size = 5, dim = 2, hash_seed = 77 } } do
      local t = mtl.Embedding(cfg)
      local sd = t:state_dict()
      local before = mtl.rand_state()
      local u = mtl.Embedding.from_state(sd)
      assert.are.same(before, mtl.rand_state())
      same_export(t, u)
      assert.are.same(t:lookup({ 1, 4, 2 }):values(), u:lookup({ 1, 4, 2 }):values())
      assert.are.equal(tostring(t), tostring(u))
      -- load_state_dict into an existing table
      local v = mtl.Embedding(cfg)
      v:load_state_dict(sd)
      same_export(t, v)
    end
  end)

  it("round-trips dynamic tables with pending counts, clocks and default rows", function()
    mtl.seed(13)
    local cfg = { kind = "dynamic", dim = 2, min_count = 2, ttl_steps = 3, evict_interval = 1,
                  default_row = { 0.25, 0.5 } }
    local t = mtl.Embedding(cfg)
    t:lookup { 5, 5, 9, 7, 7 }
    t:tick()
    t:lookup { 9, 11 } -- 9 admitted at step 1; 11 pending
    t:tick()
    local sd = t:state_dict()
    assert.are.same({ 5, 7, 9 }, sd.ids:values())
    assert.are.same({ 0, 0, 1 }, sd.last_seen:values())
    assert.are.same({ 11 }, sd.pending_ids:values())
    assert.are.same({ 1 }, sd.pending_counts:values())
    assert.are.equal(2, sd.step)
    local u = mtl.Embedding.from_state(sd)
    same_export(t, u)
    -- both continue identically: eviction times, admissions, default rows
    for _, tab in ipairs { t, u } do
      mtl.seed(14) -- new rows draw from the stream: give both the same draws
      tab:lookup { 11, 3 }
      tab:tick()
      tab:tick()
    end
    same_export(t, u)
    assert.is_true(u:has(11))
    assert.is_false(u:has(5))
    u:eval()
    assert.are.same({ 0.25, 0.5 }, u:lookup({ 1234 }):values())
  end)

  it("rejects a state of another kind or size", function()
    local t = mtl.Embedding { num_buckets = 4, dim = 2 }
    local h = mtl.Embedding { hash_bucket_size = 4, dim = 2 }
    assert_error("mtl.Embedding.load_state_dict: the state is of a hashed table, this table is fixed",
      t.load_state_dict, t, h:state_dict())
    local wide = mtl.Embedding { num_buckets = 4, dim = 3 }
    assert_error("mtl.Embedding.load_state_dict: the state has dim 3, the table 2", t.load_state_dict, t, wide:state_dict())
    local sd = mtl.Embedding({ num_buckets = 5, dim = 2 }):state_dict()
    assert_error("mtl.Embedding.load_state_dict: expected weight float32 [num_rows, 2], got float32 [5,2]",
      t.load_state_dict, t, sd)
    local d = mtl.Embedding { kind = "dynamic", dim = 1 }
    local dsd = d:state_dict()
    dsd.ids = mtl.tensor({ 1, 1 }, "int64")
    dsd.weight = mtl.zeros(2, 1)
    dsd.last_seen = nil
    assert_error("mtl.Embedding.load_state_dict: id 1 appears twice", d.load_state_dict, d, dsd)
    dsd.extra = 1
    assert_error("mtl.Embedding.from_state: unknown option 'extra'", mtl.Embedding.from_state, dsd)
  end)

  it("saves and loads through mtl.save / mtl.load bit-exactly", function()
    mtl.seed(15)
    local fixed = mtl.Embedding { num_buckets = 6, dim = 3, init = "normal" }
    local dyn = mtl.Embedding { kind = "dynamic", dim = 2, min_count = 2 }
    dyn:lookup { 4, 4, 8, "s", "s" }
    local path = os.tmpname()
    mtl.save(path, { fixed = fixed, dyn = dyn })
    local back = mtl.load(path)
    os.remove(path)
    assert.is_true(mtl.Embedding.is(back.fixed))
    same_export(fixed, back.fixed)
    same_export(dyn, back.dyn)
    back.dyn:lookup { 8 } -- its pending count survived: the second sighting admits it
    assert.is_true(back.dyn:has(8))
  end)

  it("shares the weight of fixed tables through weight()", function()
    local t = mtl.Embedding { num_buckets = 3, dim = 2 }
    local w = t:weight()
    w:fill(0.5)
    assert.are.same({ 0.5, 0.5 }, row(t, 2))
  end)
end)

-- ---- memory layout: a row next to its optimizer state (docs/embedding.md, "Performance") ----
describe("mtl.Embedding rows and optimizer state", function()
  it("keeps the weights bit-exact and shared through weight() when an optimizer takes the table", function()
    mtl.seed(7)
    local t = mtl.Embedding { num_buckets = 6, dim = 3, init = "normal" }
    local before = t:weight():values()
    assert.is_true(t:weight():is_contiguous())
    local opt = mtl.optim.adam { params = { t }, lr = 0.1 }
    local w = t:weight() -- [6, 3], a strided view: each row sits next to its m and v
    assert.are.same({ 6, 3 }, w:shape())
    assert.is_false(w:is_contiguous())
    assert.are.same(before, w:values())
    w:narrow(1, 2, 1):fill(0.25) -- writes go to the table
    assert.are.same({ 0.25, 0.25, 0.25 }, row(t, 1))
    t:lookup({ 1 }):backward(mtl.ones(1, 3))
    opt:step()
    assert.are_not.same({ 0.25, 0.25, 0.25 }, w:narrow(1, 2, 1):values()) -- and the view sees the update
    assert.are.same(row(t, 1), w:narrow(1, 2, 1):values())
  end)

  it("gives the state of fixed tables as views of the live state", function()
    local t = mtl.Embedding { num_buckets = 4, dim = 2, init = "zeros" }
    local opt = mtl.optim.adam { params = { t }, lr = 0.1 }
    local st = opt:state()[1]
    t:lookup({ 2 }):backward(mtl.tensor { { 1, -2 } })
    opt:step()
    assert_close(st.exp_avg:narrow(1, 3, 1), { 0.1, -0.2 }, 1e-7)
    assert_close(st.exp_avg_sq:narrow(1, 3, 1), { 0.001, 0.004 }, 1e-9)
    assert.are.same({ 0, 0, 0, 0 }, st.exp_avg:narrow(1, 1, 2):clone():values())
  end)

  it("changes only the touched rows and their state in a table too big for the caches", function()
    -- 400,000 x 16 rows with Adam state: 77 MB, so the lookup also prefetches the state blocks
    mtl.seed(11)
    local rows, dim = 400000, 16
    local t = mtl.Embedding { num_buckets = rows, dim = dim }
    local opt = mtl.optim.adam { params = { t }, lr = 0.01 }
    local ids = { 5, 399999, 123456, 5, 70000 }
    local function snapshot()
      local st = opt:state()[1]
      return { t:weight():clone(), st.exp_avg:clone(), st.exp_avg_sq:clone() }
    end
    for step = 1, 2 do
      local before = snapshot()
      opt:zero_grad()
      t:lookup(ids):backward(mtl.ones(#ids, dim) * step)
      opt:step()
      local after = snapshot()
      local touched = { [5] = true, [399999] = true, [123456] = true, [70000] = true }
      for k = 1, 3 do
        local d = after[k] - before[k]
        local changed = mtl.sum(d * d, 2):values() -- per row
        for r = 1, rows do
          if touched[r - 1] then
            assert.is_true(changed[r] > 0, "row " .. (r - 1) .. " was not updated")
          elseif changed[r] ~= 0 then
            error(("untouched row %d changed (tensor %d)"):format(r - 1, k))
          end
        end
      end
    end
  end)
end)

describe("mtl.Embedding with several threads", function()
  -- Lookups, bags and the lazy update split their ids / bags / rows between
  -- threads: from 512 rows per thread for tables of 64 MiB and more (rows and
  -- optimizer state), from 16,384 for smaller ones. The results must be the
  -- one-thread results, bit for bit, on both paths.
  local function run(threads)
    mtl.set_num_threads(threads)
    mtl.seed(21)
    local small = mtl.Embedding { num_buckets = 100000, dim = 8 }           -- 9.6 MB with Adam
    local big = mtl.Embedding { num_buckets = 400000, dim = 16 }            -- 77 MB with Adam
    local bags = mtl.Embedding { hash_bucket_size = 400000, dim = 16 }      -- 77 MB with Adam
    local opt = mtl.optim.adam { params = { small, big, bags }, lr = 0.01 }
    math.randomseed(5)
    local function draw(n, hi)
      local ids = {}
      for i = 1, n do ids[i] = math.random(0, hi) end
      ids[2] = ids[1] -- a repeated id
      return mtl.tensor(ids, "int64")
    end
    local outs = {}
    for _ = 1, 3 do
      local s_ids, b_ids = draw(60000, 99999), draw(6000, 399999)
      local bag_ids, offsets, weights = {}, {}, {}
      for b = 1, 1500 do
        offsets[b] = #bag_ids + 1 -- 1-based positions
        for _ = 1, math.random(0, 4) do
          bag_ids[#bag_ids + 1] = math.random(0, 10 ^ 9)
          weights[#weights + 1] = math.random()
        end
      end
      opt:zero_grad()
      local ys, yb = small:lookup(s_ids), big:lookup(b_ids)
      local p = bags:lookup_bag(mtl.tensor(bag_ids, "int64"), mtl.tensor(offsets, "int64"),
        { combiner = "sqrtn", weights = mtl.tensor(weights) })
      for _, y in ipairs { ys, yb, p } do outs[#outs + 1] = y:clone() end
      local loss = mtl.sum(ys * mtl.randn(60000, 8)):add(mtl.sum(yb * mtl.randn(6000, 16)))
      loss:add(mtl.sum(p * mtl.randn(1500, 16))):backward()
      opt:step()
    end
    for i, t in ipairs { small, big, bags } do
      local st = opt:state()[i]
      outs[#outs + 1] = t:weight():clone()
      outs[#outs + 1] = st.exp_avg:clone()
      outs[#outs + 1] = st.exp_avg_sq:clone()
    end
    mtl.set_num_threads(1)
    return outs
  end

  it("gives the one-thread lookups, pools and updates, for small and big tables", function()
    local n = mtl.get_num_threads()
    local one, two = run(1), run(2)
    mtl.set_num_threads(n)
    assert.are.equal(#one, #two)
    for i = 1, #one do
      assert.are.same(one[i]:shape(), two[i]:shape())
      local d = mtl.sum(mtl.abs(one[i] - two[i])):item()
      assert.are.equal(0, d, "tensor " .. i .. " differs between 1 and 2 threads")
    end
    -- the updates did move the weights away from their initial values
    for i = #one - 8, #one, 3 do assert.is_true(mtl.sum(mtl.abs(one[i + 1])):item() > 0) end
  end)
end)

describe("mtl.Embedding add_grad", function()
  it("adds entries by key that accumulate with a lookup's gradient, summed per row", function()
    local t = mtl.Embedding { num_buckets = 10, dim = 2 }
    t:lookup({ 3 }):backward(mtl.tensor { { 1, 1 } })
    t:add_grad(mtl.tensor({ 5, 3, 5 }, "int64"), mtl.tensor { { 1, 2 }, { 3, 4 }, { 5, 6 } })
    local g = grad_map(t)
    assert.are.same({ 4, 5 }, g[3])
    assert.are.same({ 6, 8 }, g[5])
    -- a hashed table's gradient keys are its buckets, and add_grad takes them as such
    local h = mtl.Embedding { hash_bucket_size = 7, dim = 2 }
    h:lookup({ 123456 }):backward(mtl.tensor { { 1, 1 } })
    local bucket = h:grad():get(1)
    h:add_grad(mtl.tensor({ bucket }, "int64"), mtl.tensor { { 2, 3 } })
    assert.are.same({ 3, 4 }, grad_map(h)[bucket])
    assert_error("mtl.Embedding.add_grad: bucket 7 out of range for a hashed table of 7 rows (valid: 0..6)",
      h.add_grad, h, mtl.tensor({ 7 }, "int64"), mtl.zeros(1, 2))
  end)

  it("moves a gradient from one table to an identical one bit for bit", function()
    mtl.seed(4)
    local a = mtl.Embedding { kind = "dynamic", dim = 3 }
    mtl.seed(4)
    local b = mtl.Embedding { kind = "dynamic", dim = 3 }
    local y = a:lookup { 11, 42, 11 }
    b:lookup { 11, 42, 11 }
    mtl.sum(y * mtl.randn(3, 3)):backward()
    local ids, values = a:grad()
    b:add_grad(ids, values)
    local ids2, values2 = b:grad()
    assert.are.same(ids:totable(), ids2:totable())
    assert.are.equal(values:checksum(), values2:checksum())
  end)

  it("adds nothing when an id is bad, and says which", function()
    local t = mtl.Embedding { num_buckets = 4, dim = 2 }
    assert_error("mtl.Embedding.add_grad: id 9 out of range for a fixed table of 4 rows (valid: 0..3)",
      t.add_grad, t, mtl.tensor({ 1, 9 }, "int64"), mtl.zeros(2, 2))
    assert.is_nil(t:grad())
    assert_error("mtl.Embedding.add_grad: expected float32 values [2,2] (one row per id), got float32 [2,3]",
      t.add_grad, t, mtl.tensor({ 1, 2 }, "int64"), mtl.zeros(2, 3))
    assert_error("mtl.Embedding.add_grad: expected int64 ids, got float32", t.add_grad, t, mtl.zeros(2), mtl.zeros(2, 2))
    local d = mtl.Embedding { kind = "dynamic", dim = 2 }
    assert_error("mtl.Embedding.add_grad: id 7 has no row in this dynamic table", d.add_grad, d,
      mtl.tensor({ 7 }, "int64"), mtl.zeros(1, 2))
  end)
end)
