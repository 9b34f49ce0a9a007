-- The multi-task ranking benchmark (bench/SPEC.md; lua/mtl/bench.lua):
--   build/mtl bench/bench.lua --model mmoe --batch 1024 --threads 1 \
--       --train /tmp/mtlbench/train.csv --test /tmp/mtlbench/test.csv [--preset paper]
-- Prints a few lines, then one JSON line with torch_ref.py's keys.
local ok, err = pcall(require("mtl.bench").run, arg)
if not ok then
  io.stderr:write("mtl bench: ", tostring(err), "\n")
  os.exit(2)
end
