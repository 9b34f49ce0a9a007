-- EasyRec's MultiTaskModel with a backbone, mapped onto mtl's backbone model
-- (lua/mtl/config/easyrec/backbone.lua).
local easyrec = require "mtl.config.easyrec"
local H = require "helpers.easyrec"

local SAMPLES = "spec/fixtures/easyrec/samples/"

local function D(sizes) return { hidden = sizes, batch_norm = true } end
local function MLP(sizes) return { hidden = sizes, batch_norm = true, last_batch_norm = true, bias = false } end

describe("EasyRec: MultiTaskModel backbones", function()
  it("maps an input layer of feature lists, SENet, MMoE and the task towers", function()
    local cfg = easyrec.load(SAMPLES .. "mmoe_backbone_on_taobao.config")
    assert.are.same({
      name = "backbone",
      blocks = {
        { name = "all", list = "all" },
        { name = "senet", inputs = { "all" }, block = "SENet", options = { reduction_ratio = 4,
          num_squeeze_group = 2, use_skip_connection = true, use_output_layer_norm = true } },
        { name = "mmoe", inputs = { "senet" }, block = "MMoELayer", options = { tasks = 2, experts = 3, expert = MLP { 256, 128 } } },
      },
      tasks = {
        { name = "ctr", label = "clk", weight = 1, tower = D { 128, 64 } },
        { name = "cvr", label = "buy", weight = 1, tower = D { 128, 64 } },
      },
    }, cfg.model)
    assert.are.equal("all", cfg.groups[1].name)
  end)

  it("maps AITM's towers, a list input and output_blocks", function()
    local cfg = easyrec.parse(require("helpers.shell").read(SAMPLES .. "aitm_on_taobao.config"):gsub("losses {.-}%s*losses {.-}", ""),
      "aitm.config")
    assert.are.same({ name = "cvr_aitm", inputs = { "cvr_tower", "ctr_tower" }, merge = "list", block = "AITMTower",
      options = { transfer = MLP { 128 }, stop_gradient = true } }, cfg.model.blocks[4])
    assert.are.same({ "ctr_tower", "cvr_aitm" }, cfg.model.outputs)
  end)

  it("names what mtl cannot run", function()
    local model = [[
  model_class: "MultiTaskModel"
  feature_groups { group_name: "all" feature_names: ["user_id", "item_id"] }
  backbone {
    blocks { name: "l" inputs { feature_group_name: "all" } lambda { expression: "lambda x: x" } }
    blocks { name: "k" inputs { block_name: "l" } keras_layer { class_name: "FiBiNet" } }
  }
  model_params {
    task_towers { tower_name: "ctr" label_name: "clk" }
    task_towers { tower_name: "cvr" label_name: "buy" }
  }
]]
    assert.are.equal("t.config:29:61: unsupported field 'model_config.backbone.blocks[1].lambda': mtl runs no Python " ..
      "(lambda expressions)\nt.config:30:77: unsupported value \"FiBiNet\" for 'model_config.backbone.blocks[2].keras_layer." ..
      "class_name': mtl's backbone blocks are AITMTower, MLP, MMoE, MaskNet, SENet", H.err_of(H.map, { model = model }))
  end)
end)
