-- ESMM over several feature groups (EasyRec's ESMM.groups): each group
-- through its own MLP, the outputs concatenated into both towers.
local mtl = require "mtl"
local models = require "mtl.models"
local features = require "mtl.features"
local losses = require "mtl.losses"
local config = require "mtl.config"
local check = require "helpers.check"

describe("ESMM with feature groups", function()
  local opts = { input = 1, inputs = { user = 6, item = 4 }, tower = { 8 },
                 groups = { { input = "user", hidden = { 5 } }, { input = "item", hidden = { 3 }, activation = "tanh" } } }

  it("runs each group through its MLP and the towers on their concatenation", function()
    mtl.seed(1)
    local m = models.build("esmm", opts)
    local x = { user = mtl.randn(4, 6), item = mtl.randn(4, 4) }
    local out = m(x)
    local h = mtl.concat({ m.group_user(x.user), m.group_item(x.item) }, 2)   -- [4, 5 + 3]
    check.assert_close(out.ctr.logits, m.ctr(h), 1e-6)
    check.assert_close(out.ctcvr.prob, mtl.sigmoid(m.ctr(h)) * mtl.sigmoid(m.cvr(h)), 1e-6)
    assert.are.equal(8, m.ctr.mlp.sizes[1])
    assert.are.equal("tanh", m.group_item.act_name)
  end)

  it("learns from groups of a Features module", function()
    local shell = require "helpers.shell"
    local lines = { "clk,buy,user,item" }
    for i = 1, 400 do
      local user, item = i % 7, (i * 3) % 11
      local clk = (user + item) % 3 == 0 and 1 or 0
      lines[#lines + 1] = string.format("%d,%d,%d,%d", clk, clk * (item % 2), user, item)
    end
    local path = shell.write(shell.tmpdir() .. "/esmm_groups.csv", table.concat(lines, "\n") .. "\n")
    local data = { labels = { "clk", "buy" }, columns = { { name = "clk", type = "float" }, { name = "buy", type = "float" },
      { name = "user", type = "int" }, { name = "item", type = "int" } } }
    mtl.seed(2)
    local F = features.new({ { name = "user", type = "id", column = "user", num_buckets = 10, dim = 6 },
                             { name = "item", type = "id", column = "item", num_buckets = 12, dim = 4 } }, data,
      { { name = "user", features = { "user" } }, { name = "item", features = { "item" } } })
    F:build()
    local m = models.build("esmm", { input = F.output_dim, inputs = F.group_dims, tower = { 8 },
      ctr = { name = "ctr", label = "clk" }, cvr = { name = "cvr", label = "buy" },
      groups = { { input = "user", hidden = { 8 } }, { input = "item", hidden = { 8 } } } })
    local params = m:parameters()
    for _, e in ipairs(F:embedding_tables()) do params[#params + 1] = e.table end
    local opt = mtl.optim.adam { params = params, lr = 0.02 }
    local batch = mtl.data.read_all(F:reader_options({ path }))
    local labels = { clk = batch.columns.clk, buy = batch.columns.buy }
    local first, last
    for _ = 1, 200 do
      local loss = losses.compute(m(F:groups(batch)), labels, m:default_losses())
      opt:zero_grad()
      loss:backward()
      opt:step()
      first, last = first or loss:item(), loss:item()
    end
    assert.is_true(last < first / 2, string.format("loss %.4f -> %.4f", first, last))
  end)

  it("names a group the config does not have", function()
    check.assert_error("esmm: no feature group is named 'ad'", models.build, "esmm",
      { input = 1, inputs = { user = 6 }, groups = { { input = "ad", hidden = { 5 } } } })
    check.assert_error("esmm: 'groups' reads feature groups; give the features groups (config groups)", models.build,
      "esmm", { input = 6, groups = { { input = "user", hidden = { 5 } } } })
    local ok, err = pcall(config.validate, {
      data = { train = "t.csv", columns = { { name = "clk", type = "float" }, { name = "buy", type = "float" },
        { name = "u", type = "int" } }, labels = { "clk", "buy" } },
      features = { { name = "u", type = "id", column = "u", num_buckets = 3 } },
      groups = { { name = "user", features = { "u" } } },
      model = { name = "esmm", ctr = { name = "ctr", label = "clk" }, cvr = { name = "cvr", label = "buy" },
                groups = { { input = "users", hidden = { 4 }, dropout = 2 } } } })
    assert.is_false(ok)
    assert.are.equal("config: 'model.groups.1.dropout' must be a number in [0, 1), got 2\n" ..
      "config: 'model.groups.1.input': no feature group is named 'users' (did you mean 'user'?)", err)
  end)
end)
