-- nn.DIN: target attention over a padded sequence, against the formula
-- computed in plain Lua from the block's weights, and by finite differences.
local mtl = require "mtl"
local nn = require "mtl.nn"
local models = require "mtl.models"
local check = require "helpers.check"

-- relu(x W1^T + b1) W2^T + b2 for one row x (a Lua list), from an MLP's two Linear layers.
local function mlp2(mlp, x)
  local W1, b1, W2, b2 = mlp.fc1.weight:totable(), mlp.fc1.bias:values(), mlp.fc2.weight:totable(), mlp.fc2.bias:values()
  local out = b2[1]
  for j = 1, #b1 do
    local h = b1[j]
    for k = 1, #x do h = h + W1[j][k] * x[k] end
    out = out + W2[1][j] * math.max(h, 0)
  end
  return out
end

-- The DIN output of row b, computed from the formula in the block's header.
local function din_row(block, q, h, mask, aux, b)
  local L, d = #h[b], #h[b][1]
  local scores, m = {}, -math.huge
  for t = 1, L do
    local z = {}
    for k = 1, d do z[k] = q[b][k] end
    for k = 1, d do z[d + k] = h[b][t][k] end
    for k = 1, d do z[2 * d + k] = q[b][k] - h[b][t][k] end
    for k = 1, d do z[3 * d + k] = q[b][k] * h[b][t][k] end
    scores[t] = mask[b][t] == 1 and mlp2(block.mlp, z) or -4294967295
    m = math.max(m, scores[t])
  end
  local w, sum = {}, 0
  for t = 1, L do w[t] = math.exp(scores[t] - m); sum = sum + w[t] end
  local out = {}
  local function pool(seq)
    for k = 1, #seq[b][1] do
      local v = 0
      for t = 1, L do v = v + w[t] / sum * seq[b][t][k] end
      out[#out + 1] = v
    end
  end
  pool(h)
  for _, a in ipairs(aux) do pool(a) end
  for k = 1, #q[b] do out[#out + 1] = q[b][k] end
  return out, w, sum
end

describe("nn.DIN", function()
  mtl.seed(3)
  local block = nn.DIN { query = 3, history = 3, aux = { 2 }, hidden = { 4, 1 } }
  local q, h, a = mtl.randn(2, 3), mtl.randn(2, 4, 3), mtl.randn(2, 4, 2)
  local mask = mtl.tensor { { 1, 1, 1, 0 }, { 1, 0, 0, 0 } }

  it("is a registered block with an option schema", function()
    assert.are.equal(nn.DIN, models.block("DIN"))
    check.assert_error("nn.DIN: 'hidden' must end with 1 (the attention score), got {4, 2}", nn.DIN,
      { query = 3, history = 3, hidden = { 4, 2 } })
    check.assert_error('nn.DIN: the query has 2 dims and the history 3: give transform = "pad" or "dense"', nn.DIN,
      { query = 2, history = 3 })
    check.assert_error('nn.DIN: transform "pad" widens the query (4 dims) to the history\'s 3; it cannot narrow it (use "dense")',
      nn.DIN, { query = 4, history = 3, transform = "pad" })
  end)

  it("computes [sum_t w_t h_t ; sum_t w_t aux_t ; q] with w the masked softmax of the MLP's scores", function()
    local y = block(q, h, mask, { a })
    assert.are.same({ 2, 3 + 2 + 3 }, y:shape())
    local Y, W = y:totable(), block.last:totable()
    for b = 1, 2 do
      local want, w, sum = din_row(block, q:totable(), h:totable(), mask:totable(), { a:totable() }, b)
      check.assert_close(Y[b], want, 1e-5, "row " .. b)
      for t = 1, 4 do check.assert_close(W[b][t], w[t] / sum, 1e-6, "weight") end
    end
    assert.are.equal(0, W[2][2])                   -- padding gets no weight
  end)

  it("pads a narrower query with zeros, or maps both through Linear layers", function()
    local pad = nn.DIN { query = 2, history = 3, hidden = { 1 }, transform = "pad", need_query = true }
    local y = pad(q:narrow(2, 1, 2), h, mask)
    assert.are.same({ 2, 6 }, y:shape())
    assert.are.equal(0, y:get(1, 6))               -- the query's padding, as EasyRec returns the padded key
    local dense = nn.DIN { query = 5, history = 3, hidden = { 2, 1 }, transform = "dense", need_query = false }
    assert.are.same({ 2, 3 }, dense(mtl.randn(2, 5), h, mask):shape())
    assert.are.equal(3, dense.output_dim)
    local auto = nn.DIN { query = 2, history = 3, hidden = { 1 }, transform = "auto" }
    assert.are.equal("pad", auto.transform)
  end)

  it("has the gradients finite differences give, for its inputs and its weights", function()
    local m = mtl.tensor { { 1, 1, 0, 0 }, { 1, 1, 1, 1 } }
    check.gradcheck(function(qq, hh, aa) return block(qq, hh, m, { aa }) end, { q, h, a }, { atol = 2e-3, rtol = 2e-2 })
    local fc1 = block.mlp.fc1
    local weight = fc1.weight
    check.gradcheck(function(w)                     -- the score MLP's first weights
      rawset(fc1, "weight", w)
      local y = block(q, h, m, { a })
      rawset(fc1, "weight", weight)
      return y
    end, { weight }, { atol = 2e-3, rtol = 2e-2 })
  end)
end)
