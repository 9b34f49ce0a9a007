-- What `require "mtl"` sets in the process before the core (and OpenBLAS)
-- load (lua/mtl/init.lua): OpenBLAS's idle threads sleep after 2^4 cycles
-- instead of spinning for 2^28, unless the user chose a value.
local shell = require "helpers.shell"

local function getenv_under_mtl(env)
  return (shell.run(string.format("cd %s && %s %s -e 'io.write(tostring(os.getenv(\"OPENBLAS_THREAD_TIMEOUT\")))'",
    shell.quote(shell.root), env, shell.quote(shell.launcher))))
end

describe("require 'mtl'", function()
  it("sets OPENBLAS_THREAD_TIMEOUT to 4 when the user did not", function()
    assert.are.equal("4", getenv_under_mtl("env -u OPENBLAS_THREAD_TIMEOUT"))
  end)

  it("keeps the user's OPENBLAS_THREAD_TIMEOUT", function()
    assert.are.equal("9", getenv_under_mtl("OPENBLAS_THREAD_TIMEOUT=9"))
  end)
end)
