-- Feature-interaction blocks of EasyRec's backbones:
--   SENet (FiBiNET, Huang et al., RecSys 2019; EasyRec's grouped form): over
--     a list of field embeddings e_i [B, d_i], each cut into g groups:
--     z = [max and mean of each group of each field]           [B, 2 g F]
--     w = W2 relu(W1 z)                                         [B, sum d_i]
--     y = LayerNorm(x * w + x),  x = [e_1 ; ... ; e_F]          (skip and norm optional)
--   MaskBlock / MaskNet (Wang et al., "MaskNet", 2021): an instance-guided
--     mask multiplies the input: y = relu(LayerNorm(W_o (x * W_2 relu(W_1 m))))
--     (m: the mask input, x itself in MaskNet); MaskNet runs its blocks in
--     parallel on one input and concatenates them (or in series), then an MLP.
local mtl = require "mtl"

return function(nn)
  local SENet = nn.class("SENet")
  nn.SENet = SENet
  SENet.block = true
  SENet.graph_input = "list"
  SENet.options = {
    dims = { "sizes", required = true },             -- the fields' widths
    reduction_ratio = { "int", default = 4 },
    num_squeeze_group = { "int", default = 2 },
    use_skip_connection = { "boolean", default = true },
    use_output_layer_norm = { "boolean", default = true },
  }
  function SENet.check(c, o, path)
    for i, d in ipairs(type(o.dims) == "table" and o.dims or {}) do
      local g = o.num_squeeze_group or 2
      if type(d) == "number" and (d < g or d % g ~= 0) then
        c:err("%sfield %d has %d dims, which num_squeeze_group %d does not divide", path ~= "" and ("'" .. path .. "': ") or "",
          i, d, g)
      end
    end
  end
  function SENet:__init(opts)
    self.dims, self.g = opts.dims, opts.num_squeeze_group
    self.skip, self.norm = opts.use_skip_connection, opts.use_output_layer_norm
    local total = 0
    for _, d in ipairs(opts.dims) do total = total + d end
    local z = #opts.dims * self.g * 2
    self.reduce = nn.Linear(z, math.max(1, math.floor(z / opts.reduction_ratio)))
    self.excite = nn.Linear(self.reduce.n_out, total)
    if self.norm then self.layer_norm = nn.LayerNorm(total) end
    self.output_dim = total
  end
  function SENet:forward(fields)                      -- a list of [B, d_i]
    local B, squeezed = fields[1]:size(1), {}
    for _, e in ipairs(fields) do
      local grouped = e:reshape(B, self.g, e:size(2) / self.g)
      squeezed[#squeezed + 1] = mtl.max(grouped, 3)  -- [B, g]
      squeezed[#squeezed + 1] = mtl.mean(grouped, 3)
    end
    local w = self.excite(mtl.relu(self.reduce(mtl.concat(squeezed, 2))))   -- [B, sum d_i]
    local x = #fields == 1 and fields[1] or mtl.concat(fields, 2)
    local y = x * w
    if self.skip then y = y + x end
    if self.norm then y = self.layer_norm(y) end
    return y
  end

  local MaskBlock = nn.class("MaskBlock")
  nn.MaskBlock = MaskBlock
  MaskBlock.block = true
  MaskBlock.graph_input = "tensor"
  MaskBlock.options = {
    input = { "int", required = true },              -- the width of x
    mask_input = { "int" },                          -- the width of the mask input (default: input)
    aggregation_size = { "int" },
    reduction_factor = { "number", gt = 0 },
    output_size = { "int" },
    input_layer_norm = { "boolean", default = false },
    projection_dim = { "int" },
  }
  function MaskBlock:__init(opts)
    local m_in = opts.mask_input or opts.input
    local agg = opts.reduction_factor and math.floor(m_in * opts.reduction_factor) or opts.aggregation_size
    if not agg then error("nn.MaskBlock: give aggregation_size or reduction_factor", 0) end
    if opts.input_layer_norm then self.input_norm = nn.LayerNorm(opts.input) end
    if opts.projection_dim then
      self.project = nn.Linear(m_in, opts.projection_dim, { bias = false })
      m_in = opts.projection_dim
    end
    self.aggregation = nn.Linear(m_in, agg)
    self.weights = nn.Linear(agg, opts.input)
    if opts.output_size then
      self.output = nn.Linear(opts.input, opts.output_size, { bias = false })
      self.output_norm = nn.LayerNorm(opts.output_size)
    end
    self.output_dim = opts.output_size or opts.input
  end
  -- x [B, d] (or {x, mask input})
  function MaskBlock:forward(x, m)
    if type(x) == "table" then x, m = x[1], x[2] end
    m = m or x
    if self.input_norm then x = self.input_norm(x) end
    if self.project then m = self.project(m) end
    local masked = x * self.weights(mtl.relu(self.aggregation(m)))
    if not self.output then return masked end
    return mtl.relu(self.output_norm(self.output(masked)))
  end

  local MaskNet = nn.class("MaskNet")
  nn.MaskNet = MaskNet
  MaskNet.block = true
  MaskNet.graph_input = "tensor"
  MaskNet.options = {
    input = { "int", required = true },
    mask_blocks = { "any", required = true, check = function(c, v, path)
      if c:list(v, path, "a list of MaskBlock options") then
        for i, b in ipairs(v) do c:table(b, path .. "." .. i, "MaskBlock options") end
      end
    end },
    use_parallel = { "boolean", default = true },
    mlp = { "mlp" },
    input_layer_norm = { "boolean", default = true },
  }
  function MaskNet:__init(opts)
    self.parallel, self.n = opts.use_parallel, #opts.mask_blocks
    if opts.input_layer_norm then self.input_norm = nn.LayerNorm(opts.input) end
    local d, total = opts.input, 0
    for i, b in ipairs(opts.mask_blocks) do
      local o = {}
      for k, v in pairs(b) do o[k] = v end
      o.input, o.mask_input = self.parallel and opts.input or d, opts.input
      self["block" .. i] = MaskBlock(o)
      d = self["block" .. i].output_dim
      total = total + d
    end
    d = self.parallel and total or d
    if opts.mlp then
      self.mlp = nn.MLP(nn.mlp_options(opts.mlp, d))
      d = self.mlp.output_dim
    end
    self.output_dim = d
  end
  function MaskNet:forward(x)
    if self.input_norm then x = self.input_norm(x) end
    local net
    if self.parallel then
      local outs = {}
      for i = 1, self.n do outs[i] = self["block" .. i](x, x) end
      net = #outs == 1 and outs[1] or mtl.concat(outs, 2)
    else
      net = x
      for i = 1, self.n do net = self["block" .. i](net, x) end
    end
    return self.mlp and self.mlp(net) or net
  end
end
