-- mtl.config.util: small helpers shared by the config readers (no mtl.core).
local util = {}

-- loadfile for Lua source only (mode "t"): a precompiled chunk (LuaJIT
-- bytecode) is refused with a message that says so. Returns the chunk, or nil
-- and the message.
function util.loadfile(path)
  local chunk, err = loadfile(path, "t")
  if chunk then return chunk end
  if tostring(err):find("wrong mode", 1, true) then
    return nil, string.format("%s: is precompiled Lua (bytecode); mtl loads Lua source text only", path)
  end
  return nil, err
end

function util.deep_copy(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[util.deep_copy(k)] = util.deep_copy(x) end
  return out
end

-- A list: a table whose keys are exactly 1..n (n >= 1).
function util.is_list(t)
  if type(t) ~= "table" then return false end
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n > 0 and n == #t
end

function util.sorted_keys(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = k end
  table.sort(ks, function(a, b)
    if type(a) == type(b) then return a < b end
    return type(a) == "number"
  end)
  return ks
end

-- Optimal string alignment distance (Levenshtein plus adjacent transpositions),
-- so "exprets" is one edit from "experts".
function util.distance(a, b)
  local la, lb = #a, #b
  local d = {}
  for i = 0, la do d[i] = { [0] = i } end
  for j = 0, lb do d[0][j] = j end
  for i = 1, la do
    for j = 1, lb do
      local cost = a:byte(i) == b:byte(j) and 0 or 1
      local v = math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
      if i > 1 and j > 1 and a:byte(i) == b:byte(j - 1) and a:byte(i - 1) == b:byte(j) then
        v = math.min(v, d[i - 2][j - 2] + 1)
      end
      d[i][j] = v
    end
  end
  return d[la][lb]
end

-- Words longer than this get no typo suggestion (only the prefix one below):
-- the distance costs #word * #candidate, and a name from a damaged file may
-- be megabytes long.
local MAX_TYPO_LENGTH = 256

-- The candidate closest to word when it is a plausible typo of it, else nil.
-- candidates: a list of strings or a set {name = true}.
function util.suggest(word, candidates)
  if type(word) ~= "string" then return nil end
  local list = {}
  if util.is_list(candidates) then list = candidates else list = util.sorted_keys(candidates) end
  local best, best_d
  local lw = word:lower()
  local limit = #word <= 3 and 1 or (#word <= 6 and 2 or 3)
  for _, c in ipairs(list) do
    -- the distance is at least the difference in length: a candidate further
    -- than limit cannot be the suggestion, so its distance is not computed
    if type(c) == "string" and #word <= MAX_TYPO_LENGTH and math.abs(#c - #word) <= limit then
      local d = util.distance(lw, c:lower())
      if best_d == nil or d < best_d then best, best_d = c, d end
    end
  end
  if best and best_d <= limit and best_d < #word then return best end
  -- a prefix of a candidate ("item" for "item_id"), or a candidate that is one
  if #lw >= 3 then
    for _, c in ipairs(list) do
      if type(c) == "string" and #c >= 3 then
        local lc = c:lower()
        if lc:sub(1, #lw) == lw or lw:sub(1, #lc) == lc then return c end
      end
    end
  end
  return nil
end

-- A string for a message: one longer than n bytes (default 1000: a name from
-- a damaged file may be megabytes long) is cut, saying how long it was.
function util.clip(v, n)
  n = n or 1000
  if type(v) == "string" and #v > n then return v:sub(1, n) .. string.format("... (%d bytes)", #v) end
  return v
end

-- " (did you mean 'x'?)" or "".
function util.did_you_mean(word, candidates)
  local s = util.suggest(word, candidates)
  return s and string.format(" (did you mean '%s'?)", s) or ""
end

-- A value as shown in messages: numbers plainly, strings quoted, tables by kind.
function util.show(v)
  local t = type(v)
  if t == "string" then return string.format("%q", v) end
  if t == "number" then
    if v ~= v then return "nan" end
    if v == math.huge then return "inf" end
    if v == -math.huge then return "-inf" end
    if v == math.floor(v) and math.abs(v) < 1e15 then return string.format("%d", v) end
    return string.format("%.17g", v):gsub("(%d)0+e", "%1e")
  end
  if t == "table" then return util.is_list(v) and "a list" or "a table" end
  if t == "nil" then return "nothing" end
  return tostring(v)
end

-- The directory part of a path ("." when there is none).
function util.dirname(path)
  return path:match("^(.*)/[^/]*$") or "."
end

-- path resolved against dir, unless already absolute.
function util.join(dir, path)
  if path:sub(1, 1) == "/" or dir == "." then return path end
  return dir .. "/" .. path
end

-- The file kind by extension: "lua", "easyrec" or nil.
function util.kind_of(path)
  local ext = path:match("%.([%w_]+)$")
  ext = ext and ext:lower()
  if ext == "lua" then return "lua" end
  if ext == "config" or ext == "pbtxt" or ext == "prototxt" then return "easyrec" end
  return nil
end

return util
