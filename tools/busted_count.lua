-- Reads busted's JSON output (`busted -o json`) on stdin, prints every
-- failure, error and pending test to stderr, and prints one line
-- "<passed> <failed>" to stdout. Pending tests count as failed (the suite
-- allows none); a run that produced no JSON (a crash) counts one failure.
local cjson = require "cjson"

local last
for line in io.lines() do
  if line:sub(1, 1) == "{" then last = line else io.stderr:write(line, "\n") end
end
if not last then
  io.stderr:write("busted produced no result (crashed?)\n")
  print("0 1")
  return
end
local ok, r = pcall(cjson.decode, last)
if not ok then
  io.stderr:write("cannot parse busted's JSON: ", tostring(r), "\n")
  print("0 1")
  return
end

local function report(kind, list)
  for _, t in ipairs(list or {}) do
    local el = t.element or {}
    local where = el.trace and (el.trace.short_src .. ":" .. tostring(el.trace.currentline)) or "?"
    io.stderr:write(string.format("%s: %s (%s)\n  %s\n", kind, t.name or "?", where,
                                  tostring(t.message or (t.trace and t.trace.message) or "")))
  end
end
report("FAILED", r.failures)
report("ERROR", r.errors)
report("PENDING (not allowed)", r.pendings)
local failed = #(r.failures or {}) + #(r.errors or {}) + #(r.pendings or {})
io.stderr:write(string.format("busted: %d passed, %d failed, %d errors, %d pending in %.1f s\n",
  #(r.successes or {}), #(r.failures or {}), #(r.errors or {}), #(r.pendings or {}), r.duration or 0))
print(#(r.successes or {}) .. " " .. failed)
