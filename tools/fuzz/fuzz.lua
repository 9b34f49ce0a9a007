-- Mutation fuzzing of mtl's input parsers: CSV / TSV and gzip readers, the
-- field:feature reader, reader options, EasyRec pipeline.config, --set values,
-- Lua config files, checkpoints and exported model directories (one of
-- manifest.json, config.lua and model.ckpt mutated, then loaded by
-- export.load and the serving library's Lua side, and scored). Run it through tools/fuzz.sh, which builds
-- the sanitizer build and sets the environment up:
--
--   tools/fuzz.sh [seconds_per_target=60] [batch=60] [targets] [seed]
--   targets: a comma-separated subset of csv,gz,ff,opts,pbtxt,override,luacfg,ckpt,modeldir
--
-- Each batch of mutants (byte flips and inserts, truncation, swapped and
-- duplicated lines, extreme numbers, NUL bytes, invalid UTF-8, unbalanced
-- brackets, deep nesting, corrupted gzip streams, checkpoint records with their
-- CRCs recomputed) is fed to a CHILD process (the sanitizer build's mtl running
-- child.lua) under `timeout 20`. A Lua error with a message is the expected
-- outcome; a non-zero exit (ASan/UBSan report, signal, hang, an error without
-- a message) marks the batch, whose files are then re-run one by one and the
-- culprits kept in $MTL_FUZZ_DIR/crashes/ with the child's log. Exits 1 when
-- anything failed.
local bit = require "bit"
local band, bxor, rshift = bit.band, bit.bxor, bit.rshift

local ROOT = assert(os.getenv("MTL_FUZZ_DIR"), "run through tools/fuzz.sh (MTL_FUZZ_DIR unset)")
local REPO = assert(os.getenv("MTL_FUZZ_REPO"), "MTL_FUZZ_REPO unset")
local MTL = assert(os.getenv("MTL_FUZZ_MTL"), "MTL_FUZZ_MTL unset")
local CHILD = REPO .. "/tools/fuzz/child.lua"
package.path = REPO .. "/tools/fuzz/?.lua;" .. package.path
local targets_mod = require "targets"
local seconds = arg[1] ~= "--corpus" and (tonumber(arg[1]) or 60) or nil
local BATCH = tonumber(arg[2]) or 60
local only = arg[3]
local seed = tonumber(arg[4]) or os.time()
math.randomseed(seed)
print("seed", seed)

local function sh(cmd) return os.execute(cmd) end
sh("mkdir -p " .. ROOT .. "/work " .. ROOT .. "/crashes " .. ROOT .. "/seeds")

local readfile, writefile = targets_mod.readfile, targets_mod.writefile
local function rnd(n) return math.random(n) end

-- ---- generic mutations ----------------------------------------------------
local INTERESTING = {
  "0", "-0", "1e39", "-1e39", "1e-50", "nan", "NaN", "-nan", "inf", "-inf", "infinity", "Infinity",
  "9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
  "18446744073709551616", "99999999999999999999999999999999", "1e308", "1e309", "-1e309", "4.9e-324",
  "2.4703282292062327e-324", "0x1p3", "0x", "0x1p99999", "1e99999", "1e-99999", "0.", ".", "-", "+", "e", "1e",
  "1e+", "..", "\0", "\0\0\0", "\xff", "\xc3\x28", "\xe2\x82", "\xf0\x9f\x98", "\xed\xa0\x80", "\xef\xbb\xbf",
  "\"", "\"\"", "'", "\\", "{", "}", "[", "]", "<", ">", ":", ",", ";", "|", "\t", "\r", "\n", "\r\n", "#",
  "\\x", "\\u", "\\U00110000", "\\777", "\\", "-9", "00000000000000000000000000000001", "1" .. ("0"):rep(400),
  "0." .. ("0"):rep(400) .. "1", ("9"):rep(30) .. "." .. ("9"):rep(30), "1:", ":1", "1:2:3", "a:b", "1:nan",
  "1:1e39", "|", "||", "1||2", "1|", "|1", ",,", "\"1,2\"", "\"a\"\"b\"", "\"unclosed",
}
local function interesting() return INTERESTING[rnd(#INTERESTING)] end
local function rbyte() return string.char(rnd(256) - 1) end

local function lines_of(s)
  local t = {}
  for l in (s .. (s:sub(-1) == "\n" and "" or "\n")):gmatch("([^\n]*)\n") do t[#t + 1] = l end
  return t
end

local mutators = {}
mutators[#mutators + 1] = function(s) -- byte flip
  if #s == 0 then return rbyte() end
  local i = rnd(#s)
  return s:sub(1, i - 1) .. string.char(bxor(s:byte(i), bit.lshift(1, rnd(8) - 1))) .. s:sub(i + 1)
end
mutators[#mutators + 1] = function(s) -- random byte set
  if #s == 0 then return rbyte() end
  local i = rnd(#s)
  return s:sub(1, i - 1) .. rbyte() .. s:sub(i + 1)
end
mutators[#mutators + 1] = function(s) -- insert random bytes
  local i = rnd(#s + 1)
  local ins = {}
  for _ = 1, rnd(4) do ins[#ins + 1] = rbyte() end
  return s:sub(1, i - 1) .. table.concat(ins) .. s:sub(i)
end
mutators[#mutators + 1] = function(s) -- delete a range
  if #s < 2 then return "" end
  local i = rnd(#s); local n = rnd(math.min(16, #s - i + 1))
  return s:sub(1, i - 1) .. s:sub(i + n)
end
mutators[#mutators + 1] = function(s) -- truncate
  return s:sub(1, rnd(#s + 1) - 1)
end
mutators[#mutators + 1] = function(s) -- insert an interesting token
  local i = rnd(#s + 1)
  return s:sub(1, i - 1) .. interesting() .. s:sub(i)
end
mutators[#mutators + 1] = function(s) -- replace a "word" with an interesting token
  local starts = {}
  for p in s:gmatch("()[%w%.%-%+_]+") do starts[#starts + 1] = p; if #starts > 4000 then break end end
  if #starts == 0 then return s end
  local p = starts[rnd(#starts)]
  local e = s:match("^[%w%.%-%+_]+()", p)
  return s:sub(1, p - 1) .. interesting() .. s:sub(e)
end
mutators[#mutators + 1] = function(s) -- duplicate / swap / delete lines
  local t = lines_of(s)
  if #t == 0 then return s end
  local op = rnd(3)
  local i, j = rnd(#t), rnd(#t)
  if op == 1 then table.insert(t, i, t[j])
  elseif op == 2 then t[i], t[j] = t[j], t[i]
  else table.remove(t, i) end
  return table.concat(t, "\n") .. (rnd(2) == 1 and "\n" or "")
end
mutators[#mutators + 1] = function(s) -- a very long field / line
  local i = rnd(#s + 1)
  local piece = ({ "9", "a", "1|", "1:1,", ",", "\"", "{", "x", "\0", "0" })[rnd(10)]
  return s:sub(1, i - 1) .. piece:rep(rnd(3) == 1 and 300000 or rnd(5000)) .. s:sub(i)
end
mutators[#mutators + 1] = function(s) -- repeat a chunk many times
  if #s == 0 then return s end
  local i = rnd(#s); local n = rnd(math.min(40, #s - i + 1))
  return s:sub(1, i + n - 1) .. s:sub(i, i + n - 1):rep(rnd(50)) .. s:sub(i + n)
end
mutators[#mutators + 1] = function(s) -- line-end games
  local r = rnd(4)
  if r == 1 then return (s:gsub("\n", "\r\n")) end
  if r == 2 then return (s:gsub("\n", "\r")) end
  if r == 3 then return "\xef\xbb\xbf" .. s end
  return s:gsub("\n", "\n\n", rnd(3))
end

local function mutate(s, extra)
  local n = ({ 1, 1, 1, 2, 2, 3, 5, 8 })[rnd(8)]
  for _ = 1, n do
    if extra and rnd(3) == 1 then s = extra[rnd(#extra)](s) else s = mutators[rnd(#mutators)](s) end
    if #s > 2000000 then s = s:sub(1, 2000000) end
  end
  return s
end

-- config-specific mutations
local cfg_extra = {
  function(s) -- unbalanced braces / quotes
    local i = rnd(#s + 1)
    return s:sub(1, i - 1) .. ({ "{", "}", "<", ">", "[", "]", "\"", "'", ":", "{{", "}}", "[[", "]]" })[rnd(13)] .. s:sub(i)
  end,
  function(s) -- delete one brace/quote
    local pos = {}
    for p in s:gmatch("()[{}<>%[%]\"']") do pos[#pos + 1] = p end
    if #pos == 0 then return s end
    local p = pos[rnd(#pos)]
    return s:sub(1, p - 1) .. s:sub(p + 1)
  end,
  function(s) -- deep nesting
    local i = rnd(#s + 1)
    local n = ({ 100, 1000, 10000, 100000 })[rnd(4)]
    local open = ({ "a {", "a <", "a: [", "{", "a: {" })[rnd(5)]
    local close = rnd(2) == 1 and ({ "}", ">", "]" })[rnd(3)]:rep(n) or ""
    return s:sub(1, i - 1) .. open:rep(n) .. close .. s:sub(i)
  end,
  function(s) -- a number value replaced by an extreme one
    local pos = {}
    for p in s:gmatch(":%s*()[%d%-]") do pos[#pos + 1] = p end
    if #pos == 0 then return s end
    local p = pos[rnd(#pos)]
    local e = s:match("^[%w%.%-%+]+()", p) or p
    local v = ({ "1e400", "-1e400", "nan", "-nan", "inf", "-inf", "0", "-1", "9223372036854775808", "1e18",
      "4294967296", "2147483648", "0.5", "1e-400", "0x7fffffffffffffff", "-0", "99999999999" })[rnd(17)]
    return s:sub(1, p - 1) .. v .. s:sub(e)
  end,
  function(s) -- a string value replaced
    local pos = {}
    for p in s:gmatch('()"') do pos[#pos + 1] = p end
    if #pos < 2 then return s end
    local k = rnd(#pos - 1)
    local a, b = pos[k], pos[k + 1]
    local v = ({ "\"\"", "\"\\x\"", "\"\\U0010ffff\"", "\"\\777\"", "\"a\\\nb\"", "\"" .. ("x"):rep(100000) .. "\"",
      "\"*\"", "\"[\"", "\"/nonexistent/*\"", "\",\"", "\"\\0\"", "\"\xff\xfe\"", "\"ab\" 'cd'" })[rnd(13)]
    return s:sub(1, a - 1) .. v .. s:sub(b + 1)
  end,
}

-- ---- checkpoints: a record-level mutator that keeps (or breaks) checksums --
local CRC = {}
for i = 0, 255 do
  local c = i
  for _ = 1, 8 do
    if band(c, 1) ~= 0 then c = bxor(0xEDB88320, rshift(c, 1)) else c = rshift(c, 1) end
  end
  CRC[i] = c
end
local function crc32(s)
  local c = 0xFFFFFFFF
  for i = 1, #s do c = bxor(CRC[band(bxor(c, s:byte(i)), 0xFF)], rshift(c, 8)) end
  return bxor(c, 0xFFFFFFFF)
end
local function u32(n)
  n = n % 4294967296
  return string.char(n % 256, math.floor(n / 256) % 256, math.floor(n / 65536) % 256, math.floor(n / 16777216) % 256)
end
local function u64(n) -- n: a Lua number (< 2^53) or an 8-byte string
  if type(n) == "string" then return n end
  return u32(n % 4294967296) .. u32(math.floor(n / 4294967296))
end
local function get_u64(s, i)
  local v = 0
  for k = 7, 0, -1 do v = v * 256 + s:byte(i + k) end
  return v
end
local function ckpt_parse(s)
  if #s < 20 then return nil end
  local recs, pos = {}, 21
  while pos + 8 <= #s do
    local tag = s:byte(pos)
    local len = get_u64(s, pos + 1)
    if pos + 9 + len + 4 - 1 > #s then return nil end
    recs[#recs + 1] = { tag = tag, payload = s:sub(pos + 9, pos + 9 + len - 1) }
    pos = pos + 9 + len + 4
  end
  return s:sub(1, 20), recs
end
local function ckpt_build(header, recs, raw_len)
  local out = { header }
  for _, r in ipairs(recs) do
    local h = string.char(r.tag) .. u64(r.len or #r.payload)
    out[#out + 1] = h .. r.payload .. u32(r.badcrc and math.random(0, 2 ^ 31) or crc32(h .. r.payload))
  end
  return table.concat(out)
end
local BIG64 = { "\255\255\255\255\255\255\255\255", "\0\0\0\0\0\0\0\128", "\255\255\255\255\255\255\255\127",
  "\0\0\0\0\1\0\0\0", "\0\0\0\0\0\0\1\0", "\16\0\0\0\0\0\0\0", "\0\0\0\0\0\0\0\0", "\1\0\0\0\0\0\0\0",
  "\0\0\0\0\0\0\0\16", "\3\0\0\0\0\0\0\0", "\200\0\0\0\0\0\0\0" }
local function setbytes(s, i, b) return s:sub(1, i - 1) .. b .. s:sub(i + #b) end
local function ckpt_mutate(s)
  local header, recs = ckpt_parse(s)
  if not header or #recs == 0 or rnd(6) == 1 then return mutate(s) end -- raw bytes
  for _ = 1, rnd(3) do
    local i = rnd(#recs)
    local r = recs[i]
    local op = rnd(12)
    if op == 1 then r.tag = ({ 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0x7f, 0x80, 255 })[rnd(13)]
    elseif op == 2 and #r.payload > 0 then r.payload = mutators[rnd(2)](r.payload)
    elseif op == 3 then table.insert(recs, rnd(#recs), { tag = r.tag, payload = r.payload })
    elseif op == 4 and #recs > 1 then table.remove(recs, i)
    elseif op == 5 then -- table counts
      for _, q in ipairs(recs) do
        if q.tag == 5 and #q.payload == 16 then
          q.payload = setbytes(q.payload, rnd(2) == 1 and 1 or 9, BIG64[rnd(#BIG64)])
          break
        end
      end
    elseif op == 6 then -- tensor meta
      for _, q in ipairs(recs) do
        if q.tag == 6 and #q.payload >= 72 then
          local w = rnd(4)
          if w == 1 then q.payload = setbytes(q.payload, 1, string.char(rnd(4) - 1))
          elseif w == 2 then q.payload = setbytes(q.payload, 2, string.char(({ 0, 1, 2, 3, 8, 9, 255 })[rnd(7)]))
          elseif w == 3 then q.payload = setbytes(q.payload, 9 + 8 * (rnd(8) - 1), BIG64[rnd(#BIG64)])
          else q.payload = q.payload:sub(1, 72 + rnd(#q.payload - 71) - 1) end
          break
        end
      end
    elseif op == 7 then -- end record count
      local e = recs[#recs]
      if e.tag == 0x7f then e.payload = BIG64[rnd(#BIG64)] end
    elseif op == 8 then r.len = ({ 0, 1, 7, 8, 9, 16, 71, 72, 255, 256, 2 ^ 40, 2 ^ 52 })[rnd(12)]
    elseif op == 9 then r.badcrc = true
    elseif op == 10 then -- object names / string payloads
      local v = ({ "", ("x"):rep(255), ("x"):rep(256), "\0", "mtl.Nope", "\xff" })[rnd(6)]
      r.payload = v
    elseif op == 11 then -- deep nesting: a chain of one-entry tables
      local n = ({ 150, 199, 200, 201, 400, 5000 })[rnd(6)]
      local chain = {}
      for _ = 1, n do chain[#chain + 1] = { tag = 5, payload = u64(1) .. u64(0) } end
      chain[#chain + 1] = { tag = 1, payload = "" }
      for k = #chain, 1, -1 do table.insert(recs, i, chain[k]) end
    else -- append garbage
      recs[#recs + 1] = { tag = rnd(256) - 1, payload = rbyte():rep(rnd(20)) }
    end
  end
  local out = ckpt_build(header, recs)
  if rnd(8) == 1 then out = mutators[rnd(#mutators)](out) end
  return out
end

-- ---- gzip: mutate the compressed bytes or the text inside -------------------
local function gz_mutant(plain, dir, name)
  local p = dir .. "/" .. name
  if rnd(2) == 1 then
    writefile(p .. ".tmp", mutate(plain))
    sh("gzip -c " .. p .. ".tmp > " .. p .. " && rm -f " .. p .. ".tmp")
  else
    writefile(p .. ".tmp", plain)
    sh("gzip -c " .. p .. ".tmp > " .. p .. ".gz2 && rm -f " .. p .. ".tmp")
    local z = readfile(p .. ".gz2")
    os.remove(p .. ".gz2")
    local r = rnd(4)
    if r == 1 then z = z:sub(1, rnd(#z)) -- truncation
    elseif r == 2 then z = z .. z:sub(1, rnd(#z)) -- concatenated (partial) member
    else
      for _ = 1, rnd(3) do
        local i = rnd(#z)
        z = z:sub(1, i - 1) .. rbyte() .. z:sub(i + 1)
      end
    end
    writefile(p, z)
  end
end

-- ---- seeds ---------------------------------------------------------------------
local function head_lines(path, n)
  local t = lines_of(readfile(path))
  local out = {}
  for i = 1, math.min(n, #t) do out[i] = t[i] end
  return table.concat(out, "\n") .. "\n"
end
local SEEDS = {
  csv = {
    { schema = "aliexpress", text = head_lines(REPO .. "/spec/fixtures/data/aliexpress_train_sample.csv", 12) },
    { schema = "aliexpress", text = head_lines(REPO .. "/spec/fixtures/data/tiny_test.csv", 8) },
    { schema = "aliccp", text = head_lines(REPO .. "/spec/fixtures/data/ali_ccp_train_sample.csv", 15) },
    { schema = "synth", text = readfile(ROOT .. "/seeds/synth.csv") },
    { schema = "synth_tsv", text = readfile(ROOT .. "/seeds/synth.tsv") },
  },
  ff = {
    { schema = "ff", text = head_lines(REPO .. "/spec/fixtures/data/ali-ccp-fieldfeat/train.txt", 6) },
    { schema = "ff", text = head_lines(REPO .. "/spec/fixtures/data/ali-ccp-fieldfeat/test.txt", 4) },
  },
  pbtxt = {},
  override = {},
  luacfg = {},
  ckpt = {},
  modeldir = {},
}
for _, n in ipairs({ "mmoe_on_taobao", "dbmtl_on_taobao", "unsupported", "typo_hiden_units", "syntax_error" }) do
  SEEDS.pbtxt[#SEEDS.pbtxt + 1] = { text = readfile(REPO .. "/spec/fixtures/easyrec/" .. n .. ".config") }
end
for l in io.lines(ROOT .. "/seeds/overrides.txt") do SEEDS.override[#SEEDS.override + 1] = { text = l } end
for _, n in ipairs({ "cfg1.lua" }) do SEEDS.luacfg[#SEEDS.luacfg + 1] = { text = readfile(ROOT .. "/seeds/" .. n) } end
for f in io.popen("ls " .. ROOT .. "/seeds/*.ckpt"):lines() do SEEDS.ckpt[#SEEDS.ckpt + 1] = { text = readfile(f) } end
for _, which in ipairs({ { "manifest", "manifest.json" }, { "config", "config.lua" }, { "weights", "model.ckpt" } }) do
  SEEDS.modeldir[#SEEDS.modeldir + 1] = { schema = which[1], text = readfile(ROOT .. "/seeds/model/" .. which[2]) }
end
SEEDS.gz = SEEDS.csv
SEEDS.opts = SEEDS.csv

-- ---- the libFuzzer mode's seed corpus (tools/fuzz.sh): fuzz.lua --corpus DIR TARGET
-- writes each seed in 8 variants of its option bytes (targets.encode)
if seconds == nil then
  local dir, target = arg[2], arg[3]
  for i, s in ipairs(assert(SEEDS[target], "unknown target " .. tostring(target))) do
    for j = 0, 7 do
      local bytes = s.text
      if target == "gz" and j % 2 == 1 then
        writefile(dir .. "/plain.tmp", bytes)
        sh("gzip -c " .. dir .. "/plain.tmp > " .. dir .. "/gz.tmp")
        bytes = readfile(dir .. "/gz.tmp")
        os.remove(dir .. "/plain.tmp"); os.remove(dir .. "/gz.tmp")
      end
      writefile(string.format("%s/seed_%d_%d", dir, i, j), targets_mod.encode(target, s.schema, j, bytes))
    end
  end
  os.exit(0)
end

-- ---- running -------------------------------------------------------------------
local ENV = ". " .. ROOT .. "/env.sh; "  -- written by tools/fuzz.sh
local function run_child(target, listfile, logfile)
  local cmd = string.format("%s cd %s/work && timeout -k 5 20 nice -n 19 %s %s %s %s > %s 2>&1",
    ENV, ROOT, MTL, CHILD, target, listfile, logfile)
  local ok, how, code = os.execute(cmd)
  if type(ok) == "number" then code = ok / 256; if ok % 256 ~= 0 then code = 128 + ok % 256 end end
  if ok == true then code = 0 end
  return code
end

local stats = {}
local ncrash = 0
local function batch(target, k)
  local dir = string.format("%s/work/%s_%d", ROOT, target, k)
  sh("rm -rf " .. dir .. " && mkdir -p " .. dir)
  local seeds = SEEDS[target]
  local list = {}
  for i = 1, BATCH do
    local s = seeds[rnd(#seeds)]
    local name = string.format("m%04d_%s_%d", i, s.schema or target, rnd(1000000))
    name = name .. targets_mod.EXT[target]
    if target == "gz" then gz_mutant(s.text, dir, name)
    elseif target == "ckpt" or (target == "modeldir" and s.schema == "weights") then
      writefile(dir .. "/" .. name, ckpt_mutate(s.text))
    elseif target == "modeldir" then writefile(dir .. "/" .. name, mutate(s.text, cfg_extra))
    elseif target == "pbtxt" or target == "luacfg" then writefile(dir .. "/" .. name, mutate(s.text, cfg_extra))
    elseif target == "override" then
      local v = mutate(s.text, cfg_extra)
      if #v > 200000 then v = v:sub(1, 200000) end
      writefile(dir .. "/" .. name, v)
    else writefile(dir .. "/" .. name, mutate(s.text)) end
    list[#list + 1] = dir .. "/" .. name
  end
  writefile(dir .. "/list", table.concat(list, "\n") .. "\n")
  local code = run_child(target, dir .. "/list", dir .. "/log")
  stats[target] = stats[target] or { mutants = 0, batches = 0, bad = 0 }
  local st = stats[target]
  st.mutants, st.batches = st.mutants + BATCH, st.batches + 1
  if code == 0 then
    sh("rm -rf " .. dir)
    return
  end
  st.bad = st.bad + 1
  print(string.format("!! %s batch %d exit %s; bisecting", target, k, tostring(code)))
  for _, f in ipairs(list) do
    writefile(dir .. "/one", f .. "\n")
    local c = run_child(target, dir .. "/one", dir .. "/onelog")
    if c ~= 0 then
      ncrash = ncrash + 1
      local dst = string.format("%s/crashes/%s_%d_exit%d_%s", ROOT, target, ncrash, c, f:match("[^/]+$"))
      sh(string.format("cp %s %s && cp %s/onelog %s.log", f, dst, dir, dst))
      print("   crash: " .. dst .. "  (" .. (io.popen("grep -m1 -E 'ERROR|runtime error|SUMMARY|FATAL|error' " .. dst .. ".log"):read("*l") or "?") .. ")")
    end
  end
  sh("rm -rf " .. dir)
end

local targets = {}
for t in (only or table.concat(targets_mod.NAMES, ",")):gmatch("[^,]+") do
  assert(SEEDS[t], "unknown target " .. t .. " (" .. table.concat(targets_mod.NAMES, ",") .. ")")
  targets[#targets + 1] = t
end
local failing = 0
for _, t in ipairs(targets) do
  local t0, k = os.time(), 0
  while os.time() - t0 < seconds do
    k = k + 1
    batch(t, k)
  end
  local st = stats[t] or { mutants = 0, batches = 0, bad = 0 }
  print(string.format("%-9s %6d mutants in %4d batches, %d failing batches", t, st.mutants, st.batches, st.bad))
  io.stdout:flush()
  failing = failing + st.bad
end
if failing > 0 then
  print(string.format("%d failing batches; inputs and logs in %s/crashes", failing, ROOT))
  os.exit(1)
end
