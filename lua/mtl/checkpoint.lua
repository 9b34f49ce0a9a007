-- Checkpoints: mtl.save(path, value) and mtl.load(path) (docs/checkpoint.md).
--
-- The C core (runtime/src/checkpoint.c) writes and reads the records; this file
-- walks Lua values: nil, booleans, numbers, strings, LuaJIT int64/uint64
-- cdata, tensors, plain tables (nested, no cycles) and objects. An object is a
-- table or userdata with a state_dict() method and a type name in
-- `__typename` (in its metatable, or reachable by indexing it); it is stored
-- as its type name and its state, and mtl.load rebuilds it with the loader
-- registered by mtl.checkpoint.register(type_name, loader). Nothing read from a
-- file is ever executed. mtl.checkpoint.list(dir) lists a training run's
-- step-N.ckpt files.
local ffi = require "ffi"
local sys = require "mtl.sys"

local format, concat, sort = string.format, table.concat, table.sort
local type, next, rawget, getmetatable, pcall, tostring = type, next, rawget, getmetatable, pcall, tostring

local MAX_DEPTH = 200 -- deeper nesting is refused on save and on load
local ENOENT, ENOTDIR = 2, 20

local ok_new, table_new = pcall(require, "table.new")
if not ok_new then table_new = function() return {} end end

local int64_t, uint64_t = ffi.typeof("int64_t"), ffi.typeof("uint64_t")
local int64_box, uint64_box = ffi.typeof("int64_t[1]"), ffi.typeof("uint64_t[1]")

-- Order of hash keys in the file (so one value always gives the same bytes):
-- numbers, then strings, then booleans.
local KEY_RANK = { number = 1, string = 2, boolean = 3 }
local function key_less(a, b)
  local ra, rb = KEY_RANK[type(a)], KEY_RANK[type(b)]
  if ra ~= rb then return ra < rb end
  if ra == 3 then return (not a) and b end
  return a < b
end

