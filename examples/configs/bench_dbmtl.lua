-- SPEC.md's dbmtl (bench/SPEC.md section 3) on the benchmark data.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
return dofile(dir .. "bench_common.lua")("dbmtl")
