-- The cost model of a data-parallel training step (docs/distributed.md, "The
-- cost model"): bytes per step per rank and step time of the SPEC MMoE at N
-- ranks, projected to other machines. No measurement: it prints the model's
-- numbers from the figures below (measured on this machine, see the docs).
--
--   luajit bench/dist_cost_model.lua                 # the projection table (8, 32, 128 nodes; 10, 25 Gbit/s)
--   luajit bench/dist_cost_model.lua check N B RATE...  # N ranks, global batch B: what bench/dist_netns.sh measures
--
-- Per rank and step, with P dense parameters, local batch b, L lookups and u
-- distinct table rows per example, embedding dim d, link rate W bytes/s,
-- per-message latency a:
--   dense allreduce (mtl's ordered: an all-to-all of 1/N segments, then an
--   allgather of the sums): 2 (N-1)/N 4P bytes out (and in), 2 (N-1) messages
--   replicated tables (today): every rank's distinct rows to every rank:
--   (N-1) u b (8 + 4d) bytes out (and in), N-1 messages; every rank applies
--   N u b rows
--   row-sharded tables (all-to-all): ids out, vectors back, gradients out:
--   (N-1)/N b L (8 + 4d + 4d) bytes out (and in), 3 (N-1) messages; each
--   owner applies about u b rows
--   step = compute(b) + dense optimizer + rows applied x per-row cost
--          + bytes / W + a x messages
local M = {
  P = 388682,        -- dense float32 parameters of the SPEC MMoE (mtl bench --model mmoe)
  L = 17.5,          -- lookups per example: 13 single-id fields + tags (4.5 ids on average)
  u = 7.8,           -- distinct (table, id) rows per example in a batch of 512-1024 (measured: 7,950 per 1024)
  d = 16,            -- embedding dim
  compute_per_row = 28.2e-3 / 1024, -- forward + backward, one core (minimum measured at b = 1024: 28.2 ms)
  dense_opt = 0.45e-3,              -- Adam over P (of the 0.86 ms optimizer step measured at 1 rank)
  row_update = 50e-9,               -- the lazy Adam update of one table row (the other 0.4 ms / 7,950 rows)
  latency = 30e-6,                  -- per message on 10/25 GbE with TCP (assumed; netem is absent here)
}

local function rate_bytes(gbit) return gbit * 1e9 / 8 end

-- {bytes =, messages =, seconds =, parts} of one step at N ranks, local batch b.
function M.step(N, b, gbit, sharded)
  local W = rate_bytes(gbit)
  local dense_bytes = 2 * (N - 1) / N * 4 * M.P
  local dense_msgs = 2 * (N - 1)
  local emb_bytes, emb_msgs, rows_applied
  if sharded then
    emb_bytes = (N - 1) / N * b * M.L * (8 + 8 * M.d)
    emb_msgs = 3 * (N - 1)
    rows_applied = M.u * b
  else
    emb_bytes = (N - 1) * M.u * b * (8 + 4 * M.d)
    emb_msgs = N - 1
    rows_applied = N * M.u * b
  end
  if N == 1 then emb_bytes, emb_msgs = 0, 0 end
  local compute = b * M.compute_per_row + M.dense_opt + rows_applied * M.row_update
  local comm = (dense_bytes + emb_bytes) / W + M.latency * (dense_msgs + emb_msgs)
  return { dense_bytes = dense_bytes, emb_bytes = emb_bytes, messages = dense_msgs + emb_msgs, compute = compute,
           comm = comm, seconds = compute + comm }
end

local mode = arg[1]
if mode == "check" then
  -- what bench/dist_netns.sh measures: dist_bench --step's dense allreduce
  -- (P floats) and all-to-all step (1024 x 13 rows per rank: ids out,
  -- vectors back, gradients out), and mtl bench's communication (global
  -- batch B: the dense allreduce and the replicated tables' allgather)
  local N, B = tonumber(arg[2]) or 2, tonumber(arg[3]) or 1024
  print(string.format("N = %d, global batch %d (local %.0f); modelled ms per step", N, B, B / N))
  print(string.format("%-9s %12s %10s %12s %10s %14s %12s", "link", "dense B", "dense ms", "a2a B", "a2a ms",
    "sparse B", "train ms"))
  for i = 4, #arg do
    local n, unit = arg[i]:lower():match("^([%d.]+)([gm])bit$") -- tc's spelling: 500mbit, 10gbit
    local W = rate_bytes(assert(tonumber(n), "a rate like 500mbit or 10gbit") / (unit == "m" and 1000 or 1))
    local s = M.step(N, B / N, W * 8 / 1e9, false)
    local a2a = (N - 1) / N * 1024 * 13 * (8 + 8 * M.d)
    print(string.format("%-9s %12.0f %10.2f %12.0f %10.2f %14.0f %12.2f", arg[i], s.dense_bytes,
      (s.dense_bytes / W + M.latency * 2 * (N - 1)) * 1e3, a2a, (a2a / W + M.latency * 3 * (N - 1)) * 1e3, s.emb_bytes,
      s.comm * 1e3))
  end
  return
end

local b = 1024
local one = M.step(1, b, 10, false).seconds
print(string.format("weak scaling: local batch %d per rank (one core each); one rank: %.1f ms a step, %.0f ex/s", b,
  one * 1e3, b / one))
print(string.format("%-6s %-7s %-11s %12s %12s %9s %9s %12s %7s", "nodes", "link", "tables", "dense MB", "emb MB",
  "comm ms", "step ms", "ex/s", "eff."))
for _, N in ipairs({ 8, 32, 128 }) do
  for _, gbit in ipairs({ 10, 25 }) do
    for _, sharded in ipairs({ false, true }) do
      local s = M.step(N, b, gbit, sharded)
      print(string.format("%-6d %-7s %-11s %12.2f %12.2f %9.2f %9.2f %12.0f %6.0f%%", N, gbit .. "G",
        sharded and "sharded" or "replicated", s.dense_bytes / 1e6, s.emb_bytes / 1e6, s.comm * 1e3, s.seconds * 1e3,
        N * b / s.seconds, 100 * one / s.seconds))
    end
  end
end
