-- mtl.shard: row-sharded embedding tables over mtl.dist's ranks
-- (docs/distributed.md, "Row-sharded tables").
--
-- A sharded table's rows are split by key: key = the id of a fixed or dynamic
-- table, the bucket of a hashed one; owner = key mod N. Rank r holds only its
-- rows (`st.shard`, an mtl.Embedding: a fixed table of the rows r, r + N, ...
-- for fixed and hashed tables, at local row key div N; a dynamic table of the
-- ids it owns, admitting and evicting them) with their optimizer state (the
-- optimizer takes st.shard). The model looks rows up in `st.view`, a small
-- dynamic table in eval mode that holds, during a step, the rows of the ids
-- of that step's batch on this rank:
--
--   shard.prefetch(list, ids)  before the forward: every table's ids to their
--                              owners in one alltoallv, the rows back in a
--                              second, loaded into the views
--   ... forward and backward on the views (the same C lookups and bags) ...
--   shard.push_grads(list)     after backward: each view's sparse gradient to
--                              the owners in one alltoallv, added to the shards
--
-- One process is the N = 1 case of the same calls (every collective returns
-- its input).
local mtl = require "mtl"
local ffi = require "ffi"

local dist = mtl.dist
local core = mtl.core
local format = string.format
local floor = math.floor

local shard = {}
local admit, draw_new_rows -- below

local Sharded = {}
Sharded.__index = Sharded
shard.Sharded = Sharded

local i64p = ffi.typeof("int64_t *")
local f32p = ffi.typeof("float *")
local u32p = ffi.typeof("uint32_t *")

local function ptr(t, ct) return ffi.cast(ct, t:data_ptr()) end

local function kind_of(opts)
  if opts.kind then return opts.kind end
  if opts.num_buckets then return "fixed" end
  if opts.hash_bucket_size then return "hashed" end
  return nil
end

-- The rows of keys 0..n-1 that rank r of N owns: r, r + N, ...
function shard.local_rows(n, rank, size)
  if rank >= n then return 0 end
  return floor((n - 1 - rank) / size) + 1
end

-- A row-sharded table over this run's ranks. opts: mtl.Embedding's options (a
-- fixed, hashed or dynamic table); name: for messages. The rows a fixed or
-- hashed table's single-process version would draw from the random stream are
-- drawn in the same order (in chunks of a few MiB) and each rank keeps its
-- own, so the rows and the stream after are the single process's.
function shard.new(opts, name, rank, size)
  rank, size = rank or dist.rank(), size or dist.size()
  local kind = kind_of(opts)
  if kind ~= "fixed" and kind ~= "hashed" and kind ~= "dynamic" then
    mtl.Embedding(opts) -- its own message for a missing or unknown kind
    error(format("mtl.shard: table %s: kind %s cannot be sharded", tostring(name), tostring(kind)), 2)
  end
  local self = setmetatable({ name = name or "table", kind = kind, dim = opts.dim, rank = rank, size = size,
                              opts = opts, training_mode = true }, Sharded)
  self.view = mtl.Embedding { kind = "dynamic", dim = opts.dim, init = "zeros", default_row = opts.default_row }
  self.view:eval()
  if opts.requires_grad == false then self.view:requires_grad(false) end
  if kind == "dynamic" then -- new rows: drawn by every rank in the single process's order (admissions)
    local o = {}
    for k, v in pairs(opts) do o[k] = v end
    o.init = "zeros"
    self.shard = mtl.Embedding(o)
    self.min_count = opts.min_count or 1
    return self
  end
  self.n = opts.num_buckets or opts.hash_bucket_size
  self.seed = opts.hash_seed or 0
  self.local_n = shard.local_rows(self.n, rank, size)
  self.shard = mtl.Embedding { num_buckets = math.max(self.local_n, 1), dim = opts.dim, init = "zeros",
                               requires_grad = opts.requires_grad }
  if (opts.init or "uniform") ~= "zeros" then self:draw_rows() end
  return self