-- "value.model.layers[2]["odd key"]:state_dict()" for error messages.
local STATE = {} -- marks the step from an object into its state
local function describe(stack, n)
  local parts = { "value" }
  for i = 1, n do
    local k = stack[i]
    if k == STATE then
      parts[#parts + 1] = ":state_dict()"
    elseif type(k) == "string" and k:match("^[%a_][%w_]*$") then
      parts[#parts + 1] = "." .. k
    elseif type(k) == "string" then
      parts[#parts + 1] = format("[%q]", k)
    elseif type(k) == "number" then
      parts[#parts + 1] = format("[%.17g]", k)
    else
      parts[#parts + 1] = "[" .. tostring(k) .. "]"
    end
  end
  return concat(parts)
end

-- The type name and state_dict method of a table or userdata (either may be
-- nil). Indexing a userdata may raise; that counts as "not there".
local function callable(f)
  if type(f) == "function" then return true end
  local mt = getmetatable(f)
  return type(mt) == "table" and type(rawget(mt, "__call")) == "function"
end

local function object_info(v)
  local mt = getmetatable(v)
  local type_name = type(mt) == "table" and rawget(mt, "__typename") or nil
  local ok, state_dict = pcall(function() return v.state_dict end)
  if not ok or not callable(state_dict) then state_dict = nil end
  if type_name == nil then
    local ok2, tn = pcall(function() return v.__typename end)
    if ok2 then type_name = tn end
  end
  return type_name, state_dict
end

return function(mtl, core)
  local records = core.checkpoint_io -- the C record writer and reader
  mtl.checkpoint_io = nil -- init.lua copies every core entry; this one is internal
  local tensor_mt = core.Tensor_mt
  local loaders = {} -- type name -> function(state) returning the object

  local checkpoint = {}
  mtl.checkpoint = checkpoint

  -- mtl.checkpoint.register(type_name, loader): mtl.load calls loader(state)
  -- for each object of that type (state is what its state_dict() returned).
  -- Registering a name again replaces its loader.
  function checkpoint.register(type_name, loader)
    if type(type_name) ~= "string" or #type_name < 1 or #type_name > 255 then
      error(format("mtl.checkpoint.register: expected a type name of 1 to 255 bytes for argument 1, got %s",
        type(type_name) == "string" and format("%q", type_name) or type(type_name)), 2)
    end
    if not callable(loader) then
      error(format("mtl.checkpoint.register: expected a loader function for argument 2, got %s", type(loader)), 2)
    end
    loaders[type_name] = loader
  end

  -- The loader registered for type_name, or nil.
  function checkpoint.loader(type_name) return loaders[type_name] end

  -- mtl.checkpoint.list(dir): the complete step checkpoints of a training
  -- run's checkpoints directory, oldest first: {{step = N, path =
  -- "dir/step-N.ckpt", manifest = "dir/step-N.manifest"}, ...}. A step
  -- checkpoint is step-N.ckpt (the replicated state) plus, for a run with
  -- sharded tables, one file per rank, and is complete once its manifest
  -- step-N.manifest, written last, exists (write_manifest). In a directory
  -- without any manifest (a run from before manifests), every step-N.ckpt
  -- counts (manifest = nil). A directory that does not exist (or is a file)
  -- has none; one that cannot be read is an error.
  function checkpoint.list(dir)
    if type(dir) ~= "string" then
      error(format("mtl.checkpoint.list: expected a directory name (string) for argument 1, got %s", type(dir)), 2)
    end
    local names, err, errno = sys.list_dir(dir)
    if not names then
      if errno == ENOENT or errno == ENOTDIR then return {} end
      error((err:gsub("^mtl%.sys%.list_dir", "mtl.checkpoint.list")), 2)
    end
    local manifests, any = {}, false
    for _, name in ipairs(names) do
      local n = name:match("^step%-(%d+)%.manifest$")
      if n then manifests[tonumber(n)], any = dir .. "/" .. name, true end
    end
    local out = {}
    for _, name in ipairs(names) do
      local n = name:match("^step%-(%d+)%.ckpt$")
      n = n and tonumber(n)
      if n and (manifests[n] or not any) then
        out[#out + 1] = { step = n, path = dir .. "/" .. name, manifest = manifests[n] }
      end
    end
    sort(out, function(a, b) return a.step < b.step end)
    return out
  end

  local MANIFEST_FORMAT = "mtl-checkpoint-manifest-1"

  -- mtl.checkpoint.write_manifest(dir, step, info): marks the checkpoint of
  -- `step` complete by writing dir/step-N.manifest (atomically, last): {format
  -- = "mtl-checkpoint-manifest-1", step =, ranks =, files = {names in dir},
  -- tables = {name = placement}} from info {ranks, files, tables}. Every
  -- listed file must exist. Returns the manifest's path.
  function checkpoint.write_manifest(dir, step, info)
    for _, f in ipairs(info.files) do
      if not sys.exists(dir .. "/" .. f) then
        error(format("mtl.checkpoint.write_manifest: %s/%s does not exist (a checkpoint's files are written before its manifest)", dir, f), 2)
      end
    end
    local path = format("%s/step-%d.manifest", dir, step)
    mtl.save(path, { format = MANIFEST_FORMAT, step = step, ranks = info.ranks or 1, files = info.files,
                     tables = info.tables or {} })
    return path
  end

  -- mtl.checkpoint.read_manifest(dir, step): the manifest of a step
  -- checkpoint, or nil when it has none.
  function checkpoint.read_manifest(dir, step)
    local path = format("%s/step-%d.manifest", dir, step)
    if not sys.exists(path) then return nil end
    local m = mtl.load(path)
    if type(m) ~= "table" or m.format ~= MANIFEST_FORMAT then
      error(format("mtl.checkpoint.read_manifest: %s is not a checkpoint manifest (%s)", path, MANIFEST_FORMAT), 2)
    end
    return m
  end

  -- mtl.checkpoint.remove(entry): removes a step checkpoint of list(): its
  -- manifest first (the checkpoint is then incomplete, never half there),
  -- then its files.
  function checkpoint.remove(entry)
    local dir = entry.path:match("^(.*)/[^/]*$") or "."
    local files = { entry.path }
    if entry.manifest then
      local m = checkpoint.read_manifest(dir, entry.step)
      if m then
        files = {}
        for i, f in ipairs(m.files) do files[i] = dir .. "/" .. f end
      end
      os.remove(entry.manifest)
    end
    for _, f in ipairs(files) do os.remove(f) end
  end

  -- ---- save -------------------------------------------------------------------
  local save_value
  -- Raises "mtl.save: <file>: <where in the value>: <what>".
  local function save_error(s, depth, fmt, ...)
    error(format("mtl.save: %s: %s: " .. fmt, s.path, describe(s.stack, depth), ...), 0)
  end

  function save_value(s, v, depth)
    local w = s.w
    local t = type(v)
    if t == "nil" then -- (not v == nil: a NULL pointer cdata equals nil)
      w:nil_()
    elseif t == "boolean" then
      w:boolean(v)
    elseif t == "number" then
      w:number(v)
    elseif t == "string" then
      w:string(v)
    elseif t == "cdata" then
      if ffi.istype(int64_t, v) then
        w:int64(ffi.string(int64_box(v), 8))
      elseif ffi.istype(uint64_t, v) then
        w:uint64(ffi.string(uint64_box(v), 8))
      else
        save_error(s, depth, "cannot save a cdata of type %s (only int64_t and uint64_t)", tostring(ffi.typeof(v)))
      end
    elseif t == "userdata" and getmetatable(v) == tensor_mt then
      w:tensor(v)
    elseif t == "table" or t == "userdata" then
      if s.visiting[v] then
        save_error(s, depth, "cycle: the value refers back to %s, which contains it", describe(s.stack, s.visiting[v]))
      end
      if depth >= MAX_DEPTH then save_error(s, depth, "nesting deeper than %d levels", MAX_DEPTH) end
      local type_name, state_dict = object_info(v)
      if state_dict ~= nil then
        -- an object: type name, then its state
        if type(type_name) ~= "string" then
          save_error(s, depth, "has a state_dict method but no __typename (set one in its metatable and register a loader with mtl.checkpoint.register)")
        end
        if not loaders[type_name] then
          save_error(s, depth, "is a '%s' object, but no loader is registered for '%s' (mtl.checkpoint.register)", type_name, type_name)
        end
        local ok, state = pcall(state_dict, v)
        if not ok then save_error(s, depth, "state_dict() failed: %s", tostring(state)) end
        s.visiting[v] = depth
        w:object(type_name)
        s.stack[depth + 1] = STATE
        save_value(s, state, depth + 1)
        s.visiting[v] = nil
      elseif t == "userdata" then
        save_error(s, depth, "cannot save a userdata that is not a tensor and has no state_dict method")
      elseif getmetatable(v) ~= nil then
        save_error(s, depth, "cannot save a table with a metatable (give it a state_dict method and a __typename, or save a plain table)")
      else
        s.visiting[v] = depth
        -- array part: 1..n without holes; everything else is the hash part
        local n = 0
        while rawget(v, n + 1) ~= nil do n = n + 1 end
        local keys = {}
        for k in next, v do
          local kt = type(k)
          if not (kt == "number" and k >= 1 and k <= n and k % 1 == 0) then
            if not KEY_RANK[kt] then
              save_error(s, depth, "has a key of type %s (keys must be strings, numbers or booleans)", kt)
            end
            keys[#keys + 1] = k
          end
        end
        sort(keys, key_less)
        w:table(n, #keys)
        local stack = s.stack
        for i = 1, n do
          stack[depth + 1] = i
          save_value(s, rawget(v, i), depth + 1)
        end
        for i = 1, #keys do
          local k = keys[i]
          stack[depth + 1] = k
          save_value(s, k, depth + 1)
          save_value(s, rawget(v, k), depth + 1)
        end
        s.visiting[v] = nil
      end
    else
      save_error(s, depth, "cannot save a %s", t)
    end
  end

  -- mtl.save(path, value): writes value to path atomically (a temporary file
  -- renamed over path once complete and synced). On error nothing changes.
  function mtl.save(path, value)
    if type(path) ~= "string" then
      error(format("mtl.save: expected a file name (string) for argument 1, got %s", type(path)), 2)
    end
    local w = records.writer(path)
    local ok, err = pcall(save_value, { w = w, path = path, stack = {}, visiting = {} }, value, 0)
    if ok then
      ok, err = pcall(w.commit, w) -- removes the temporary file itself on error
    else
      w:abort()
    end
    if not ok then error(err, 0) end
  end

  -- ---- load -------------------------------------------------------------------
  local load_value
  local function load_error(path, fmt, ...)
    error(format("mtl.load: %s: " .. fmt, path, ...), 0)
  end

  function load_value(r, path, depth)
    local offset = r:offset()
    local kind, a, b = r:read()
    if kind == "nil" then return nil end
    if kind == "boolean" or kind == "number" or kind == "string" or kind == "tensor" then return a end
    if kind == "int64" or kind == "uint64" then
      local box = kind == "int64" and int64_box() or uint64_box()
      ffi.copy(box, a, 8)
      return box[0]
    end
    if kind == "table" then
      if depth >= MAX_DEPTH then load_error(path, "nesting deeper than %d levels at offset %d", MAX_DEPTH, offset) end
      -- the counts were checked against the bytes left; still presize modestly
      local t = table_new(a < 65536 and a or 65536, b < 65536 and b or 65536)
      for i = 1, a do t[i] = load_value(r, path, depth + 1) end
      for _ = 1, b do
        local key_offset = r:offset()
        local k = load_value(r, path, depth + 1)
        local kt = type(k)
        if not KEY_RANK[kt] or k ~= k then
          load_error(path, "corrupted table at offset %d: the key at offset %d is %s (keys must be strings, numbers or booleans)",
            offset, key_offset, k ~= k and "NaN" or "a " .. kt)
        end
        t[k] = load_value(r, path, depth + 1)
      end
      return t
    end
    if kind == "object" then
      if depth >= MAX_DEPTH then load_error(path, "nesting deeper than %d levels at offset %d", MAX_DEPTH, offset) end
      local loader = loaders[a]
      if not loader then
        load_error(path, "the object at offset %d has type '%s', which has no registered loader (mtl.checkpoint.register)",
          offset, a)
      end
      local state = load_value(r, path, depth + 1)
      local ok, obj = pcall(loader, state)
      if not ok then load_error(path, "the loader for '%s' failed on the object at offset %d: %s", a, offset, tostring(obj)) end
      return obj
    end
    load_error(path, "unexpected %s record at offset %d (expected a value)", kind, offset)
  end

  -- mtl.load(path): the value saved by mtl.save.
  function mtl.load(path)
    if type(path) ~= "string" then
      error(format("mtl.load: expected a file name (string) for argument 1, got %s", type(path)), 2)
    end
    local r = records.reader(path)
    local ok, value = pcall(function()
      local v = load_value(r, path, 0)
      local offset = r:offset()
      local kind = r:read()
      if kind ~= "end" then
        error(format("mtl.load: %s: expected the end record at offset %d, found a %s record", path, offset, kind), 0)
      end
      return v
    end)
    r:close()
    if not ok then error(value, 0) end
    return value
  end
end
