-- docs/easyrec.md stays true: its table of the fields the multi-task samples
-- set lists each of them with the reader's own status; every field it names,
-- and every field of the reader's schema, is in EasyRec's .proto files
-- (spec/fixtures/easyrec/protos); its tables of refused fields and no-ops are
-- the reader's; its table of samples names each sample.
local pt = require "mtl.config.protobuf_text"
local decode = require "mtl.config.easyrec.decode"
local easyrec = require "mtl.config.easyrec"
local sys = require "mtl.sys"

local SAMPLES = "spec/fixtures/easyrec/samples/"
local PROTOS = "spec/fixtures/easyrec/protos/"

local read = require("helpers.shell").read

-- message name -> {field = true}, from proto2 text: messages (nested too),
-- their fields (oneof members included); enums skipped.
local function proto_fields()
  local fields = {}
  for _, file in ipairs(sys.list_dir(PROTOS)) do
    local text = read(PROTOS .. file):gsub("//[^\n]*", "")
    local stack = {}
    for token in text:gmatch("[^\n]+") do
      local line = token:gsub("^%s+", "")
      local msg = line:match("^message%s+([%w_]+)%s*{")
      local block = line:match("^enum%s+[%w_]+%s*{") or line:match("^oneof%s+[%w_]+%s*{")
      if msg then
        stack[#stack + 1] = msg
        fields[msg] = fields[msg] or {}
      elseif block then
        stack[#stack + 1] = line:match("^enum") and false or stack[#stack]
      elseif line:match("^}") then
        stack[#stack] = nil
      else
        local name = line:match("^[%w_.]+%s+([%w_]+)%s*=%s*%d+") or line:match("^%a+%s+[%w_.]+%s+([%w_]+)%s*=%s*%d+")
        local owner = stack[#stack]
        if name and owner then fields[owner][name] = true end
      end
    end
  end
  return fields
end

-- "Message.field" -> true for every field some sample sets.
local function sample_fields()
  local used = {}
  for _, f in ipairs(sys.list_dir(SAMPLES)) do
    if f:match("%.config$") then
      local ctx = decode.new_ctx(f)
      decode.message(ctx, pt.parse_file(SAMPLES .. f), "EasyRecConfig", "")
      for _, o in ipairs(ctx.objects) do
        for name in pairs(o.nodes) do used[o.type .. "." .. name] = true end
      end
    end
  end
  return used
end

local doc = read("docs/easyrec.md")
local protos = proto_fields()

-- The rows of the doc's field table: field -> {status, text}.
local rows = {}
local field_table = doc:match("\n## Every field the samples set\n(.-)\n## ")
for field, status, text in field_table:gmatch("\n| `([%w_]+%.[%w_]+)` | (%a+) | ([^\n]*) |") do rows[field] = { status, text } end

-- Why the reader refuses a field: the schema's reasons and the model files'.
local reasons = {}
for k, v in pairs(easyrec.UNSUPPORTED) do reasons[k] = v end
for _, spec in pairs(easyrec.model_classes()) do for k, v in pairs(spec.unsupported) do reasons[k] = v end end

describe("docs/easyrec.md", function()
  it("lists every field the samples set, with the reader's status", function()
    for field in pairs(sample_fields()) do
      local row = rows[field]
      assert.is_truthy(row, "no row for " .. field)
      local status, text = row[1], row[2]
      if easyrec.NOOPS[field] then
        assert.are.equal("ignored", status, field)
        assert.is_truthy(text:find(easyrec.NOOPS[field].why, 1, true), field)
      elseif reasons[field] then
        local refused = status == "refused" and text == reasons[field]
        local elsewhere = status == "mapped" and text:find("elsewhere refused (" .. reasons[field] .. ")", 1, true)
        assert.is_truthy(refused or elsewhere, field .. ": " .. status .. " " .. text)
      else
        assert.are.equal("mapped", status, field)
      end
    end
  end)

  it("names only fields of EasyRec's messages, and so does the reader's schema", function()
    local n = 0
    for field in pairs(rows) do
      local msg, name = field:match("^([%w_]+)%.([%w_]+)$")
      assert.is_truthy(protos[msg] and protos[msg][name], field .. " is not in EasyRec's protos")
      n = n + 1
    end
    assert.is_true(n > 150)
    local missing = {}
    for msg, spec in pairs(easyrec.SCHEMA) do
      if protos[msg] then
        for name in pairs(spec.fields) do
          if not protos[msg][name] then missing[#missing + 1] = msg .. "." .. name end
        end
      end
    end
    table.sort(missing)
    -- fields of older EasyRec versions the reader still reads (refused, with their reasons)
    assert.are.same({ "DBMTL.sequence_dnn", "DBMTL.use_feature_bn", "FeatureConfig.use_embedding_variable" }, missing)
  end)

  it("lists every refused field and every accepted no-op", function()
    for key, why in pairs(reasons) do
      assert.is_truthy(doc:find("| `" .. key .. "` | " .. why .. " |", 1, true), key)
    end
    for key, entry in pairs(easyrec.NOOPS) do
      assert.is_truthy(doc:find("| `" .. key .. "` | " .. (entry.only == nil and "any" or ("only `" .. tostring(entry.only) .. "`"))
        .. " | " .. entry.why .. " |", 1, true), key)
    end
  end)

  it("has a row for every sample", function()
    for _, f in ipairs(sys.list_dir(SAMPLES)) do
      local name = f:match("^(.*)%.config$")
      if name then assert.is_truthy(doc:find("| `" .. name .. "` |", 1, true), name) end
    end
  end)
end)
