-- The LuaJIT mtl runs on: the load-fusion bug of Debian 12's LuaJIT 2.1
-- (LuaJIT issue #1117) is worked around by require "mtl" (lua/mtl/init.lua).
require "mtl"

describe("LuaJIT under mtl", function()
  it("turns load fusion off on LuaJIT 2.1.0-beta3 and older", function()
    local flags = { select(2, jit.status()) }
    local fuse = false
    for _, f in ipairs(flags) do fuse = fuse or f == "fuse" end
    assert.are.equal(jit.version_num > 20100, fuse)
  end)

  -- The pattern of nn.Experts:__init that gave 1/sqrt(128) = 6.49e160 (the
  -- load of sizes[l] fused into sqrtsd across the store that grows sizes):
  -- every one of 3000 builds computes the right bounds.
  it("computes a table's values right when the table grows between load and use", function()
    local wrong = 0
    local function build(hidden, input)
      local sizes, bounds = { input }, {}
      for l, h in ipairs(hidden) do
        local n_in = sizes[l]
        sizes[l + 1] = h
        bounds[l] = 1 / math.sqrt(n_in)
        bounds["w" .. l] = { n_in * 2 }
      end
      return bounds
    end
    for _ = 1, 3000 do
      local b = build({ 256, 192, 128, 64 }, 272)
      if b[4] ~= 1 / math.sqrt(128) or b[1] ~= 1 / math.sqrt(272) then wrong = wrong + 1 end
    end
    assert.are.equal(0, wrong)
  end)
end)
