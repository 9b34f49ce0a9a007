-- Every example and every documentation sample runs:
--   * each examples/*.lua runs through the launcher from the repository root
--     with MTL_EXAMPLE_SMALL=1 (examples shrink their runs when it is set)
--     and must exit with status 0;
--   * each ```lua block in docs/*.md and README.md runs on its own (in a
--     fresh temporary directory, so samples that write files leave nothing
--     behind) and must exit with status 0. Blocks that are not meant to run
--     use another fence (```text).
-- examples/train_mlp.lua must also reach >= 98 % training accuracy.
local shell = require "helpers.shell"
local shell_quote, run = shell.quote, shell.run

local read_file = shell.read_if_exists

local root, launcher = shell.root, shell.launcher

-- Runs `mtl script` in dir with MTL_EXAMPLE_SMALL=1; returns status, stdout, stderr.
local function run_script(dir, script)
  local tmp = run("mktemp -d"):gsub("%s+$", "")
  local out, err = tmp .. "/stdout", tmp .. "/stderr"
  local status = run(string.format("cd %s && MTL_EXAMPLE_SMALL=1 timeout 600 %s %s </dev/null >%s 2>%s; echo $?",
    shell_quote(dir), shell_quote(launcher), shell_quote(script), shell_quote(out), shell_quote(err)))
  local stdout, stderr = read_file(out) or "", read_file(err) or ""
  run("rm -rf " .. shell_quote(tmp))
  return tonumber(status:match("%d+")), stdout, stderr
end

local function list(pattern)
  local files = {}
  for line in run("ls " .. pattern .. " 2>/dev/null"):gmatch("[^\n]+") do files[#files + 1] = line end
  table.sort(files)
  return files
end

-- The ```lua blocks of a markdown file: { { line = n, code = "..." }, ... }
local function lua_blocks(text)
  local blocks, lineno, current = {}, 0, nil
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    lineno = lineno + 1
    if current then
      if line:match("^%s*```%s*$") then
        blocks[#blocks + 1] = current
        current = nil
      else
        current.code[#current.code + 1] = line
      end
    elseif line:match("^%s*```lua%s*$") then
      current = { line = lineno, code = {} }
    end
  end
  for _, b in ipairs(blocks) do b.code = table.concat(b.code, "\n") .. "\n" end
  return blocks
end

describe("examples #slow", function()
  for _, path in ipairs(list("examples/*.lua")) do
    it("runs " .. path, function()
      local status, stdout, stderr = run_script(root, root .. "/" .. path)
      assert(status == 0, string.format("%s exited with status %s\nstdout:\n%s\nstderr:\n%s",
        path, tostring(status), stdout:sub(-2000), stderr:sub(-4000)))
      if path == "examples/train_mlp.lua" then
        local first, last = stdout:match("loss ([%d.]+) %-> ([%d.]+)")
        local accuracy = tonumber(stdout:match("accuracy ([%d.]+) %%%s*$"))
        assert(first and accuracy, "unexpected output:\n" .. stdout)
        assert.is_true(tonumber(last) < tonumber(first) / 5, "the loss did not fall:\n" .. stdout)
        assert.is_true(accuracy >= 98, "training accuracy " .. accuracy .. " % < 98 %")
      end
    end)
  end
end)

describe("documentation samples", function()
  local docs = list("docs/*.md")
  docs[#docs + 1] = "README.md"
  for _, path in ipairs(docs) do
    for _, block in ipairs(lua_blocks(read_file(path) or "")) do
      it("runs the sample at " .. path .. ":" .. block.line, function()
        local dir = run("mktemp -d"):gsub("%s+$", "")
        local f = assert(io.open(dir .. "/sample.lua", "w"))
        f:write(block.code)
        f:close()
        local status, stdout, stderr = run_script(dir, "sample.lua")
        run("rm -rf " .. shell_quote(dir))
        assert(status == 0, string.format("%s:%d: the sample exited with status %s\n%s\nstdout:\n%s\nstderr:\n%s",
          path, block.line, tostring(status), block.code, stdout:sub(-2000), stderr:sub(-4000)))
      end)
    end
  end

  it("finds the samples it runs", function()
    -- the README has one; a change to the fence parsing must not silently run none
    assert.is_true(#lua_blocks(read_file("README.md")) >= 1)
    assert.are.same({ { line = 2, code = "print(1)\n" } }, lua_blocks("x\n```lua\nprint(1)\n```\n```text\nno\n```\n"))
  end)
end)
