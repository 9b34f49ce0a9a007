-- The UCI census-income (KDD) training file as the CSV that EasyRec's
-- census-income MMoE sample (samples/emr_script/mmoe/mmoe_census_income.config)
-- reads from Hive: label_1 (income > 50k), label_2 (never married: the MMoE
-- paper's second task), then the 40 other columns in the file's order (the
-- marital status and the income become the labels), no header, each value
-- without its leading space.
--
--   build/mtl tools/census_csv.lua ../shared/data/census/census-income.data.bz2 OUT_DIR [every]
--
-- writes OUT_DIR/train.csv and OUT_DIR/test.csv: every `every`-th row (default
-- 5, a fifth) is held out for testing, the rest trains. Reads .bz2 through
-- bzcat, anything else as plain text.
local path, out, every = arg[1], arg[2], tonumber(arg[3] or 5)
if not path or not out then
  io.stderr:write("usage: mtl tools/census_csv.lua census-income.data[.bz2] OUT_DIR [every]\n")
  os.exit(2)
end
local input = path:match("%.bz2$") and assert(io.popen("bzcat '" .. path:gsub("'", "'\\''") .. "'")) or assert(io.open(path))
os.execute("mkdir -p '" .. out:gsub("'", "'\\''") .. "'")
local train = assert(io.open(out .. "/train.csv", "w"))
local test = assert(io.open(out .. "/test.csv", "w"))
local n, counts = 0, { 0, 0 }
for line in input:lines() do
  local f = {}
  for v in (line .. ","):gmatch("%s*(.-),") do f[#f + 1] = v:gsub("%s+$", "") end
  if #f == 42 then
    n = n + 1
    local income = f[42]:find("50000+", 1, true) and 1 or 0
    local never = f[8] == "Never married" and 1 or 0
    local row = { income, never }
    for i = 1, 41 do if i ~= 8 then row[#row + 1] = f[i] end end
    local text = table.concat(row, ",")
    if text:find('"', 1, true) then error("census_csv: row " .. n .. " holds a quote") end
    if n % every == 0 then test:write(text, "\n"); counts[2] = counts[2] + 1
    else train:write(text, "\n"); counts[1] = counts[1] + 1 end
  elseif #line > 0 then
    error(string.format("census_csv: row %d has %d fields, expected 42", n + 1, #f))
  end
end
input:close()
train:close()
test:close()
print(string.format("%d rows: %d in %s/train.csv, %d in %s/test.csv", n, counts[1], out, counts[2], out))
