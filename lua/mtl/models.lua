-- mtl.models: the architectures in models/, by name.
--   local m = mtl.models.build("mmoe", {input = 232, tasks = {...}, experts = 4})
-- Each architecture is a short Lua file in models/ returning an nn class.
local models = {}

models.names = { "shared_bottom", "esmm", "mmoe", "cgc", "ple", "dbmtl" }

function models.get(name)
  local ok, cls = pcall(require, "models." .. tostring(name))
  if not ok then
    error(string.format("mtl.models: unknown model '%s' (known: %s)", tostring(name),
      table.concat(models.names, ", ")), 2)
  end
  return cls
end

function models.build(name, opts)
  return models.get(name)(opts)
end

return models