end

-- The single-process table's initial rows, drawn chunk by chunk (a chunk is a
-- multiple of N rows, so rank r's rows are at r, r + N, ... of every chunk).
function Sharded:draw_rows()
  local n, N, dim = self.n, self.size, self.dim
  local chunk = N * 65536
  local w = self.shard:weight()
  for a = 0, n - 1, chunk do
    local c = math.min(chunk, n - a)
    local tmp = mtl.Embedding { num_buckets = c, dim = dim, init = self.opts.init, scale = self.opts.scale }
    local count = shard.local_rows(c, self.rank, N)
    if count > 0 then
      local tw = tmp:weight()
      local padded = math.ceil(c / N) * N
      if padded > c then tw = mtl.concat({ tw, mtl.zeros(padded - c, dim) }, 1) end
      local mine = tw:reshape(padded / N, N, dim):narrow(2, self.rank + 1, 1):contiguous():reshape(padded / N, dim)
      w:narrow(1, a / N + 1, count):copy(mine:narrow(1, 1, count))
    end
    tmp = nil
    collectgarbage()
  end
end

function Sharded:train() self.training_mode = true; if self.kind == "dynamic" then self.shard:train() end end
function Sharded:eval() self.training_mode = false; if self.kind == "dynamic" then self.shard:eval() end end
function Sharded:training() return self.training_mode end

