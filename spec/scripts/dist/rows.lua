-- The rows of the table scripts (tables.lua, sharded.lua): global batches
-- that every rank generates alike, columns of them, and "r<rank> <key>
-- <values>" output lines. Loaded with dofile from the scripts' directory.
local mtl = require "mtl"

local M = {}

-- global batch s of B rows: row i has ids (a, b, c), a number x and a label y
function M.global_batch(s, B)
  local rows = {}
  for i = 1, B do
    local k = s * B + i
    rows[i] = { a = (k * 7) % 10, b = k * 131 % 1000, c = (k * k) % 23 + 100 * math.floor(s / 8), x = ((k * 37) % 17) / 17,
                y = (k % 3 == 0) and 1 or 0 }
  end
  return rows
end

-- rank r's rows of a global batch
function M.mine(all, rank, size)
  local B = #all
  local mine = {}
  for i = math.floor(rank * B / size) + 1, math.floor((rank + 1) * B / size) do mine[#mine + 1] = all[i] end
  return mine
end

function M.column(rows, key, dtype)
  local v = {}
  for i, r in ipairs(rows) do v[i] = r[key] end
  return #v > 0 and mtl.tensor(v, dtype) or mtl.zeros({ 0 }, dtype)
end

function M.say(key, values)
  io.write(string.format("r%d %s %s\n", mtl.dist.rank(), key, table.concat(values, " ")))
end

-- The rest of a step after the lookups: the linear model on x [n, 10], the
-- loss of the rows' labels as this rank's share, backward and reduction (P),
-- the optimizers' steps. Returns the global batch's loss.
function M.finish_step(P, model, x, mine, scale, optimizers)
  local n = #mine
  local logits = model(x):reshape(n)
  local total = P:backward(n, function()
    local loss = mtl.binary_cross_entropy_with_logits(logits, M.column(mine, "y"))
    return scale.rows ~= 1 and loss * scale.rows or loss
  end)[1]
  for _, o in ipairs(optimizers) do o:step() end
  return total
end

-- a tensor's values as %.9g strings
function M.fmt(t)
  local v = {}
  for i, x in ipairs(t:values()) do v[i] = string.format("%.9g", x) end
  return v
end

return M
