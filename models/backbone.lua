-- Backbone: a multi-task model whose bottom is a DAG of registered blocks (EasyRec's MultiTaskModel).
-- The bottom is an nn.Graph over the feature groups (docs/models.md): blocks
-- by name (MLP, SENet, MaskNet, MMoELayer, AITMTower, ...) wired to groups,
-- their feature lists and each other, as EasyRec's backbone and Torch7's
-- nngraph wire theirs. Its result feeds DBMTL's task heads:
--   g = Graph(groups)             one [B, d] for every task, or one per task (a list)
--   h_t = Tower_t(g_t);  r_t = Relation_t([h_t ; r_d for d in relations(t)])
--   logit_t = Linear(r_t)
local nn = require "mtl.nn"
local models = require "mtl.models"
local DBMTL = require "models.dbmtl"

local Backbone = nn.class("Backbone")
Backbone.reads_groups = true
Backbone.needs_groups = true -- a config without groups gives it one, "all" (every feature)

Backbone.options = {
  blocks = { "any", required = true, check = function(c, v, path)
    if c:list(v, path, "a list of blocks {name =, inputs =, block =, options =}") then
      for i, b in ipairs(v) do
        local p = path .. "." .. i
        if c:table(b, p, "a block {name =, inputs =, block =, options =}") then
          c:keys(b, p, { "name", "inputs", "block", "options", "merge", "group", "list" })
          c:string(b.name, p .. ".name", "a block name")
          if b.merge ~= nil then c:enum(b.merge, p .. ".merge", { "concat", "list" }) end
        end
      end
    end
  end },
  outputs = { "any" },
  concat = { "any" },
  tower = { "mlp", empty = true, default = {} },
  relation = { "mlp", empty = true },
}
Backbone.task_options = DBMTL.task_options
Backbone.check = DBMTL.check

-- The graph's blocks: a group block ({group = "all"}, or {list = "all"}: its
-- feature list) is an input of the graph.
local function graph_blocks(blocks)
  local out = {}
  for i, b in ipairs(blocks) do
    out[i] = { name = b.name, inputs = b.inputs, block = b.block, options = b.options, merge = b.merge,
               input = b.group, list = b.list }
  end
  return out
end

-- Without feature groups (inputs) the graph reads one input, x.
function Backbone:__init(opts)
  self.tasks = nn.tasks(opts.tasks)
  self.order = DBMTL.topo_order(self.tasks)
  self.inputs = opts.inputs
  self.graph = nn.Graph{ inputs = opts.inputs or { x = opts.input }, lists = opts.input_lists or {},
                         blocks = graph_blocks(opts.blocks), outputs = opts.outputs, concat = opts.concat,
                         lookup = models.block }
  local shape = self.graph.outputs and {} or self.graph.output_shape
  if self.graph.outputs then
    for i, n in ipairs(self.graph.outputs) do shape[i] = self.graph.shapes[n] end
  end
  self.per_task = type(shape) == "table"
  if self.per_task and #shape ~= #self.tasks then
    error(string.format("backbone: the graph gives %d outputs for %d tasks", #shape, #self.tasks), 0)
  end
  local dims = {}
  for i, t in ipairs(self.tasks) do
    dims[t.name] = self.per_task and shape[i] or shape
    if type(dims[t.name]) ~= "number" then error(string.format("backbone: output %d is a list, not one tensor", i), 0) end
  end
  DBMTL.build_heads(self, opts, dims)
end

function Backbone:forward(xs, lists)                -- {group = [B, d_g]} (and their lists), or x [B, input]
  if type(xs) == "userdata" then xs = { x = xs } end
  local g = self.graph(xs, lists)
  local index = {}
  for i, t in ipairs(self.tasks) do index[t.name] = i end
  return DBMTL.run_heads(self, function(t) return self.per_task and g[index[t.name]] or g end)
end

local RETRIEVAL = "a retrieval (two-tower) parameter; mtl's backbone feeds task towers"

-- EasyRec's model_class MultiTaskModel: model_config.backbone (the graph)
-- and model_params' task_towers (BayesTaskTowers: towers, relations).
Backbone.easyrec = {
  class = "MultiTaskModel", field = "model_params",
  unsupported = {
    ["ModelParams.outputs"] = "mtl's outputs are the task towers'",
    ["ModelParams.user_tower_idx_in_output"] = RETRIEVAL,
    ["ModelParams.item_tower_idx_in_output"] = RETRIEVAL,
    ["ModelParams.simi_func"] = RETRIEVAL,
    ["ModelParams.temperature"] = RETRIEVAL,
    ["ModelParams.scale_simi"] = RETRIEVAL,
    ["BackboneTower.packages"] = "block packages are not supported",
    ["BackboneTower.top_mlp"] = "give the MLP as a block",
    ["Block.layers"] = "sequential layers are not supported; give each as a block",
    ["Block.lambda"] = "mtl runs no Python (lambda expressions)",
    ["Block.recurrent"] = "recurrent layers are not supported",
    ["Block.repeat"] = "repeated layers are not supported",
    ["Block.raw_input"] = "raw input layers are not supported",
    ["Block.embedding_layer"] = "embedding layers are not supported (the features embed themselves)",
    ["Block.extra_input_fn"] = "mtl runs no Python (input functions)",
    ["Input.input_fn"] = "mtl runs no Python (input functions)",
    ["Input.input_slice"] = "mtl runs no Python (input slices)",
    ["Input.reset_input"] = "packages are not supported",
    ["Input.package_input"] = "packages are not supported",
    ["Input.package_input_fn"] = "packages are not supported",
    ["Input.package_name"] = "packages are not supported",
    ["Input.use_package_input"] = "packages are not supported",
    ["KerasLayer.st_params"] = "give the block's params as its message (mlp, mmoe, ...)",
  },
  map = function(m, model, er)
    model.tasks = er.task_towers(m, { bayes = true })
    require("mtl.config.easyrec.backbone").map(er.model_config, model, er)
  end,
}

return Backbone