-- ---- keys and owners ------------------------------------------------------------------
-- owner of a key: key mod N, in 0..N-1 (also for a dynamic table's negative ids)
local function owner_of(key, N)
  local r = key % N
  if r < 0 then r = r + N end
  return tonumber(r)
end

-- this rank's ids of one step for table st: the sorted distinct ids, the keys
-- to ask for (sorted, distinct), and for a dynamic table in training the
-- number of times each id occurs (the owner counts every sighting)
local function step_keys(st, id_list)
  local flat = {}
  for _, t in ipairs(id_list) do
    if t:numel() > 0 then flat[#flat + 1] = t:contiguous():reshape(t:numel()) end
  end
  local all = #flat == 0 and mtl.zeros({ 0 }, "int64") or (#flat == 1 and flat[1] or mtl.concat(flat, 1))
  local uniq = core.sort_unique(all)
  local u = uniq:numel()
  local e = { uniq = uniq, u = u }
  if st.kind == "fixed" and u > 0 then
    local p = ptr(uniq, i64p)
    local bad = p[0] < 0 and p[0] or (p[u - 1] >= st.n and p[u - 1] or nil)
    if bad then
      error(format("mtl.shard: table %s (rank %d, %s): id %s out of range for a fixed table of %d rows (valid ids: 0..%d)",
        st.name, st.rank, dist.context(), (tostring(bad):gsub("LL$", "")), st.n, st.n - 1), 0)
    end
  end
  if st.kind == "hashed" then
    e.buckets = mtl.Embedding.buckets(uniq, st.n, st.seed)
    e.keys = core.sort_unique(e.buckets)
  else
    e.keys = uniq
  end
  if st.kind == "dynamic" and st.training_mode then -- sightings per id
    local total = all:numel()
    local counts = mtl.zeros({ u }, "int64")
    local c, up, ap = ptr(counts, i64p), ptr(uniq, i64p), ptr(all, i64p)
    local slot = ffi.new("int64_t[?]", math.max(total, 1)) -- each sighting's index in uniq (binary search)
    for i = 0, total - 1 do
      local id, lo, hi = ap[i], 0, u - 1
      while lo < hi do
        local mid = floor((lo + hi) / 2)
        if up[mid] < id then lo = mid + 1 else hi = mid end
      end
      slot[i] = lo
      c[lo] = c[lo] + 1
    end
    e.counts = counts
    -- each id's first min(count, min_count) positions in this rank's ids (one of
    -- them admits it; the owner adds the ids of the ranks before this one)
    local mc = st.min_count
    local start, n = ffi.new("int64_t[?]", u + 1), 0
    for i = 0, u - 1 do start[i] = n; n = n + math.min(tonumber(c[i]), mc) end
    start[u] = n
    local positions = mtl.zeros({ n }, "int64")
    local pp, fill = ptr(positions, i64p), ffi.new("int64_t[?]", math.max(u, 1))
    for i = 0, total - 1 do
      local j = slot[i]
      if fill[j] < start[j + 1] - start[j] then
        pp[start[j] + fill[j]] = i
        fill[j] = fill[j] + 1
      end
    end
    e.positions, e.pos_start, e.total = positions, start, all:numel()
  end
  return e
end

-- Splits e.keys by owner (stable): e.ask (keys in rank order), e.ask_counts
-- [d + 1], e.ask_pos [i] (where key i of e.keys went, 0-based), e.ask_off.
local function split_by_owner(e, N)
  local m = e.keys:numel()
  local kp = ptr(e.keys, i64p)
  local counts, owners = {}, ffi.new("int32_t[?]", math.max(m, 1))
  for d = 1, N do counts[d] = 0 end
  for i = 0, m - 1 do
    local d = owner_of(kp[i], N)
    owners[i] = d
    counts[d + 1] = counts[d + 1] + 1
  end
  local off, o = {}, 0
  for d = 1, N do off[d] = o; o = o + counts[d] end
  local ask = mtl.zeros({ m }, "int64")
  local ap = ptr(ask, i64p)
  local pos = ffi.new("int64_t[?]", math.max(m, 1))
  local fill = {}
  for d = 1, N do fill[d] = off[d] end
  local cp = e.counts and ptr(e.counts, i64p)
  local asked_counts = e.counts and mtl.zeros({ m }, "int64")
  local acp = asked_counts and ptr(asked_counts, i64p)
  for i = 0, m - 1 do
    local d = owners[i] + 1
    ap[fill[d]] = kp[i]
    if acp then acp[fill[d]] = cp[i] end
    pos[i] = fill[d]
    fill[d] = fill[d] + 1
  end
  local src = ffi.new("int64_t[?]", math.max(m, 1)) -- ask position -> index in e.keys
  for i = 0, m - 1 do src[pos[i]] = i end
  e.ask, e.ask_counts, e.ask_off, e.ask_pos, e.asked_counts, e.owners = ask, counts, off, pos, asked_counts, owners
  e.ask_src = src
end

-- The width, in floats, of a row a table's owner sends back: the row, and for a
-- dynamic table first a flag (1: the owner holds the id, 0: not admitted).
local function width(st) return st.kind == "dynamic" and st.dim + 1 or st.dim end

-- The owner's rows for the keys it received for one table (all ranks' in rank
-- order): [m, width] floats.
local function owner_rows(st, keys)
  local m = keys:numel()
  if m == 0 then return mtl.zeros(0, width(st)) end
  if st.kind ~= "dynamic" then
    local lk = mtl.zeros({ m }, "int64")
    local kp, lp = ptr(keys, i64p), ptr(lk, i64p)
    local N = st.size
    for i = 0, m - 1 do lp[i] = kp[i] / N end -- keys are >= 0: division truncates = floor
    return mtl.no_grad(function() return st.shard:lookup(lk) end)
  end
  local rows = mtl.no_grad(function()
    if st.training_mode then st.shard:eval() end -- the counting was done on the sightings
    local r = st.shard:lookup(keys)
    if st.training_mode then st.shard:train() end
    return r
  end)
  return mtl.concat({ st.shard:has(keys):reshape(m, 1), rows }, 2)
end

-- A dynamic shard's training lookup of the sightings of one step (all ranks'
-- ids, in rank order, each as often as it occurred): counts, admits, stamps.
local function count_sightings(st, keys, counts)
  local m, total = keys:numel(), 0
  local cp, kp = ptr(counts, i64p), ptr(keys, i64p)
  for i = 0, m - 1 do total = total + tonumber(cp[i]) end
  if total == 0 then return end
  local occ = mtl.zeros({ total }, "int64")
  local op, k = ptr(occ, i64p), 0
  for i = 0, m - 1 do
    for _ = 1, tonumber(cp[i]) do op[k] = kp[i]; k = k + 1 end
  end
  mtl.no_grad(function() st.shard:lookup(occ) end)
