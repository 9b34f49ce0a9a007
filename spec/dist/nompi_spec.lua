-- A build without MPI (-DMTL_MPI=OFF; CMake did not find it) still has
-- mtl.dist as one rank, and says how to get MPI when a distributed run is
-- asked for: started by mpirun, or a call that expects several ranks. The
-- spec builds the module into build-nompi/ (kept; later runs rebuild what
-- changed).
local shell = require "helpers.shell"
local mpirun = require "dist.mpirun"

local quote, run = shell.quote, shell.run
local dir = shell.root .. "/build-nompi"
local how = "install Open MPI (apt-get install openmpi-bin libopenmpi-dev) and rebuild (bash tools/setup.sh)"

describe("mtl.dist without MPI #slow", function()
  local log = run(string.format("cmake -S %s -B %s -DCMAKE_BUILD_TYPE=Release -DMTL_WERROR=ON -DMTL_MPI=OFF 2>&1 && "
    .. "make -C %s -j2 --no-print-directory mtl_lua 2>&1; echo status $?", quote(shell.root), quote(dir), quote(dir)))
  local launcher = dir .. "/mtl"

  it("builds, and says so at configure time", function()
    assert.truthy(log:find("status 0\n", 1, true), log)
    assert.truthy(log:find("mtl.dist: without MPI (one rank; apt-get install openmpi-bin libopenmpi-dev for "
      .. "distributed runs)", 1, true), log)
  end)

  it("runs as rank 0 of 1 with the same API", function()
    local out = run(quote(launcher) .. [[ -e 'local mtl = require "mtl"; local d = mtl.dist
      local t = d.allreduce(mtl.tensor({1, 2}), "mean"); local g, c = d.allgather(t)
      print(d.rank(), d.size(), d.info().with_mpi, g:numel(), c[1])' 2>&1]])
    assert.are.equal("0\t1\tfalse\t2\t2\n", out)
  end)

  it("refuses to start as one of several ranks, saying how to get MPI", function()
    local out = run("OMPI_COMM_WORLD_SIZE=2 " .. quote(launcher) .. " -e 'require \"mtl\"' 2>&1; echo status $?")
    assert.truthy(out:find("mtl.dist: this process is one of 2 ranks (OMPI_COMM_WORLD_SIZE=2: started by mpirun), "
      .. "but this mtl is built without MPI (CMake did not find it, or -DMTL_MPI=OFF); " .. how, 1, true), out)
    assert.truthy(out:find("status 1\n", 1, true), out)
    local status, stdout, stderr = mpirun.run(2, "-e 'require \"mtl\"; print(\"started\")'", { launcher = launcher })
    assert.are_not.equal(0, status)
    assert.is_nil(stdout:find("started"))
    assert.truthy(stderr:find("but this mtl is built without MPI", 1, true), stderr)
  end)

  it("names the missing MPI when a call expects several ranks", function()
    local out = run(quote(launcher) .. [[ -e 'local mtl = require "mtl"; mtl.dist.broadcast(mtl.ones(2), 1)' 2>&1]])
    assert.truthy(out:find("mtl.dist.broadcast: root 1 out of range (the ranks are 0..0) (this mtl is built without "
      .. "MPI, so it runs as one rank: apt-get install openmpi-bin libopenmpi-dev and rebuild with bash "
      .. "tools/setup.sh)", 1, true), out)
  end)
end)
