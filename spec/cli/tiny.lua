-- Shared by spec/cli/*_spec.lua: a tiny generated two-task data set with a
-- known pattern, a tiny MMoE config over it, and helpers to run build/mtl.
--   click = 1 when a + b > 1 (flipped for 10% of rows)
--   pay   = 1 when clicked and item is even and a > 0.4
--   price = 0.5 .. 200 (some rows at or below 1)
local shell = require "helpers.shell"

local tiny = {}

local sh = shell.run
tiny.sh = sh
tiny.root = shell.root
tiny.mtl = shell.launcher

-- A fresh temporary directory.
function tiny.tmpdir()
  return (sh("mktemp -d /tmp/mtl-cli-XXXXXX"):gsub("%s+$", ""))
end

-- A simple deterministic generator (no dependence on mtl's stream).
function tiny.lcg(seed)
  local s = seed
  return function()
    s = (s * 1103515245 + 12345) % 2147483648
    return s / 2147483648
  end
end

-- Writes n rows to path; returns the rows as Lua tables.
function tiny.write_data(path, n, seed)
  local rnd = tiny.lcg(seed or 7)
  local f = assert(io.open(path, "w"))
  f:write("is_click,is_pay,user,item,price,a,b\n")
  local rows = {}
  for i = 1, n do
    local a, b = rnd(), rnd()
    local user, item = math.floor(rnd() * 20), math.floor(rnd() * 30)
    local price = (i % 7 == 0) and 0.5 + rnd() * 0.5 or 1 + rnd() * 199
    local click = (a + b > 1) and 1 or 0
    if rnd() < 0.1 then click = 1 - click end
    local pay = (click == 1 and item % 2 == 0 and a > 0.4) and 1 or 0
    rows[i] = { is_click = click, is_pay = pay, user = user, item = item, price = price, a = a, b = b }
    f:write(string.format("%d,%d,%d,%d,%.4f,%.4f,%.4f\n", click, pay, user, item, price, a, b))
  end
  f:close()
  return rows
end

-- Writes a tiny MMoE config to dir/config.lua (train/eval data in dir).
-- The data's columns and labels, as config source (inside `data = {...}`).
tiny.COLUMNS = [[
           columns = { {name = "is_click", type = "float"}, {name = "is_pay", type = "float"},
                       {name = "user", type = "int"}, {name = "item", type = "int"},
                       {name = "price", type = "float"}, {name = "a", type = "float"},
                       {name = "b", type = "float"} },
           labels = { "is_click", "is_pay" } },]]

-- extra: Lua source spliced into the returned table (e.g. 'rank = {...},').
function tiny.write_config(dir, extra, train_extra)
  local f = assert(io.open(dir .. "/config.lua", "w"))
  f:write(string.format([[
return {
  data = { train = %q, eval = %q, batch_size = 50, shuffle_buffer = 64,
]] .. tiny.COLUMNS .. [[

  features = { {name = "user", type = "id", column = "user", num_buckets = 20, dim = 4},
               {name = "item", type = "id", column = "item", num_buckets = 30, dim = 4},
               {name = "a", type = "raw", column = "a", normalize = "zscore"},
               {name = "b", type = "raw", column = "b", normalize = "zscore"} },
  model = { name = "mmoe", experts = 3, expert = {8}, tower = {4},
            tasks = { {name = "click", label = "is_click"}, {name = "pay", label = "is_pay"} } },
  optimizer = { dense = { name = "adam", lr = 0.02 }, sparse = { name = "adam", lr = 0.02 } },
  train = { epochs = 3, log_every = 5, eval_every = 10, checkpoint_every = 4, seed = 3, threads = 1,
            keep_checkpoints = 100 %s },
  model_dir = %q,
  %s
}
]], dir .. "/train.csv", dir .. "/test.csv", train_extra or "", dir .. "/run", extra or ""))
  f:close()
  return dir .. "/config.lua"
end

-- A fresh directory with train.csv and test.csv: rows and seeds of each.
function tiny.data_dir(train_rows, train_seed, test_rows, test_seed)
  local dir = tiny.tmpdir()
  tiny.write_data(dir .. "/train.csv", train_rows, train_seed)
  tiny.write_data(dir .. "/test.csv", test_rows, test_seed)
  return dir
end

-- A directory with train.csv (400 rows), test.csv (150 rows) and config.lua.
function tiny.setup(extra, train_extra)
  local dir = tiny.data_dir(400, 7, 150, 99)
  tiny.write_config(dir, extra, train_extra)
  return dir
end

-- tiny.setup(extra), then a training run into dir/run; returns dir.
function tiny.setup_trained(extra)
  local dir = tiny.setup(extra)
  local rc, _, err = tiny.run(string.format("train %s/config.lua --quiet", dir))
  assert(rc == 0, err)
  return dir
end

-- Runs `mtl ARGS` (with env, "NAME=value ...", before it); returns exit code, stdout, stderr.
function tiny.run(args, env)
  local out, err = os.tmpname(), os.tmpname()
  if type(env) ~= "string" then env = "" end -- (a gsub's count passed along)
  local ok, how, code = os.execute(string.format("%s %s %s >%s 2>%s", env, tiny.mtl, args, out, err))
  local function slurp(p)
    local s = shell.read_if_exists(p) or ""
    os.remove(p)
    return s
  end
  local rc
  if type(ok) == "number" then rc = math.floor(ok / 256) else rc = code end
  return rc, slurp(out), slurp(err)
end

-- Reads a CSV (no quoting) into {header = {...}, rows = {{col = value}}}.
function tiny.read_csv(path)
  local f = assert(io.open(path))
  local header = {}
  for c in f:read("*l"):gmatch("[^,]+") do header[#header + 1] = c end
  local rows = {}
  for line in f:lines() do
    local r, i = {}, 0
    for v in (line .. ","):gmatch("([^,]*),") do
      i = i + 1
      r[header[i]] = tonumber(v) or v
    end
    rows[#rows + 1] = r
  end
  f:close()
  return { header = header, rows = rows }
end

function tiny.rm(dir) os.execute("rm -rf '" .. dir .. "'") end

return tiny
