-- Target attention over a behaviour sequence: DIN (Zhou et al., KDD 2018),
-- as EasyRec's sequence_features groups compute it.
--   q [B, dq]: the target (query: the candidate item's embeddings)
--   h [B, L, d]: the history, padded; mask [B, L] is 1 at steps, 0 at padding
--   a_t = MLP([q ; h_t ; q - h_t ; q * h_t])          score of step t  [B, L]
--   w   = softmax over t of a_t (-2^32 at padding)                     [B, L]
--   out = [sum_t w_t h_t ; sum_t w_t aux_t ... ; q]                    [B, d + aux + dq]
-- AITMTower (EasyRec's keras block; Xi et al., KDD 2021): a task's tower t_0
-- attends over itself and what earlier tasks pass on, t_1 ..:
--   u_i = Transfer(stop_gradient(t_i)) (i > 0; transfer optional), u_0 = t_0
--   q_i, k_i, v_i = Q_i u_i, K_i u_i, V_i u_i   (a projection per position, width p)
--   out = sum_j softmax_j(<q_0, k_j> / sqrt(p)) v_j               [B, p]
-- When dq differs from d, `transform` makes them meet: "pad" appends zeros
-- to q (d > dq), "dense" maps q and h through Linear layers to d, "auto" is
-- "pad" when q is narrower and "dense" otherwise (EasyRec's allow_key_transform).
local mtl = require "mtl"

return function(nn)
  local DIN = nn.class("DIN")
  nn.DIN = DIN
  DIN.block = true

  -- hidden: the score MLP's layer sizes, ending in the one score.
  local function check_hidden(c, v, path)
    if v[#v] ~= 1 then c:err("'%s' must end with 1 (the attention score), got {%s}", path, table.concat(v, ", ")) end
  end

  DIN.options = {
    query = { "int", required = true },
    history = { "int", required = true },
    aux = { "any", default = {}, check = function(c, v, path) c:sizes(v, path, true) end },
    hidden = { "sizes", default = { 128, 64, 32, 1 }, check = check_hidden },
    activation = { "any", default = "relu", check = nn.check_activation },
    batch_norm = { "boolean", default = false },
    dropout = { "any", default = 0, check = nn.check_dropout },
    need_query = { "boolean", default = true },
    transform = { "enum", values = { "pad", "dense", "auto" } },
  }

  local function at(path) return path ~= "" and ("'" .. path .. "': ") or "" end

  -- Dims that differ need a transform; "pad" only widens.
  function DIN.check(c, o, path)
    if type(o.query) ~= "number" or type(o.history) ~= "number" or o.query == o.history then return end
    local p = at(path)
    if o.transform == nil then
      c:err("%sthe query has %d dims and the history %d: give transform = \"pad\" or \"dense\"", p, o.query, o.history)
    elseif o.transform == "pad" and o.query > o.history then
      c:err("%stransform \"pad\" widens the query (%d dims) to the history's %d; it cannot narrow it (use \"dense\")",
        p, o.query, o.history)
    end
  end

  function DIN:__init(opts)
    local d = opts.history
    self.d, self.dq = d, opts.query
    self.need_query = opts.need_query
    self.transform = opts.query ~= d and opts.transform or nil
    if self.transform == "auto" then self.transform = opts.query < d and "pad" or "dense" end
    if self.transform == "dense" then
      self.query_fc = nn.Linear(opts.query, d)
      self.history_fc = nn.Linear(d, d)
    end
    self.aux = opts.aux
    self.mlp = nn.MLP{ input = 4 * d, hidden = opts.hidden, activation = opts.activation,
                       batch_norm = opts.batch_norm, dropout = opts.dropout, last_activation = false }
    local out = d
    for _, a in ipairs(opts.aux) do out = out + a end
    self.output_dim = out + (self.need_query and (self.transform and d or opts.query) or 0)
  end

  -- The attention weights [B, L] of q over h (mask 0 at padding).
  function DIN:weights(q, h, mask)
    local B, L, d = h:size(1), h:size(2), h:size(3)
    local qe = q:reshape(B, 1, d):expand(B, L, d)
    local z = mtl.concat({ qe, h, qe - h, qe * h }, 3):reshape(B * L, 4 * d)
    local score = self.mlp(z):reshape(B, L)
    score = score + (mask - 1) * 4294967295                   -- -2^32 + 1 at padding, as EasyRec
    return mtl.softmax(score, 2)
  end

  -- q [B, dq], h [B, L, d], mask [B, L], aux: a list of [B, L, d_k] -> [B, output_dim]
  function DIN:forward(q, h, mask, aux)
    local B, L = h:size(1), h:size(2)
    if self.transform == "pad" then
      q = mtl.concat({ q, mtl.zeros(B, self.d - self.dq) }, 2)
    elseif self.transform == "dense" then
      q = self.query_fc(q)
      h = self.history_fc(h:reshape(B * L, self.d)):reshape(B, L, self.d)
    end
    local w = self:weights(q, h, mask)                        -- [B, L]
    self.last = w
    local out = { nn.mix(h, w) }                              -- [B, d]
    for i, a in ipairs(aux or {}) do
      if a:size(3) ~= self.aux[i] then
        error(string.format("nn.DIN: aux sequence %d has %d dims, the block was built for %s", i, a:size(3),
          tostring(self.aux[i])), 2)
      end
      out[#out + 1] = nn.mix(a, w)
    end
    if self.need_query then out[#out + 1] = q end
    return #out == 1 and out[1] or mtl.concat(out, 2)
  end

  function DIN:extra_repr()
    return string.format("query %d, history %d%s", self.dq, self.d, self.transform and (", " .. self.transform) or "")
  end

  local AITMTower = nn.class("AITMTower")
  nn.AITMTower = AITMTower
  AITMTower.block = true
  AITMTower.graph_input = "list"
  AITMTower.options = {
    dims = { "sizes", required = true },             -- widths of [the task's tower, earlier towers ...]
    project_dim = { "int" },                         -- default: the task's tower width
    transfer = { "mlp" },                            -- an MLP on each earlier tower
    stop_gradient = { "boolean", default = true },   -- earlier towers get no gradient from this one
  }
  function AITMTower:__init(opts)
    local p = opts.project_dim or opts.dims[1]
    self.n, self.p, self.stop_gradient = #opts.dims, p, opts.stop_gradient
    local transferred
    if opts.transfer and #nn.mlp_hidden(opts.transfer) > 0 then
      self.transfer = nn.MLP(nn.mlp_options(opts.transfer, opts.dims[2] or opts.dims[1]))
      transferred = self.transfer.output_dim
    end
    for i, d in ipairs(opts.dims) do
      local w = i > 1 and transferred or d
      self["query" .. i] = nn.Linear(w, p)
      self["key" .. i] = nn.Linear(w, p)
      self["value" .. i] = nn.Linear(w, p)
    end
    self.output_dim = p
  end
  function AITMTower:forward(towers)                 -- a list of [B, d_i]
    if type(towers) == "userdata" then return towers end
    local B, q, k, v = towers[1]:size(1), nil, {}, {}
    for i, t in ipairs(towers) do
      local u = t
      if i > 1 then
        if self.stop_gradient then u = u:detach() end
        if self.transfer then u = self.transfer(u) end
      end
      if i == 1 then q = self["query" .. i](u) end
      k[i], v[i] = self["key" .. i](u), self["value" .. i](u)
    end
    local K, V = mtl.stack(k, 2), mtl.stack(v, 2)       -- [B, n, p]
    local score = mtl.matmul(K, q:reshape(B, self.p, 1)):reshape(B, self.n) / math.sqrt(self.p)
    self.last = mtl.softmax(score, 2)                   -- [B, n]
    return nn.mix(V, self.last)                         -- [B, p]
  end
end
