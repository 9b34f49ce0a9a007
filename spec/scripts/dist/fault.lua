-- A rank that hangs, exits early or fails; spec/dist/fault_spec.lua checks
-- that the others stop within the timeout with a message naming it.
--   fault.lua MODE RANK   MODE: hang | exit | error; RANK: the rank that does it
local mtl = require "mtl"
local dist = mtl.dist
local mode, culprit = arg[1], tonumber(arg[2])
dist.set_context("step 3")
dist.allreduce(mtl.ones(4))
if dist.rank() == culprit then
  if mode == "hang" then
    local ffi = require "ffi"
    ffi.cdef "unsigned int sleep(unsigned int seconds);"
    ffi.C.sleep(600) -- in C, as a stuck kernel or a deadlock would be
  elseif mode == "exit" then
    os.exit(0)
  elseif mode == "error" then
    error("bad input on rank " .. culprit)
  end
end
dist.allreduce(mtl.ones(4))
print("rank " .. dist.rank() .. " finished")
