-- mtl.models: the architectures in models/, by name.
--   local m = mtl.models.build("mmoe", {input = 232, tasks = {...}, experts = 4})
-- Each architecture is a short Lua file in models/ returning an nn class.
local models = {}

models.names = { "shared_bottom", "esmm", "mmoe", "cgc", "ple", "dbmtl" }

-- A model file that exists but fails to load (a syntax error, an error while
-- it runs) raises its own error, not "unknown model".
function models.get(name)
  local module = "models." .. tostring(name)
  local ok, cls = pcall(require, module)
  if not ok then
    if tostring(cls):find("module '" .. module .. "' not found", 1, true) then
      error(string.format("mtl.models: unknown model '%s' (known: %s)", tostring(name),
        table.concat(models.names, ", ")), 2)
    end
    error(string.format("mtl.models: model '%s' failed to load: %s", tostring(name), tostring(cls)), 2)
  end
  return cls
end

function models.build(name, opts)
  return models.get(name)(opts)
end

return models
