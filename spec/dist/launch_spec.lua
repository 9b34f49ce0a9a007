-- Launching under mpirun: the docs/distributed.md samples at 2 ranks (they
-- also run alone, as every docs sample), any mtl command (-e), and
-- bench/dist_bench.lua in its quick mode (that it runs and prints every
-- section; its numbers are not checked).
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

  it("runs the docs' training loop at 2 ranks, both ranks ending with the same loss", function()
    local stdout = run_sample(samples[2])
    local l0 = stdout:match("rank 0 of 2: loss (%S+)")
    assert(l0, stdout)
    assert.truthy(stdout:find("rank 1 of 2: loss " .. l0, 1, true), stdout)
  end)

  it("runs any mtl command as N ranks (mtl -e)", function()
    local status, stdout, stderr = mpirun.run(3, [[-e 'local d = require("mtl").dist
      print("rank " .. d.rank() .. " of " .. d.size())']])
    assert(status == 0, string.format("status %s\n%s\n%s", tostring(status), stdout, stderr))
    for r = 0, 2 do assert.truthy(stdout:find("rank " .. r .. " of 3\n", 1, true), stdout) end
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
end)
