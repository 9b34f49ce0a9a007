-- mtl.save / mtl.load (docs/checkpoint.md): bit-exact round trips, the object
-- hook, the byte layout (checked against files built here by hand, with a CRC-32
-- written in Lua), errors for damaged and foreign files, and atomic writes.
local mtl = require "mtl"
local ffi = require "ffi"
local bit = require "bit"
local check = require "helpers.check"
local shell = require "helpers.shell"

local assert_error = check.assert_error
local read_file, write_file = shell.read, shell.write
local raw = mtl.core.checkpoint_io -- the record writer, to craft odd files

-- ---- helpers ------------------------------------------------------------------
local dir = shell.tmpdir()
local function path(name) return dir .. "/" .. name end

-- CRC-32 (ISO-HDLC, as zlib), bitwise, independent of the C code.
local CRC = {}
for i = 0, 255 do
  local c = i
  for _ = 1, 8 do
    if bit.band(c, 1) == 1 then c = bit.bxor(bit.rshift(c, 1), 0xEDB88320) else c = bit.rshift(c, 1) end
  end
  CRC[i] = c
end
local function crc32(s)
  local c = 0xFFFFFFFF
  for i = 1, #s do c = bit.bxor(CRC[bit.band(bit.bxor(c, s:byte(i)), 0xFF)], bit.rshift(c, 8)) end
  return bit.bnot(c) % 2 ^ 32
end

local function le(n, width) -- little-endian bytes of a non-negative integer < 2^53
  local b = {}
  for i = 1, width do
    b[i] = string.char(n % 256)
    n = math.floor(n / 256)
  end
  return table.concat(b)
end
local MAGIC = "\137MTL\r\n\26\n"
local function header(version)
  local h = MAGIC .. le(version, 4) .. le(0, 4)
  return h .. le(crc32(h), 4)
