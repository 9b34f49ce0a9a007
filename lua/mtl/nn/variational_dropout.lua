-- Variational dropout over input features (Chang et al., "Dropout Feature
-- Ranking for Deep Learning Models", 2017; EasyRec's variational_dropout).
-- Each feature k (or each input dimension, per_dim) has a learned dropout
-- rate p_k = sigmoid(logit_p_k). Training multiplies x by a relaxed
-- Bernoulli keep mask (a concrete distribution, temperature 0.1):
--   keep_k = 1 - sigmoid((log p_k - log(1 - p_k) + log u - log(1 - u)) / 0.1),  u ~ U(0, 1)
-- evaluation by the expected keep rate 1 - p_k; the penalty
--   lambda / B * sum_k (1 - p_k)
-- (its aux_loss) pushes rates up, so a feature the model can do without
-- ends with a high p_k: 1 - p ranks the features.
local mtl = require "mtl"

return function(nn)
  local VariationalDropout = nn.class("VariationalDropout")
  nn.VariationalDropout = VariationalDropout
  VariationalDropout.block = true
  VariationalDropout.options = {
    dims = { "sizes", required = true },            -- each feature's width, in the order of x's columns
    lambda = { "number", min = 0, default = 0.01 },
    per_dim = { "boolean", default = false },       -- one rate per input dimension, not per feature
  }

  local EPS = 2.220446049250313e-16  -- EasyRec's np.finfo(float).eps

  function VariationalDropout:__init(opts)
    self.dims, self.lambda, self.per_dim = opts.dims, opts.lambda, opts.per_dim
    local total, idx = 0, {}
    for k, d in ipairs(opts.dims) do
      for _ = 1, d do idx[#idx + 1] = k end
      total = total + d
    end
    self.total = total
    self.index = mtl.tensor(idx, "int64")           -- input dimension -> its feature (1-based)
    local n = self.per_dim and total or #opts.dims
    local bound = math.sqrt(3 / n)                  -- Glorot uniform of a vector of n, as TF initializes it
    self:param("logit_p", nn.init_uniform(bound, n))
  end

  -- per-feature values [.., n] -> per input dimension [.., total]
  function VariationalDropout:expand(v, dim)
    if self.per_dim then return v end
    return v:index_select(dim, self.index)
  end

  function VariationalDropout:forward(x)            -- x [B, total]
    local B = x:size(1)
    local p = mtl.sigmoid(self.logit_p)              -- [n]
    self.last_penalty = mtl.sum(1 - p) * (self.lambda / B)
    if not self.training then return x * self:expand(1 - p, 1) end
    local n = p:size(1)
    local u = mtl.rand(B, n)
    local pe = p:reshape(1, n):expand(B, n)
    local logit = mtl.log(pe + EPS) - mtl.log(1 - pe + EPS) + mtl.log(u + EPS) - mtl.log(1 - u + EPS)
    local keep = 1 - mtl.sigmoid(logit * 10)         -- temperature 0.1
    return x * self:expand(keep, 2)
  end

  -- The penalty of the last forward (nil before one).
  function VariationalDropout:aux_loss() return self.last_penalty end

  -- Each feature's mean keep rate 1 - p (per_dim: averaged over its dimensions).
  function VariationalDropout:keep_rates()
    local keep = (1 - mtl.sigmoid(self.logit_p:detach())):values()
    if not self.per_dim then return keep end
    local out, pos = {}, 0
    for k, d in ipairs(self.dims) do
      local s = 0
      for j = 1, d do s = s + keep[pos + j] end
      out[k], pos = s / d, pos + d
    end
    return out
  end

  function VariationalDropout:extra_repr()
    return string.format("%d features, %d dims%s, lambda %g", #self.dims, self.total, self.per_dim and ", per dim" or "",
      self.lambda)
  end
end
