-- Launching under mpirun: the docs/distributed.md samples at 2 ranks (they
-- also run alone, as every docs sample), any mtl command (-e), and
-- bench/dist_bench.lua in its quick and --step modes (that they run and print
-- their sections; the timings are not checked), and bench/dist_cost_model.lua
-- (its bytes against the formulas, its P against the model mtl bench builds,
-- the docs' projection against its output).
local shell = require "helpers.shell"
local mpirun = require "dist.mpirun"

local function docs_samples()
  local f = assert(io.open(shell.root .. "/docs/distributed.md"))
  local text = f:read("*a")
  f:close()
  local samples = {}
  for sample in text:gmatch("```lua\n(.-)```") do samples[#samples + 1] = sample end
  assert(#samples >= 2, "docs/distributed.md has fewer than 2 ```lua samples")
  return samples
end

-- Runs a sample at 2 ranks in a directory of its own; returns its stdout.
local function run_sample(sample)
  local dir = shell.tmpdir()
  local f = assert(io.open(dir .. "/sample.lua", "w"))
  f:write(sample)
  f:close()
  local status, stdout, stderr = mpirun.run(2, "sample.lua", { dir = dir })
  shell.run("rm -rf " .. shell.quote(dir))
  assert(status == 0, string.format("status %s\n%s\n%s", tostring(status), stdout, stderr))
  return stdout
end

describe("mtl.dist launch", function()
  local samples = docs_samples()

  it("runs the docs' collectives sample at 2 ranks", function()
    local stdout = run_sample(samples[1])
    assert.truthy(stdout:find("rank 0 of 2: ok (Open MPI", 1, true), stdout)
    assert.truthy(stdout:find("rank 1 of 2: ok (Open MPI", 1, true), stdout)
  end)

  -- the sample that contains `text`
  local function sample_with(text)
    for _, sample in ipairs(samples) do if sample:find(text, 1, true) then return sample end end
    error("no docs/distributed.md sample contains " .. text)
  end

  it("runs the docs' training loop at 2 ranks, both ranks ending with the same loss", function()
    local stdout = run_sample(sample_with("P:check(20, true)"))
    local l0 = stdout:match("rank 0 of 2: loss (%S+)")
    assert(l0, stdout)
    assert.truthy(stdout:find("rank 1 of 2: loss " .. l0, 1, true), stdout)
  end)

  it("runs the docs' sharded-table loop at 2 ranks, each rank holding half the rows", function()
    local stdout = run_sample(sample_with("shard.new("))
    assert.truthy(stdout:find("rank 0 of 2 holds 500 of 1000 rows", 1, true), stdout)
    assert.truthy(stdout:find("rank 1 of 2 holds 500 of 1000 rows", 1, true), stdout)
  end)

  it("runs any mtl command as N ranks (mtl -e)", function()
    local status, stdout, stderr = mpirun.run(3, [[-e 'local d = require("mtl").dist
      print("rank " .. d.rank() .. " of " .. d.size())']])
    assert(status == 0, string.format("status %s\n%s\n%s", tostring(status), stdout, stderr))
    for r = 0, 2 do assert.truthy(stdout:find("rank " .. r .. " of 3\n", 1, true), stdout) end
  end)

  it("sets Open MPI's non-blocking allreduce to Rabenseifner's algorithm unless the user chose one", function()
    local script = [[-e 'local d = require("mtl").dist
      d.barrier()
      print("r" .. d.rank() .. " " .. tostring(os.getenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm")))']]
    local status, stdout, stderr = mpirun.run(2, script)
    assert(status == 0, string.format("status %s\n%s\n%s", tostring(status), stdout, stderr))
    assert.are.equal("r0 3\nr1 3\n", stdout)
    status, stdout, stderr = mpirun.run(2, script, { env = "OMPI_MCA_coll_libnbc_iallreduce_algorithm=4" })
    assert(status == 0, string.format("status %s\n%s\n%s", tostring(status), stdout, stderr))
    assert.are.equal("r0 4\nr1 4\n", stdout)
  end)

  it("runs bench/dist_bench.lua (quick)", function()
    local status, stdout, stderr = mpirun.run(2, "bench/dist_bench.lua --quick")
    assert(status == 0, string.format("status %s\n%s\n%s", tostring(status), stdout, stderr))
    for _, line in ipairs({ "mtl.dist benchmark: 2 ranks, Open MPI", "dense gradients: 16 tensors", "barrier ",
      "allreduce 1 float32 (ordered)", "allreduce_many, buckets 4096 KiB (ordered)", "13312 x 16 vectors float32",
      "one step: ids out, vectors back, gradients out" }) do
      assert.truthy(stdout:find(line, 1, true), line .. " missing in\n" .. stdout)
    end
  end)

  it("runs bench/dist_bench.lua --step (what bench/dist_netns.sh runs): only a step's parts", function()
    local status, stdout, stderr = mpirun.run(2, "bench/dist_bench.lua --step")
    assert(status == 0, string.format("status %s\n%s\n%s", tostring(status), stdout, stderr))
    local rows = {}
    for line in stdout:gmatch("[^\n]+") do
      if line:match("%d+%.%d+") and not line:match("^mtl.dist") and not line:match("^dense") and not line:match("^embedding") then
        rows[#rows + 1] = line:match("^(.-)%s%s+[%d.]+")
      end
    end
    assert.are.same({ "allreduce 1 float32 (ordered)", "allreduce_many, buckets 4096 KiB (ordered)",
      "one step: ids out, vectors back, gradients out" }, rows)
  end)

  it("bench/dist_cost_model.lua: the model's P is the SPEC MMoE's; its bytes; the docs' projection is its output", function()
    local out = shell.run(string.format("cd %s && %s -e 'local b = require(\"mtl.bench\").build{preset = \"spec\", " ..
      "model = \"mmoe\"}; local n = 0; for _, p in ipairs(b:parameters()) do n = n + p:numel() end; print(n)'",
      shell.quote(shell.root), shell.quote(shell.launcher)))
    assert.are.equal("388682", out:match("%d+"))
    local check = shell.run(string.format("cd %s && luajit bench/dist_cost_model.lua check 3 1024 1gbit",
      shell.quote(shell.root)))
    -- 2 (N-1)/N 4P at N = 3; (N-1)/N x 1024 x 13 rows x (8 + 8 x 16) bytes; (N-1) u b 72 with b = 1024/3
    local dense, a2a, sparse = check:match("\n1gbit%s+(%d+)%s+[%d.]+%s+(%d+)%s+[%d.]+%s+(%d+)")
    assert.are.same({ 2072971, 1206955, 383386 }, { tonumber(dense), tonumber(a2a), tonumber(sparse) })
    assert.are.equal(math.floor(2 * 2 / 3 * 4 * 388682 + 0.5), tonumber(dense))
    assert.are.equal(math.floor(2 / 3 * 1024 * 13 * 136 + 0.5), tonumber(a2a))
    assert.are.equal(math.floor(2 * 7.8 * 1024 / 3 * 72 + 0.5), tonumber(sparse))
    local doc = shell.read(shell.root .. "/docs/distributed.md")
    local block = doc:match("\n%$ luajit bench/dist_cost_model.lua\n(.-)```")
    local projection = shell.run(string.format("cd %s && luajit bench/dist_cost_model.lua", shell.quote(shell.root)))
    assert.are.equal(projection, block)
  end)
end)