end
local function record(tag, payload)
  local head = string.char(tag) .. le(#payload, 8)
  return head .. payload .. le(crc32(head .. payload), 4)
end
local function finish(records, n) -- header, records, end record counting n records
  return header(1) .. table.concat(records) .. record(0x7f, le(n, 8))
end
local function double_bytes(x) return ffi.string(ffi.new("double[1]", x), 8) end
local function double_bits(x) return ffi.cast("uint64_t*", ffi.new("double[1]", x))[0] end

-- bit-exact deep equality (numbers by their bits, so -0 ~= 0 and NaN == NaN)
local function same(a, b, where)
  where = where or "value"
  local ta, tb = type(a), type(b)
  assert(ta == tb, where .. ": type " .. ta .. " vs " .. tb)
  if ta == "number" then
    if a ~= a then
      assert(b ~= b, where .. ": NaN vs " .. tostring(b))
    else
      assert(double_bits(a) == double_bits(b), string.format("%s: %.17g vs %.17g", where, a, b))
    end
  elseif ta == "table" then
    for k, v in pairs(a) do same(v, b[k], where .. "[" .. tostring(k) .. "]") end
    for k in pairs(b) do assert(a[k] ~= nil, where .. ": extra key " .. tostring(k)) end
  else
    assert(a == b, where .. ": " .. tostring(a) .. " vs " .. tostring(b))
  end
end

local function round_trip(v, name)
  local p = path(name or "rt.bin")
  mtl.save(p, v)
  return mtl.load(p)
end

-- raw bytes of a contiguous tensor
local function tensor_bytes(t)
  assert(t:is_contiguous())
  local size = t:dtype() == "int64" and 8 or 4
  return ffi.string(t:data_ptr(), t:numel() * size)
end

describe("mtl.save / mtl.load", function()
  it("round-trips numbers bit-exactly: -0, inf, denormals, extremes", function()
    local values = {
      0, -0.0, 1, -1.5, math.pi, 1 / 3, math.huge, -math.huge, 2 ^ 53, -(2 ^ 53) - 2, 2 ^ 63, 1e308,
      4.9406564584124654e-324, -- smallest denormal
      2.2250738585072009e-308, -- largest denormal
      1.7976931348623157e308,
    }
    local back = round_trip(values)
    same(values, back)
    assert.are.equal(-math.huge, 1 / back[2]) -- -0 stays negative
    -- a lone number, true, false and nil as the whole value
    assert.are.equal(double_bits(1 / 3), double_bits(round_trip(1 / 3)))
    assert.are.equal(true, round_trip(true))
    assert.are.equal(false, round_trip(false))
    assert.is_nil(round_trip(nil))
    local nan = round_trip(0 / 0)
    assert.is_true(nan ~= nan)
  end)

  it("round-trips strings of any bytes, and LuaJIT 64-bit integers", function()
    local all = {}
    for i = 0, 255 do all[#all + 1] = string.char(i) end
    local v = { "", "a\0b\0", table.concat(all), string.rep("xyz\0", 250000) }
    same(v, round_trip(v))
    local ints = {
      ffi.new("int64_t", -9223372036854775807LL - 1), 9223372036854775807LL, 0LL, -1LL,
      18446744073709551615ULL, 0ULL, 12345678901234567ULL,
    }
    local back = round_trip(ints)
    for i = 1, #ints do
      assert.is_true(ffi.istype(ffi.typeof(ints[i]), back[i]))
      assert.is_true(back[i] == ints[i])
    end
    assert.are.equal("-9223372036854775808LL", tostring(back[1]))
    assert.are.equal("18446744073709551615ULL", tostring(back[5]))
  end)

  it("round-trips nested tables with array and hash parts and odd keys", function()
    local v = {
      1, 2, { 3, { 4, { 5 } } }, "four",
      [7] = "after a hole", [-1] = "negative", [0] = "zero", [1.5] = "fraction", [2 ^ 60] = "big",
      [true] = "yes", [false] = "no", ["with space"] = { x = { y = { z = {} } } },
      empty = {}, flags = { true, false, true },
    }
    same(v, round_trip(v))
    -- a table with a hole keeps both sides of it
    local holes = round_trip({ 1, nil, 3 })
    assert.are.same({ 1, nil, 3 }, { holes[1], holes[2], holes[3] })
    -- 150 levels deep is fine
    local deep = {}
    local cur = deep
    for i = 1, 150 do cur.next = { i = i }; cur = cur.next end
    local back = round_trip(deep)
    for _ = 1, 150 do back = back.next end
    assert.are.equal(150, back.i)
  end)

  it("writes the documented bytes, and the same value always gives the same bytes", function()
    local p = path("layout.bin")
    mtl.save(p, { 1.5, "ab", [true] = mtl.tensor({ 1, 2 }) })
    local meta = "\1\1" .. string.rep("\0", 6) .. le(2, 8) .. string.rep("\0", 56)
    local tensor_data = "\0\0\128\63" .. "\0\0\0\64" -- 1.0f, 2.0f little-endian
    local expected = finish({
      record(0x05, le(2, 8) .. le(1, 8)),
      record(0x03, "\0\0\0\0\0\0\248\63"), -- 1.5
      record(0x04, "ab"),
      record(0x02, "\1"),
      record(0x06, meta .. tensor_data),
    }, 5)
    assert.are.equal(expected, read_file(p))
    assert.are.equal(0xCBF43926, crc32("123456789")) -- the check value of CRC-32
    -- hash keys are sorted, so pairs() order does not leak into the file
    local a, b = {}, {}
    for i = 1, 200 do a["k" .. i] = i end
    for i = 200, 1, -1 do b["k" .. i] = i end
    a[3.5], b[3.5], a[false], b[false] = 1, 1, 2, 2
    mtl.save(path("a.bin"), a)
    mtl.save(path("b.bin"), b)
    assert.are.equal(read_file(path("a.bin")), read_file(path("b.bin")))
    -- a hand-built file loads
    write_file(path("hand.bin"), finish({ record(0x05, le(0, 8) .. le(1, 8)), record(0x04, "n"),
      record(0x03, double_bytes(-0.0)) }, 3))
    local v = mtl.load(path("hand.bin"))
    assert.are.equal(-math.huge, 1 / v.n)
  end)
end)

describe("tensors in checkpoints", function()
  it("keep float32 bits exactly: NaN payloads, -0, inf, denormals", function()
    local bits = { 0x7fc01234, 0xffa00001, 0x7f800001, 0x80000000, 0x7f800000, 0xff800000, 0x00000001,
      0x007fffff, 0x3f800000, 0xc0490fdb }
    local t = mtl.zeros(#bits)
    local p = ffi.cast("uint32_t*", t:data_ptr())
    for i, b in ipairs(bits) do p[i - 1] = b end
    local back = round_trip(t)
    assert.are.equal("float32", back:dtype())
    assert.are.same({ #bits }, back:shape())
    local q = ffi.cast("uint32_t*", back:data_ptr())
    for i, b in ipairs(bits) do assert.are.equal(b, tonumber(q[i - 1])) end
  end)

  it("keep int64 extremes, shapes, scalars and empty tensors", function()
    local t = mtl.zeros(2, 2, "int64")
    local p = ffi.cast("int64_t*", t:data_ptr())
    p[0], p[1], p[2], p[3] = -9223372036854775807LL - 1, 9223372036854775807LL, -1, 42
    local back = round_trip(t)
    assert.are.equal("int64", back:dtype())
    assert.are.same({ 2, 2 }, back:shape())
    assert.are.equal(tensor_bytes(t), tensor_bytes(back))
    -- 0-dim, empty, 8-dim
    local scalar = round_trip(mtl.tensor(2.5))
    assert.are.same({}, scalar:shape())
    assert.are.equal(2.5, scalar:item())
    for _, shape in ipairs({ { 0 }, { 3, 0 }, { 0, 5, 2 } }) do
      local e = round_trip(mtl.zeros(shape))
      assert.are.same(shape, e:shape())
      assert.are.equal(0, e:numel())
    end
    local eight = mtl.randn(2, 1, 2, 1, 2, 1, 2, 3)
    local e = round_trip(eight)
    assert.are.same(eight:shape(), e:shape())
    assert.are.equal(tensor_bytes(eight), tensor_bytes(e))
  end)

  it("store non-contiguous tensors as contiguous values", function()
    mtl.seed(3)
    local base = mtl.randn(4, 5)
    local views = {
      base:transpose(1, 2), base:narrow(2, 2, 3), mtl.tensor({ { 1, 2, 3 } }):expand(4, 3),
    }
    local back = round_trip(views)
    for i, v in ipairs(views) do
      assert.is_false(v:is_contiguous())
      assert.is_true(back[i]:is_contiguous())
      assert.are.same(v:shape(), back[i]:shape())
      assert.are.same(v:values(), back[i]:values())
    end
    assert.are.equal(base:get(3, 2), back[1]:get(2, 3))
  end)

  it("save and load an 8.4M-float table bit-exactly", function()
    pcall(ffi.cdef, "int memcmp(const void *a, const void *b, size_t n);") -- may be declared already
    local t = mtl.randn(525000, 16) -- 8.4M floats, 33.6 MB
    local p = path("big.bin")
    mtl.save(p, { emb = t })
    local back = mtl.load(p).emb
    assert.are.same({ 525000, 16 }, back:shape())
    assert.are.equal(0, ffi.C.memcmp(t:data_ptr(), back:data_ptr(), 525000 * 16 * 4))
    os.remove(p)
  end)
end)

describe("objects in checkpoints", function()
  -- a toy class: its instances carry a tensor and a count
  local Toy = { __typename = "spec.Toy" }
  Toy.__index = Toy
  local function new_toy(w, n) return setmetatable({ w = w, n = n }, Toy) end
  function Toy:state_dict() return { weight = self.w, count = self.n } end
  mtl.checkpoint.register("spec.Toy", function(state) return new_toy(state.weight, state.count) end)

  it("are stored as type name + state and rebuilt by the registered loader", function()
    local toy = new_toy(mtl.tensor({ 1, 2, 3 }), 7)
    local back = round_trip({ model = toy, list = { new_toy(mtl.zeros(0), 0), new_toy(mtl.ones(1), -1) } })
    assert.are.equal(Toy, getmetatable(back.model))
    assert.are.equal(7, back.model.n)
    assert.are.same({ 1, 2, 3 }, back.model.w:values())
    assert.are.equal(-1, back.list[2].n)
    assert.are.equal(0, back.list[1].w:numel())
    assert.are.equal(Toy, getmetatable(back.list[1]))
    -- an object whose state holds another object
    local Box = { __typename = "spec.Box" }
    Box.__index = Box
    function Box:state_dict() return { inner = self.inner } end
    mtl.checkpoint.register("spec.Box", function(s) return setmetatable({ inner = s.inner, loaded = true }, Box) end)
    local b = round_trip(setmetatable({ inner = toy }, Box))
    assert.is_true(b.loaded)
    assert.are.equal(7, b.inner.n)
    assert.are.equal(Box.__typename, getmetatable(b).__typename)
    assert.is_function(mtl.checkpoint.loader("spec.Box"))
    assert.is_nil(mtl.checkpoint.loader("spec.Nothing"))
  end)

  it("may be userdata with __typename in the metatable", function()
    local u = newproxy(true)
    local mt = getmetatable(u)
    mt.__typename = "spec.Proxy"
    mt.__index = { state_dict = function() return { secret = 99 } end }
    mtl.checkpoint.register("spec.Proxy", function(s) return "proxy " .. s.secret end)
    assert.are.equal("proxy 99", round_trip({ u = u }).u)
  end)

  it("give clear errors when they cannot be saved or loaded", function()
    local p = path("obj.bin")
    local Nameless = {}
    Nameless.__index = Nameless
    function Nameless.state_dict() return {} end
    assert_error("mtl.save: " .. p .. ": value.m: has a state_dict method but no __typename (set one in its metatable and register a loader with mtl.checkpoint.register)",
      mtl.save, p, { m = setmetatable({}, Nameless) })
    local Unreg = { __typename = "spec.Unregistered" }
    Unreg.__index = Unreg
    function Unreg.state_dict() return {} end
    assert_error("mtl.save: " .. p .. ": value[2]: is a 'spec.Unregistered' object, but no loader is registered for 'spec.Unregistered' (mtl.checkpoint.register)",
      mtl.save, p, { 1, setmetatable({}, Unreg) })
    local Broken = { __typename = "spec.Toy" }
    Broken.__index = Broken
    function Broken.state_dict() error("no state today", 0) end
    assert_error("mtl.save: " .. p .. ": value.b: state_dict() failed: no state today", mtl.save, p,
      { b = setmetatable({}, Broken) })
    local Bad = { __typename = "spec.Toy" }
    Bad.__index = Bad
    function Bad.state_dict() return { f = print } end
    assert_error("mtl.save: " .. p .. ": value.x:state_dict().f: cannot save a function", mtl.save, p,
      { x = setmetatable({}, Bad) })
    -- an object type the loading process does not know (crafted with the raw writer)
    local w = raw.writer(p)
    w:table(1, 0); w:object("spec.Nobody"); w:nil_(); w:commit()
    assert_error("mtl.load: " .. p .. ": the object at offset 49 has type 'spec.Nobody', which has no registered loader (mtl.checkpoint.register)",
      mtl.load, p)
    -- a loader that fails
    mtl.checkpoint.register("spec.Fails", function() error("cannot rebuild", 0) end)
    w = raw.writer(p)
    w:object("spec.Fails"); w:number(1); w:commit()
    assert_error("mtl.load: " .. p .. ": the loader for 'spec.Fails' failed on the object at offset 20: cannot rebuild",
      mtl.load, p)
    assert_error("mtl.checkpoint.register: expected a type name of 1 to 255 bytes for argument 1, got \"\"",
      mtl.checkpoint.register, "", print)
    assert_error("mtl.checkpoint.register: expected a loader function for argument 2, got nil",
      mtl.checkpoint.register, "spec.X")
  end)
end)

describe("mtl.save errors", function()
  it("name the file and where in the value the problem is", function()
    local p = path("err.bin")
    assert_error("mtl.save: " .. p .. ": value.f: cannot save a function", mtl.save, p, { f = print })
    assert_error("mtl.save: " .. p .. ": value[\"a b\"][2]: cannot save a thread", mtl.save, p,
      { ["a b"] = { 1, coroutine.create(print) } })
    assert_error("mtl.save: " .. p .. ": value.k: has a key of type table (keys must be strings, numbers or booleans)",
      mtl.save, p, { k = { [{}] = 1 } })
    local cyc = { a = { b = {} } }
    cyc.a.b.back = cyc.a
    assert_error("mtl.save: " .. p .. ": value.a.b.back: cycle: the value refers back to value.a, which contains it",
      mtl.save, p, cyc)
    local self_ref = {}
    self_ref[1] = self_ref
    assert_error("mtl.save: " .. p .. ": value[1]: cycle: the value refers back to value, which contains it",
      mtl.save, p, self_ref)
    -- a field named state_dict that is not a function does not make an object
    same({ state_dict = "v1" }, round_trip({ state_dict = "v1" }))
    assert_error("mtl.save: " .. p .. ": value.m: cannot save a table with a metatable (give it a state_dict method and a __typename, or save a plain table)",
      mtl.save, p, { m = setmetatable({}, {}) })
    assert_error("mtl.save: " .. p .. ": value: cannot save a userdata that is not a tensor and has no state_dict method",
      mtl.save, p, newproxy(false))
    assert_error("mtl.save: " .. p .. ": value[1]: cannot save a cdata of type ctype<int *> (only int64_t and uint64_t)",
      mtl.save, p, { ffi.new("int *") })
    local deep = {}
    local cur = deep
    for _ = 1, 250 do cur.x = {}; cur = cur.x end
    assert_error("nesting deeper than 200 levels", mtl.save, p, deep)
    assert_error("mtl.save: expected a file name (string) for argument 1, got nil", mtl.save, nil, {})
    assert_error("mtl.save: expected a file name, got an empty string", mtl.save, "", {})
    assert_error("mtl.load: expected a file name (string) for argument 1, got number", mtl.load, 5)
    -- none of these left a file behind
    assert.is_nil(io.open(p, "rb"))
  end)
end)

describe("mtl.load of damaged or foreign files", function()
  local good = path("good.bin")
  local bytes

  setup(function()
    mtl.seed(9)
    mtl.save(good, { w = mtl.randn(3, 2), ids = mtl.tensor({ 5, 6 }, "int64"), name = "m\0x", n = 3,
      flags = { true, false }, [2] = -0.0 })
    bytes = read_file(good)
  end)

  local function fails_with_offset(p)
    local ok, err = pcall(mtl.load, p)
    assert(not ok, "a damaged file was accepted")
    err = tostring(err)
    assert(err:find("mtl.load: " .. p .. ": ", 1, true), err)
    return err
  end

  it("reports every truncation with the file and offset", function()
    local p = path("cut.bin")
    -- (a new file per case: rewriting one file in place makes ext4 flush it each time)
    for cut = 0, #bytes - 1 do
      local q = path("cut" .. cut .. ".bin")
      write_file(q, bytes:sub(1, cut))
      local err = fails_with_offset(q)
      if cut > 0 then assert(err:find("offset", 1, true), err) end
      os.remove(q)
    end
    write_file(p, "")
    assert_error("mtl.load: " .. p .. ": not an mtl checkpoint (the file is empty)", mtl.load, p)
    write_file(p, bytes:sub(1, 12))
    assert_error("mtl.load: " .. p .. ": truncated header at offset 0 (needs 20 bytes, the file has 12)", mtl.load, p)
    write_file(p, bytes:sub(1, 25))
    assert_error("mtl.load: " .. p .. ": truncated record header at offset 20 (needs 9 bytes, 5 left)", mtl.load, p)
    -- cut just before the end record
    write_file(p, bytes:sub(1, #bytes - 21))
    assert_error("mtl.load: " .. p .. ": truncated file: it ends at offset " .. (#bytes - 21) ..
      " where another record should start", mtl.load, p)
    -- cut inside the first tensor's data: the tensor record's length is checked first
    local ids = bytes:find("\6" .. le(72 + 16, 8), 21, true) - 1 -- offset of the ids tensor record
    write_file(p, bytes:sub(1, ids + 9 + 72 + 4))
    assert_error(string.format("mtl.load: %s: truncated or corrupted record at offset %d (tensor payload needs 88 bytes + 4 checksum bytes, 76 left)",
      p, ids), mtl.load, p)
  end)

  it("reports every flipped byte with the file and offset", function()
    local p = path("flip.bin")
    for i = 1, #bytes do
      for _, mask in ipairs({ 0x01, 0x80, 0xff }) do
        local b = string.char(bit.bxor(bytes:byte(i), mask))
        local q = path("flip" .. i .. "_" .. mask .. ".bin")
        write_file(q, bytes:sub(1, i - 1) .. b .. bytes:sub(i + 1))
        local err = fails_with_offset(q)
        assert(err:find("offset", 1, true), err)
        os.remove(q)
      end
    end
    -- a flip in a number's payload is a checksum mismatch of that record
    local at = bytes:find(double_bytes(3), 1, true) -- the value of n
    write_file(p, bytes:sub(1, at - 1) .. "\1" .. bytes:sub(at + 1))
    local err = assert_error("mtl.load: " .. p .. ": checksum mismatch in number record at offset " .. (at - 10), mtl.load, p)
    assert(err:find("the file is corrupted", 1, true), err)
  end)

  it("rejects foreign files, other versions, huge lengths and inconsistent records", function()
    local p = path("foreign.bin")
    write_file(p, "local x = 1 -- not a checkpoint at all, and not run")
    assert_error("mtl.load: " .. p .. ": not an mtl checkpoint (wrong magic bytes at offset 0)", mtl.load, p)
    write_file(p, header(2) .. bytes:sub(21))
    assert_error("mtl.load: " .. p .. ": unsupported format version 2 at offset 8 (this build reads version 1)",
      mtl.load, p)
    write_file(p, bytes:sub(1, 12) .. "\1\0\0\0" .. bytes:sub(17))
    assert_error("mtl.load: " .. p .. ": checksum mismatch in the header at offset 0", mtl.load, p)
    -- a length of 2^60 is refused before any allocation
    write_file(p, bytes:sub(1, 21) .. "\0\0\0\0\0\0\0\16" .. bytes:sub(30))
    assert_error("mtl.load: " .. p .. ": truncated or corrupted record at offset 20 (table payload needs 1152921504606846976 bytes + 4 checksum bytes, "
      .. (#bytes - 29) .. " left)", mtl.load, p)
    -- records with valid checksums but impossible contents
    write_file(p, finish({ record(0x05, le(2 ^ 50, 8) .. le(0, 8)) }, 1))
    assert_error("mtl.load: " .. p .. ": corrupted table record at offset 20 (1125899906842624 array and 0 hash entries cannot fit in the 21 bytes left)",
      mtl.load, p)
    local meta = "\1\1" .. string.rep("\0", 6) .. le(1000, 8) .. string.rep("\0", 56)
    write_file(p, finish({ record(0x06, meta .. "12345678") }, 1))
    assert_error("mtl.load: " .. p .. ": malformed tensor record at offset 20: shape [1000] of float32 needs 4000 data bytes, the record has 8",
      mtl.load, p)
    meta = "\3\1" .. string.rep("\0", 6) .. le(2, 8) .. string.rep("\0", 56)
    write_file(p, finish({ record(0x06, meta .. "12345678") }, 1))
    assert_error("mtl.load: " .. p .. ": malformed tensor record at offset 20: unknown dtype code 3", mtl.load, p)
    meta = "\1\1" .. string.rep("\0", 6) .. le(3, 8) .. string.rep("\0", 56)
    write_file(p, finish({ record(0x06, meta .. "12345678") }, 1))
    assert_error("mtl.load: " .. p .. ": malformed tensor record at offset 20: shape [3] of float32 needs 12 data bytes, the record has 8",
      mtl.load, p)
    meta = "\1\2" .. string.rep("\0", 6) .. le(2 ^ 40, 8) .. le(2 ^ 40, 8) .. string.rep("\0", 48)
    write_file(p, finish({ record(0x06, meta .. "12345678") }, 1)) -- numel would overflow
    assert_error("mtl.load: " .. p .. ": malformed tensor record at offset 20: shape [1099511627776,1099511627776] needs more than the 8 data bytes",
      mtl.load, p)
    meta = "\2\1" .. string.rep("\0", 6) .. string.rep("\255", 8) .. string.rep("\0", 56)
    write_file(p, finish({ record(0x06, meta .. "12345678") }, 1))
    assert_error("mtl.load: " .. p .. ": malformed tensor record at offset 20: dimension 1 is 18446744073709551615",
      mtl.load, p)
    meta = "\1\1" .. string.rep("\0", 6) .. le(2, 8) .. le(5, 8) .. string.rep("\0", 48)
    write_file(p, finish({ record(0x06, meta .. "12345678") }, 1))
    assert_error("mtl.load: " .. p .. ": malformed tensor record at offset 20: nonzero unused dimension 2", mtl.load, p)
    write_file(p, finish({ record(0x06, "short") }, 1))
    assert_error("mtl.load: " .. p .. ": malformed tensor record at offset 20 (payload is 5 bytes, expected at least 72)",
      mtl.load, p)
    write_file(p, finish({ record(0x02, "\2") }, 1))
    assert_error("mtl.load: " .. p .. ": malformed boolean record at offset 20 (value byte is 2, expected 0 or 1)", mtl.load, p)
    write_file(p, finish({ record(0x03, "1234") }, 1))
    assert_error("mtl.load: " .. p .. ": malformed number record at offset 20 (payload is 4 bytes, expected 8)", mtl.load, p)
    write_file(p, finish({ record(0x42, "") }, 1))
    assert_error("mtl.load: " .. p .. ": unknown record type 0x42 at offset 20 (written by a newer mtl?)", mtl.load, p)
    write_file(p, finish({ record(0x05, le(0, 8) .. le(1, 8)), record(0x05, le(0, 8) .. le(0, 8)), record(0x01, "") }, 3))
    assert_error("mtl.load: " .. p .. ": corrupted table at offset 20: the key at offset 49 is a table (keys must be strings, numbers or booleans)",
      mtl.load, p)
    write_file(p, finish({ record(0x03, double_bytes(1)), record(0x03, double_bytes(2)) }, 2))
    assert_error("mtl.load: " .. p .. ": expected the end record at offset 41, found a number record", mtl.load, p)
    write_file(p, finish({ record(0x05, le(1, 8) .. le(0, 8)) }, 1))
    assert_error("mtl.load: " .. p .. ": unexpected end record at offset 49 (expected a value)", mtl.load, p)
    write_file(p, finish({ record(0x01, "") }, 7))
    assert_error("mtl.load: " .. p .. ": corrupted end record at offset 33 (it counts 7 records, the file has 1)", mtl.load, p)
    write_file(p, bytes .. "x")
    assert_error("mtl.load: " .. p .. ": 1 unexpected bytes after the end record at offset " .. #bytes, mtl.load, p)
    local nested = {}
    for _ = 1, 300 do nested[#nested + 1] = record(0x05, le(1, 8) .. le(0, 8)) end
    nested[#nested + 1] = record(0x01, "")
    write_file(p, finish(nested, 301))
    assert_error("mtl.load: " .. p .. ": nesting deeper than 200 levels at offset " .. (20 + 200 * 29), mtl.load, p)
    assert_error("mtl.load: " .. dir .. ": not a regular file", mtl.load, dir)
    assert_error("mtl.load: " .. path("missing.bin") .. ": cannot open: No such file or directory", mtl.load,
      path("missing.bin"))
  end)
end)

describe("mtl.checkpoint.list", function()
  local sub = path("listing")
  setup(function()
    assert(os.execute("mkdir '" .. sub .. "'") == 0)
    for _, name in ipairs({ "step-20.ckpt", "step-5.ckpt", "step-100.ckpt", "best.ckpt", "step-7.ckpt.tmp.12",
                            "step-x.ckpt", "notes.txt" }) do
      write_file(sub .. "/" .. name, "")
    end
  end)

  it("lists step-N.ckpt files by step, oldest first, and nothing else (a directory without manifests)", function()
    assert.are.same({ { step = 5, path = sub .. "/step-5.ckpt" }, { step = 20, path = sub .. "/step-20.ckpt" },
                      { step = 100, path = sub .. "/step-100.ckpt" } }, mtl.checkpoint.list(sub))
  end)

  it("finds none in a directory that does not exist or is a file", function()
    assert.are.same({}, mtl.checkpoint.list(sub .. "/none"))
    assert.are.same({}, mtl.checkpoint.list(sub .. "/notes.txt"))
  end)

  it("says what it expected", function()
    assert_error("mtl.checkpoint.list: expected a directory name (string) for argument 1, got nil", mtl.checkpoint.list)
  end)

  it("lists only the checkpoints with a manifest once a directory has manifests; remove takes the manifest first", function()
    local dir = path("manifests")
    assert(os.execute("mkdir '" .. dir .. "'") == 0)
    for _, step in ipairs({ 4, 8, 12 }) do mtl.save(string.format("%s/step-%d.ckpt", dir, step), { step = step }) end
    write_file(dir .. "/step-8.rank-1.ckpt", "a shard")
    assert.are.equal(dir .. "/step-4.manifest",
      mtl.checkpoint.write_manifest(dir, 4, { ranks = 2, files = { "step-4.ckpt" }, tables = { user = "replicated" } }))
    mtl.checkpoint.write_manifest(dir, 8, { ranks = 2, files = { "step-8.ckpt", "step-8.rank-1.ckpt" } })
    -- step 12 has no manifest: it was being written when the run stopped
    assert.are.same({ { step = 4, path = dir .. "/step-4.ckpt", manifest = dir .. "/step-4.manifest" },
                      { step = 8, path = dir .. "/step-8.ckpt", manifest = dir .. "/step-8.manifest" } },
      mtl.checkpoint.list(dir))
    assert.are.same({ format = "mtl-checkpoint-manifest-1", step = 4, ranks = 2, files = { "step-4.ckpt" },
                      tables = { user = "replicated" } }, mtl.checkpoint.read_manifest(dir, 4))
    assert.is_nil(mtl.checkpoint.read_manifest(dir, 12))
    assert_error("mtl.checkpoint.write_manifest: " .. dir .. "/step-16.ckpt does not exist (a checkpoint's files are "
      .. "written before its manifest)", mtl.checkpoint.write_manifest, dir, 16, { files = { "step-16.ckpt" } })
    mtl.checkpoint.remove(mtl.checkpoint.list(dir)[2])
    assert.is_nil(io.open(dir .. "/step-8.manifest"))
    assert.is_nil(io.open(dir .. "/step-8.rank-1.ckpt"))
    assert.is_nil(io.open(dir .. "/step-8.ckpt"))
    assert.are.equal(1, #mtl.checkpoint.list(dir))
  end)
end)

describe("atomic writes", function()
  local function build_dir() return os.getenv("MTL_BUILD") or "build" end

  it("leave the previous file intact and no temporary file when a save fails", function()
    local sub = path("atomic")
    os.execute("rm -rf '" .. sub .. "' && mkdir '" .. sub .. "'")
    local p = sub .. "/ckpt.bin"
    mtl.save(p, { version = 1 })
    local before = read_file(p)
    local function entries()
      local h, out = io.popen("ls -A '" .. sub .. "'"), {}
      for line in h:lines() do out[#out + 1] = line end
      h:close()
      return table.concat(out, " ")
    end
    -- fails in the middle of the value, after records were written
    assert_error("cannot save a function", mtl.save, p, { version = 2, big = mtl.zeros(1000), f = print })
    assert.are.equal(before, read_file(p))
    assert.are.equal("ckpt.bin", entries())
    -- fails on rename: the target is a non-empty directory
    os.execute("mkdir '" .. sub .. "/d' && touch '" .. sub .. "/d/x'")
    assert_error("mtl.save: " .. sub .. "/d: cannot rename " .. sub .. "/d.tmp.", mtl.save, sub .. "/d", { 1 })
    assert.are.equal("ckpt.bin d", entries())
    -- a missing directory
    assert_error("mtl.save: " .. sub .. "/no/x.bin: cannot create temporary file " .. sub .. "/no/x.bin.tmp.",
      mtl.save, sub .. "/no/x.bin", 1)
    -- the disk "fills up" (a file size limit, so writes fail with EFBIG) while
    -- writing a 4 MB tensor over the old file in a child process
    local script = sub .. "/child.lua"
    write_file(script, string.format([[
      local mtl = require "mtl"
      local ok, err = pcall(mtl.save, %q, { version = 3, w = mtl.zeros(1000000) })
      io.write(tostring(err))
    ]], p))
    local cmd = string.format("ulimit -f 64; trap '' XFSZ; %s/mtl '%s'", build_dir(), script)
    local h = io.popen("sh -c \"" .. cmd .. "\" 2>&1")
    local out = h:read("*a")
    h:close()
    os.remove(script)
    assert(out:find("mtl.save: " .. p .. ": write failed: File too large", 1, true), out)
    assert.are.equal(before, read_file(p))
    assert.are.equal("ckpt.bin d", entries())
    -- a later save replaces the file, and loads
    mtl.save(p, { version = 4 })
    assert.are.equal(4, mtl.load(p).version)
    assert.are.equal("ckpt.bin d", entries())
    os.execute("rm -rf '" .. sub .. "'")
  end)

  teardown(function()
    os.execute("rm -rf '" .. dir .. "'")
  end)
end)
