-- Every collective of mtl.dist on rank-dependent tensors; run under mpirun by
-- spec/dist/collectives_spec.lua, which checks each printed value against
-- its closed form. Output lines: "r<rank> <key> <values...>".
local mtl = require "mtl"
local dist = mtl.dist
local rank, size = dist.rank(), dist.size()

local function say(key, ...)
  local parts = { ... }
  for i, v in ipairs(parts) do
    if type(v) == "number" then parts[i] = string.format("%.17g", v) end
  end
  io.write(string.format("r%d %s %s\n", rank, key, table.concat(parts, " ")))
  io.stdout:flush()
end

local function flat(t)
  local out = {}
  local function walk(x)
    if type(x) == "table" then for _, v in ipairs(x) do walk(v) end else out[#out + 1] = x end
  end
  walk(t:totable())
  return unpack(out)
end

say("size", size)

-- allreduce, both algorithms: element (i, j) of rank r is (r + 1) * (10 i + j)
local function ramp(scale)
  local rows = {}
  for i = 1, 3 do
    rows[i] = {}
    for j = 1, 4 do rows[i][j] = scale * (10 * i + j) end
  end
  return mtl.tensor(rows)
end
for _, alg in ipairs({ "ordered", "mpi" }) do
  for _, op in ipairs({ "sum", "mean", "max", "min" }) do
    say("allreduce_" .. alg .. "_" .. op, flat(dist.allreduce(ramp(rank + 1), op, alg)))
  end
  local ids = mtl.tensor({ rank * 1000 + 1, rank * 1000 + 2, -rank }, "int64")
  say("allreduce_" .. alg .. "_int64_sum", flat(dist.allreduce(ids, "sum", alg)))
  say("allreduce_" .. alg .. "_int64_max", flat(dist.allreduce(mtl.tensor({ rank, -rank }, "int64"), "max", alg)))
end
-- a transposed (non-contiguous) view is reduced in place
local base = ramp(rank + 1)
dist.allreduce(base:t(), "sum")
say("allreduce_view", flat(base))
-- fewer values than ranks: some ranks own empty segments
say("allreduce_short", flat(dist.allreduce(mtl.tensor({ rank + 1 }), "sum")))

-- broadcast from the last rank
say("broadcast", flat(dist.broadcast(mtl.tensor({ rank, rank + 0.5 }), size - 1)))
say("broadcast_int64", flat(dist.broadcast(mtl.tensor({ rank * 7 }, "int64"), 0)))

-- allgather: rank r contributes r + 1 rows {r, k}
local rows = {}
for k = 1, rank + 1 do rows[k] = { rank, k } end
local gathered, counts = dist.allgather(mtl.tensor(rows))
say("allgather_counts", unpack(counts))
say("allgather_shape", gathered:size(1), gathered:size(2))
say("allgather", flat(gathered))
local g1 = dist.allgather(mtl.tensor({ rank + 10 }, "int64"))
say("allgather_int64", flat(g1))

-- alltoallv: rank r sends (r + d) % 3 rows to rank d (zero for some pairs);
-- an id row encodes source, destination and position: 10000 s + 100 d + k
local send_counts, ids, vecs = {}, {}, {}
for d = 0, size - 1 do
  send_counts[d + 1] = (rank + d) % 3
  for k = 0, send_counts[d + 1] - 1 do
    local code = 10000 * rank + 100 * d + k
    ids[#ids + 1] = code
    vecs[#vecs + 1] = { code, code + 0.25, -code }
  end
end
local id_tensor = #ids > 0 and mtl.tensor(ids, "int64") or mtl.zeros(0):long()
local got, recv_counts = dist.alltoallv(id_tensor, send_counts)
say("alltoallv_counts", unpack(recv_counts))
say("alltoallv_ids", flat(got))
local vec_tensor = #vecs > 0 and mtl.tensor(vecs) or mtl.zeros(0, 3)
local got_vecs, recv_vec_counts = dist.alltoallv(vec_tensor, send_counts)
say("alltoallv_vec_counts", unpack(recv_vec_counts))
say("alltoallv_vec_shape", got_vecs:size(1), got_vecs:size(2))
say("alltoallv_vecs", flat(got_vecs))

-- bucketed allreduce of tensors of different shapes == per-tensor allreduce
local function grads()
  local list = {}
  local shapes = { { 7, 5 }, { 5 }, { 33 }, { 4, 4, 2 }, { 1 }, { 300 } }
  for i, shape in ipairs(shapes) do
    local t = mtl.zeros(unpack(shape))
    local n = t:numel()
    local v = mtl.arange(1, n + 1):float():view(unpack(shape))
    list[i] = mtl.tanh(v * (rank + 1) / 7 + i) / (rank + 3)
  end
  return list
end
for _, alg in ipairs({ "ordered", "mpi" }) do
  local one_by_one, packed = grads(), grads()
  for _, t in ipairs(one_by_one) do dist.allreduce(t, "mean", alg) end
  local h = dist.iallreduce_many(packed, { op = "mean", algorithm = alg, bucket_bytes = 512 })
  say("many_" .. alg .. "_buffers", h:buffers())
  h:wait()
  local diff, same = 0, true
  for i = 1, #packed do
    local a, b = { flat(packed[i]) }, { flat(one_by_one[i]) }
    for k = 1, #a do
      diff = math.max(diff, math.abs(a[k] - b[k]))
      same = same and a[k] == b[k]
    end
  end
  say("many_" .. alg .. "_maxdiff", diff)
  say("many_" .. alg .. "_identical", tostring(same))
end
-- mixed dtypes go to separate buffers
local mixed = { mtl.tensor({ rank, 1 }), mtl.tensor({ rank, 2 }, "int64") }
local h = dist.iallreduce_many(mixed)
say("mixed_buffers", h:buffers())
h:wait()
say("mixed", mixed[1]:totable()[1], mixed[1]:totable()[2], mixed[2]:totable()[1], mixed[2]:totable()[2])

-- nonblocking single tensor: test until done
local x = mtl.ones(1000) * (rank + 1)
local hx = dist.iallreduce(x, "sum")
local polls = 0
while not hx:test() do polls = polls + 1 end
say("iallreduce", x:totable()[1], x:totable()[1000], hx:wait() == x and "same" or "other")

-- ranks that call differently get the same error on every rank
local ok, err = pcall(dist.allreduce, mtl.zeros(2, rank + 1))
say("mismatch", tostring(ok), err)
ok, err = pcall(dist.broadcast, mtl.zeros(2), rank == 0 and 0 or size - 1)
say("mismatch_root", tostring(ok), err)
-- and the run goes on
dist.barrier()
say("info", dist.info().collectives, dist.info().library)
