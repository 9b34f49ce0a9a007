local mtl = require "mtl"
local function w(p, s) local f = assert(io.open(p, "wb")); f:write(s); f:close() end
-- Seed inputs of fuzz.lua that the repository's fixtures do not cover: CSV
-- and TSV with every column type, --set values, a Lua config, checkpoints,
-- a model directory.
local D = os.getenv("MTL_FUZZ_DIR") .. "/seeds/"
os.execute("mkdir -p " .. D)
w(D .. "synth.csv", table.concat({
  "is_click,user_id,name,tags,kv,price,pos,junk,stags,skv",
  '1,1001,alice,7|8|9,"1:0.5,2:1.5",19.5,1,x,a;b;c,k=1.5;j=2',
  '0,-1002,"bo,b",8,,2.94038e+06,2,"y""z",d,',
  '0,+1001,"multi\nline",,"3:1e-3",.5,,,e;f,a=1',
  '1,9223372036854775807,"",1|2,"4:-0.25,5:inf",0x1p3,-0.5,,g,b=-2',
  '0,7,c,3,"",nan,1E-3,z,h;i,',
}, "\n") .. "\n")
w(D .. "synth.tsv", table.concat({
  "is_click\tuser_id\tname\ttags\tkv\tprice\tpos\tjunk\tstags\tskv",
  '1\t1001\talice\t7|8|9\t1:0.5,2:1.5\t19.5\t1\tx\ta;b;c\tk=1.5;j=2',
  '0\t-1002\t"bo,b"\t8\t\t2.94038e+06\t2\ty"z\td\t',
  '1\t12\tq\t\t3:1e-3\t.5\t\t\te;f\ta=1',
}, "\r\n") .. "\r\n")
w(D .. "overrides.txt", table.concat({
  "{256, 128}", "{name = 'adam', lr = 0.01}", "{name = \"cosine\", total_steps = 1000, warmup_steps = 10}",
  "runs/day 1.csv", "inf", "-inf", "nan", "math.huge", "0x10", "-1.5e-3", "'100'", "\"a\\nb\\065\"", "{auc, logloss}",
  "{[1] = 2, [\"x\"] = {y = {z = {1, 2, {3}}}}}", "nil", "true", "{ {name='a', type='float'}, {name='b', type='int'} }",
}, "\n") .. "\n")
w(D .. "cfg1.lua", [[
local sizes = {}
for i = 1, 3 do sizes[i] = 512 / 2 ^ i end
return {
  data = { train = "train.csv", eval = "test.csv", batch_size = 256,
           columns = { {name = "is_click", type = "float"}, {name = "is_pay", type = "float"},
                       {name = "user_id", type = "int"}, {name = "tags", type = "ids", separator = "|"},
                       {name = "price", type = "float", default = 0} },
           labels = { "is_click", "is_pay" } },
  features = { {name = "user_id", type = "id", column = "user_id", hash_bucket_size = 10000, dim = 8},
               {name = "tags", type = "tag", column = "tags", num_buckets = 100},
               {name = "price", type = "raw", column = "price", normalize = "log1p"} },
  model = { name = "mmoe", experts = 4, expert = sizes, tower = {32},
            tasks = { {name = "ctr", label = "is_click"}, {name = "cvr", label = "is_pay", weight = 0.5} } },
  optimizer = { dense = { name = "adam", lr = 1e-3 }, schedule = { name = "cosine", total_steps = 100 } },
  train = { steps = 1000, eval_every = 100, early_stopping = { metric = "eval.ctr.auc" } },
}
]])
local Obj = { __typename = "fz.Obj" }; Obj.__index = Obj
function Obj:state_dict() return { w = mtl.randn(2, 3), n = 5 } end
mtl.checkpoint.register("fz.Obj", function(s) return s end)
local ffi = require "ffi"
mtl.save(D .. "a.ckpt", { step = 1200, weights = { w = mtl.randn(4, 3), b = mtl.zeros({3}) }, note = "run 7",
  ids = mtl.zeros({5}, "int64"), x = 1.5, flag = true, [1] = "one", [2] = 2, big = 123LL, ubig = ffi.new("uint64_t", 7),
  s = "a\0b", scalar = mtl.randn(1):reshape({}) ~= nil and mtl.zeros({}) or nil, obj = setmetatable({}, Obj),
  nested = { { { { 1 } } } }, empty = {} })
mtl.save(D .. "b.ckpt", mtl.randn(2, 2, 2))
mtl.save(D .. "c.ckpt", { 1, 2, 3, "x", false })
mtl.save(D .. "d.ckpt", "just a string")

-- A model directory (target modeldir) and request rows to score with it.
do
  local _, request = require("spec.helpers.tiny_model").make(D:gsub("/$", ""))
  w(D .. "request.csv", request)
end
print("ok")