end

-- A dynamic shard's sightings of a step (keys: all sources' in rank order;
-- p.counts, p.positions per source): counted and admitted (with zero rows).
-- Returns {position in the global batch, id} of each id admitted now: the
-- sighting that admits it, as one process counts the batch in order.
admit = function(st, keys, p)
  if #p.counts == 0 then return {} end
  local held = st.shard:has(keys)
  local pending = st.shard:pending(keys)
  count_sightings(st, keys, mtl.concat(p.counts, 1))
  local now = st.shard:has(keys)
  local hp, np, pp, kp = ptr(held, f32p), ptr(now, f32p), ptr(pending, i64p), ptr(keys, i64p)
  local out, seen, i = {}, {}, 0
  local mc = st.min_count
  for s = 1, #p.counts do
    local cp, pos = ptr(p.counts[s], i64p), ptr(p.positions[s], i64p)
    local at = 0
    for j = 0, p.counts[s]:numel() - 1 do
      local n = math.min(tonumber(cp[j]), mc)
      if hp[i] == 0 and np[i] == 1 then -- admitted by this step's sightings
        local key = tostring(kp[i])
        local e = seen[key]
        if not e then
          e = { need = math.max(mc - tonumber(pp[i]), 1), got = 0 }
          seen[key] = e
        end
        for q = 0, n - 1 do
          if e.got < e.need then
            e.got = e.got + 1
            if e.got == e.need then out[#out + 1] = { tonumber(pos[at + q]), kp[i] } end
          end
        end
      end
      at, i = at + n, i + 1
    end
  end
  return out
end

-- The initial values of every rank's new rows of each dynamic table, drawn
-- from the random stream on every rank in the order one process admits them
-- (by position in the global batch), each owner keeping its own: the rows and
-- the stream after are the single process's. One allgather for all tables.
draw_new_rows = function(list, new)
  if not next(new) then return end
  local n = 0
  for _, entries in pairs(new) do n = n + #entries end
  local mine = mtl.zeros({ 3 * n }, "int64") -- (table, position, id) triples
  local mp, x = ptr(mine, i64p), 0
  for k, entries in pairs(new) do
    for _, e in ipairs(entries) do
      mp[x], mp[x + 1], mp[x + 2] = k, e[1], e[2]
      x = x + 3
    end
  end
  local all = dist.allgather(mine)
  local ap = ptr(all, i64p)
  local by_table = {}
  for x = 0, all:numel() - 1, 3 do
    local k = tonumber(ap[x])
    by_table[k] = by_table[k] or {}
    table.insert(by_table[k], { tonumber(ap[x + 1]), ap[x + 2] })
  end
  for k, st in ipairs(list) do
    local entries = by_table[k]
    if entries and (st.opts.init or "uniform") ~= "zeros" then
      table.sort(entries, function(a, b) return a[1] < b[1] end)
      local drawn = mtl.Embedding { num_buckets = #entries, dim = st.dim, init = st.opts.init, scale = st.opts.scale }
      local ids, rows = {}, {}
      for j, e in ipairs(entries) do
        if owner_of(e[2], st.size) == st.rank then ids[#ids + 1], rows[#rows + 1] = e[2], j end
      end
      if #ids > 0 then
        local idt = mtl.zeros({ #ids }, "int64")
        local ip = ptr(idt, i64p)
        for j, id in ipairs(ids) do ip[j - 1] = id end
        st.shard:set_rows(idt, drawn:weight():index_select(1, mtl.tensor(rows, "int64")):contiguous())
      end
    end
  end
end

-- ---- the step ------------------------------------------------------------------------
-- Before the forward: list = the sharded tables (in the same order on every
-- rank), ids[k] = a list of int64 tensors, table k's ids in this rank's batch
-- (any shapes; empty lists for a rank without rows). One alltoallv sends
-- every table's keys to their owners — per destination: a count per table,
-- then each table's keys (and a dynamic table's sighting counts in
-- training) — and one sends the rows back; each view then holds the rows of
-- this rank's ids. Returns the bytes sent by this rank.
function shard.prefetch(list, ids)
  local N, T = dist.size(), #list
  local es = {}
  for k, st in ipairs(list) do
    es[k] = step_keys(st, ids[k] or {})
    split_by_owner(es[k], N)
  end
  -- the ids message: per destination d, T counts and T totals (this rank's ids
  -- of each table), then table by table the keys (+ a dynamic table's counts
  -- and first positions in training)
  local send_counts, total = {}, 0
  local npos = {} -- npos[k][d]: positions sent to d for table k
  for k = 1, T do
    local e = es[k]
    npos[k] = {}
    for d = 1, N do
      local n = 0
      if e.positions then
        for a = e.ask_off[d], e.ask_off[d] + e.ask_counts[d] - 1 do
          local i = e.ask_src[a]
          n = n + tonumber(e.pos_start[i + 1] - e.pos_start[i])
        end
      end
      npos[k][d] = n
    end
  end
  for d = 1, N do
    local c = 2 * T
    for k = 1, T do c = c + es[k].ask_counts[d] * (es[k].asked_counts and 2 or 1) + npos[k][d] end
    send_counts[d] = c
    total = total + c
  end
  local msg = mtl.zeros({ total }, "int64")
  local mp, o = ptr(msg, i64p), 0
  for d = 1, N do
    for k = 1, T do mp[o + k - 1], mp[o + T + k - 1] = es[k].ask_counts[d], es[k].total or 0 end
    o = o + 2 * T
    for k = 1, T do
      local e, c = es[k], es[k].ask_counts[d]
      if c > 0 then
        ffi.copy(mp + o, ptr(e.ask, i64p) + e.ask_off[d], 8 * c)
        o = o + c
        if e.asked_counts then
          ffi.copy(mp + o, ptr(e.asked_counts, i64p) + e.ask_off[d], 8 * c)
          o = o + c
          local pp = ptr(e.positions, i64p)
          for a = e.ask_off[d], e.ask_off[d] + c - 1 do
            local i = e.ask_src[a]
            local n = tonumber(e.pos_start[i + 1] - e.pos_start[i])
            ffi.copy(mp + o, pp + e.pos_start[i], 8 * n)
            o = o + n
          end
        end
      end
    end
  end
  local got = dist.alltoallv(msg, send_counts)
  -- the owner: every source's keys of table k, in rank order
  local gp = ptr(got, i64p)
  local per = {} -- per[k] = {keys, counts, positions = {tensor per source}, n = {count per source}}
  for k = 1, T do per[k] = { keys = {}, counts = {}, positions = {}, n = {}, before = 0 } end
  o = 0
  for s = 1, N do
    local base = o
    o = o + 2 * T
    for k = 1, T do
      local c, before = tonumber(gp[base + k - 1]), per[k].before
      per[k].n[s] = c
      per[k].before = before + tonumber(gp[base + T + k - 1]) -- ids of the ranks before the next source
      if c > 0 then
        per[k].keys[#per[k].keys + 1] = got:narrow(1, o + 1, c)
        o = o + c
        if list[k].kind == "dynamic" and list[k].training_mode then
          local counts = got:narrow(1, o + 1, c)
          per[k].counts[#per[k].counts + 1] = counts
          o = o + c
          local cp, n = ptr(counts, i64p), 0
          for i = 0, c - 1 do n = n + math.min(tonumber(cp[i]), list[k].min_count) end
          local pos = mtl.zeros({ n }, "int64") -- positions in the global batch
          local dp = ptr(pos, i64p)
          for i = 0, n - 1 do dp[i] = gp[o + i] + before end
          per[k].positions[#per[k].positions + 1] = pos
          o = o + n
        end
      end
    end
  end
  -- a dynamic table's sightings: counted, admitted; the new rows' values drawn
  local keys_of, new = {}, {}
  for k, st in ipairs(list) do
    keys_of[k] = #per[k].keys > 0 and mtl.concat(per[k].keys, 1) or mtl.zeros({ 0 }, "int64")
    if st.kind == "dynamic" and st.training_mode then
      new[k] = admit(st, keys_of[k], per[k])
    end
  end
  draw_new_rows(list, new)
  -- the rows, per source in rank order and table by table
  local rows = {}
  for k, st in ipairs(list) do rows[k] = owner_rows(st, keys_of[k]):contiguous() end
  local reply_counts, reply_total = {}, 0
  for s = 1, N do
    local c = 0
    for k, st in ipairs(list) do c = c + per[k].n[s] * width(st) end
    reply_counts[s] = c
    reply_total = reply_total + c
  end
  local reply = mtl.zeros({ reply_total })
  local rp = ptr(reply, f32p)
  local taken = {}
  for k = 1, T do taken[k] = 0 end
  o = 0
  for s = 1, N do
    for k, st in ipairs(list) do
      local c, w = per[k].n[s], width(st)
      if c > 0 then
        ffi.copy(rp + o, ptr(rows[k], f32p) + taken[k] * w, 4 * c * w)
        taken[k] = taken[k] + c
        o = o + c * w
      end
    end
  end
  local back = dist.alltoallv(reply, reply_counts)
  -- this rank: the rows of its keys into the views
  local bp = ptr(back, f32p)
  local start, off = {}, 0 -- start[k][d]: where table k's rows from rank d begin in `back`
  for k = 1, T do start[k] = {} end
  for d = 1, N do
    for k, st in ipairs(list) do
      start[k][d] = off
      off = off + es[k].ask_counts[d] * width(st)
    end
  end
  for k, st in ipairs(list) do
    shard.load_view(st, es[k], bp, start[k])
  end
  return 8 * total + 4 * reply_total
end

-- Where the row of e.keys[i] (0-based) is in the received floats.
local function row_at(e, start, i, w)
  local d = e.owners[i] + 1
  return start[d] + (e.ask_pos[i] - e.ask_off[d]) * w
end

function shard.load_view(st, e, bp, start)
  local N, dim, w = dist.size(), st.dim, width(st)
  local u = e.u
  local vids = mtl.zeros({ u }, "int64")
  local vrows = mtl.zeros(u, dim)
  local ip, vp = ptr(vids, i64p), ptr(vrows, f32p)
  local up = ptr(e.uniq, i64p)
  local n = 0
  if st.kind == "hashed" then
    local where = {} -- bucket -> index in e.keys
    local kp = ptr(e.keys, i64p)
    for i = 0, e.keys:numel() - 1 do where[tonumber(kp[i])] = i end
    local bp2 = ptr(e.buckets, i64p)
    for i = 0, u - 1 do
      local at = row_at(e, start, where[tonumber(bp2[i])], w)
      ip[n] = up[i]
      ffi.copy(vp + n * dim, bp + at, 4 * dim)
      n = n + 1
    end
  else
    for i = 0, u - 1 do
      local at = row_at(e, start, i, w)
      if st.kind ~= "dynamic" or bp[at] ~= 0 then
        ip[n] = up[i]
        ffi.copy(vp + n * dim, bp + at + (w - dim), 4 * dim)
        n = n + 1
      end
    end
  end
  st.view:load_state_dict { kind = "dynamic", dim = dim, ids = vids:narrow(1, 1, n), weight = vrows:narrow(1, 1, n) }
end

-- After backward: every view's gradient (its ids' summed rows) to the owners
-- in one alltoallv — per destination a count per table (as two 32-bit
-- halves), then each entry's key (two halves) and row — and each owner adds
-- all ranks' entries, in rank order, to its shard's gradient (t:add_grad).
-- The views' gradients are cleared. Returns the bytes sent by this rank.
function shard.push_grads(list)
  local N, T = dist.size(), #list
  local es = {}
  for k, st in ipairs(list) do
    local ids, vals = st.view:grad()
    local e = { vals = vals and vals:contiguous() }
    if not ids then
      e.keys = mtl.zeros({ 0 }, "int64")
    elseif st.kind == "hashed" then
      e.keys = mtl.Embedding.buckets(ids, st.n, st.seed)
    else
      e.keys = ids
    end
    split_by_owner(e, N)
    es[k] = e
  end
  local send_counts, total = {}, 0
  for d = 1, N do
    local c = 2 * T
    for k, st in ipairs(list) do c = c + es[k].ask_counts[d] * (2 + st.dim) end
    send_counts[d] = c
    total = total + c
  end
  local msg = mtl.zeros({ total })
  local mp, up = ptr(msg, f32p), ptr(msg, u32p)
  local base, o = {}, 0 -- base[k][d]: where table k's entries for rank d begin
  for k = 1, T do base[k] = {} end
  for d = 1, N do
    for k = 1, T do up[o + 2 * k - 2], up[o + 2 * k - 1] = es[k].ask_counts[d], 0 end
    o = o + 2 * T
    for k, st in ipairs(list) do
      base[k][d] = o
      o = o + es[k].ask_counts[d] * (2 + st.dim)
    end
  end
  for k, st in ipairs(list) do -- each entry at its owner's place, in key order
    local e, dim = es[k], st.dim
    if e.keys:numel() > 0 then
      local kp, vp = ptr(e.keys, i64p), ptr(e.vals, f32p)
      for i = 0, e.keys:numel() - 1 do
        local d = e.owners[i] + 1
        local at = base[k][d] + (e.ask_pos[i] - e.ask_off[d]) * (2 + dim)
        local key = ffi.cast("uint64_t", kp[i])
        up[at], up[at + 1] = tonumber(key % 4294967296ULL), tonumber(key / 4294967296ULL)
        ffi.copy(mp + at + 2, vp + i * dim, 4 * dim)
      end
    end
  end
  local got = dist.alltoallv(msg, send_counts)
  local gp, gu = ptr(got, f32p), ptr(got, u32p)
  local keys, vals = {}, {}
  for k = 1, T do keys[k], vals[k] = {}, {} end
  local n_got = got:numel()
  o = 0
  while o < n_got do -- one source after another, in rank order
    local counts = {}
    for k = 1, T do counts[k] = tonumber(gu[o + 2 * k - 2]) end
    o = o + 2 * T
    for k, st in ipairs(list) do
      local c, dim = counts[k], st.dim
      if c > 0 then
        local kt, vt = mtl.zeros({ c }, "int64"), mtl.zeros(c, dim)
        local kp, vp = ptr(kt, i64p), ptr(vt, f32p)
        for i = 0, c - 1 do
          local at = o + i * (2 + dim)
          local key = ffi.cast("int64_t", ffi.cast("uint64_t", gu[at]) + ffi.cast("uint64_t", gu[at + 1]) * 4294967296ULL)
          kp[i] = st.kind == "dynamic" and key or key / st.size
          ffi.copy(vp + i * dim, gp + at + 2, 4 * dim)
        end
        keys[k][#keys[k] + 1], vals[k][#vals[k] + 1] = kt, vt
        o = o + c * (2 + dim)
      end
    end
  end
  for k, st in ipairs(list) do
    st.view:zero_grad()
    if #keys[k] > 0 then
      st.shard:add_grad(#keys[k] == 1 and keys[k][1] or mtl.concat(keys[k], 1),
                        #vals[k] == 1 and vals[k][1] or mtl.concat(vals[k], 1))
    end
  end
  return 4 * total
end

-- owner of a key (for mtl.shard_state)
shard.owner_of = owner_of

return shard
