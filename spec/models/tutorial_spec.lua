-- docs/new_architecture.md walks through models/aitm.lua: the page shows the
-- file exactly, and the file stays short. (The model itself is checked by
-- spec/models/aitm_spec.lua; the page's lua samples run in examples_spec.lua.)
-- Also what the page says of the registry: a model under models/ is found by
-- name, and a file that fails to load says why.
local check = require "helpers.check"
local read = require("helpers.shell").read

-- the first ```lua block of the tutorial
local function first_lua_block(text)
  return text:match("\n```lua\n(.-\n)```\n")
end

describe("the tutorial (docs/new_architecture.md)", function()
  it("shows models/aitm.lua exactly, and the file is under 100 lines", function()
    local file = read("models/aitm.lua")
    local lines = select(2, file:gsub("\n", "\n"))
    assert.is_true(lines < 100, "models/aitm.lua has " .. lines .. " lines")
    assert.are.equal(file, first_lua_block(read("docs/new_architecture.md")))
  end)

  it("once under models/, a name builds it; a file that fails to load says why", function()
    local models = require "mtl.models"
    local AITM = require "models.aitm"
    package.preload["models.aitm_tutorial"] = function() return AITM end
    package.preload["models.aitm_broken"] = function() error("aitm_broken.lua:3: '=' expected near 'x'", 0) end
    local ok, err = pcall(function()
      local model = models.build("aitm_tutorial", { input = 4, tasks = { "click", "pay" } })
      assert.are.equal("AITM", model.__name)
      check.assert_error("mtl.models: model 'aitm_broken' failed to load: aitm_broken.lua:3: '=' expected near 'x'",
        models.get, "aitm_broken")
      check.assert_error("mtl.models: unknown model 'aitm_missing'", models.get, "aitm_missing")
    end)
    package.preload["models.aitm_tutorial"], package.preload["models.aitm_broken"] = nil, nil
    package.loaded["models.aitm_tutorial"] = nil
    assert(ok, err)
  end)
end)
