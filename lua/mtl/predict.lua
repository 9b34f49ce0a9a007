-- mtl.predict: score a file with a trained model (docs/cli.md, "mtl predict").
--
--   local n = predict.file(model, cfg, {input = "x.csv", output = "scores.csv",
--                                        pass_through = {"user", "item"}})
--
-- The output CSV has one row per input row, in input order:
--   <pass-through columns as in the input>, p_<output> for every model output
--   (a probability), rank_score, and `score` when cfg.rank.expression is set.
-- Probabilities are written with 9 significant digits (float32 exactly).
-- The input is read with the config's schema; its label columns may be
-- missing, and columns the schema does not name are ignored. Price and
-- expression columns are taken from the input text as numbers (an empty or
-- non-numeric field is missing: NaN in an expression, the floor for price).
local mtl = require "mtl"
local parallel = require "mtl.parallel"
local rank = require "mtl.rank"
local ranker = require "mtl.ranker"
local sys = require "mtl.sys"

local predict = {}

local function fail(fmt, ...) error("predict: " .. string.format(fmt, ...), 0) end

-- Splits one CSV record into fields (quotes: "a,b" and "" inside quotes).
function predict.split(line, sep, quote)
  sep = sep or ","
  local fields = {}
  local i, n = 1, #line
  if n == 0 then return { "" } end
  while i <= n + 1 do
    if quote and line:sub(i, i) == quote then
      local buf, j = {}, i + 1
      while true do
        local c = line:sub(j, j)
        if c == "" then break end
        if c == quote then
          if line:sub(j + 1, j + 1) == quote then
            buf[#buf + 1] = quote
            j = j + 2
          else
            j = j + 1
            break
          end
        else
          buf[#buf + 1] = c
          j = j + 1
        end
      end
      local k = line:find(sep, j, true) or n + 1
      fields[#fields + 1] = table.concat(buf) .. line:sub(j, k - 1)
      i = k + 1
    else
      local k = line:find(sep, i, true) or n + 1
      fields[#fields + 1] = line:sub(i, k - 1)
      i = k + 1
    end
  end
  return fields
end

-- The records of a text file the way the reader sees them: a UTF-8 BOM and
-- "\r" line ends dropped, blank lines skipped, a quoted field may span lines.
local function records(path, quote)
  local f, err = io.open(path, "rb")
  if not f then fail("cannot open %s: %s", path, tostring(err)) end
  local first, closed = true, false
  local it = f:lines()
  local line_no = 0
  local function close()
    if not closed then f:close() end
    closed = true
  end
  return function()
    while true do
      local line = not closed and it()
      if not line then
        close()
        return nil
      end
      line_no = line_no + 1
      local start = line_no
      if first then
        first = false
        if line:sub(1, 3) == "\239\187\191" then line = line:sub(4) end
      end
      line = line:gsub("\r$", "")
      if quote then
        local _, q = line:gsub(quote, "")
        while q % 2 == 1 do
          local more = it()
          if not more then break end
          line_no = line_no + 1
          more = more:gsub("\r$", "")
          line = line .. "\n" .. more
          _, q = line:gsub(quote, "")
        end
      end
      if line ~= "" then return line, start end
    end
  end, close
end
predict.records = records

local function csv_field(s)
  if s:find('[,"\n]') then return '"' .. s:gsub('"', '""') .. '"' end
  return s
end

-- Scores opts.input into opts.output with model: a Ranker (mtl.ranker.load)
-- or a training run's. opts: input, output, pass_through = {columns},
-- batch_size. Returns the number of rows written and the header. In a
-- distributed run every rank calls it: each scores its batches, rank 0
-- writes every row in input order.
function predict.file(model, cfg, opts)
  if type(opts.input) == "string" and type(opts.output) == "string" and sys.same_file(opts.input, opts.output) then
    fail("the output %s is the input file %s: scores go to another file", opts.output, opts.input)
  end
  model = ranker.of(model)
  local dc = cfg.data
  local sep = dc.separator or ","
  local quote = '"'
  local input = opts.input
  -- the input's header
  local rec, close = records(input, quote)
  local header_line = rec()
  close()
  if not header_line then fail("%s is empty (expected a header line)", input) end
  local header, index = predict.split(header_line, sep, quote), {}
  for i, name in ipairs(header) do index[name] = i end
  -- the reader: the schema's columns that the input has
  local o = model.features:reader_options({ input }, opts.batch_size or dc.batch_size or 1024,
    { separator = dc.separator, unknown_columns = "skip", shuffle_buffer = 0 })
  local labels = {}
  for _, l in ipairs(dc.labels or {}) do labels[l] = true end
  local cols = {}
  for _, c in ipairs(o.columns) do
    if index[c.name] then
      cols[#cols + 1] = c
    elseif not labels[c.name] then
      fail("%s has no column '%s' (the config's data.columns names it; columns in the file: %s)", input, c.name,
        table.concat(header, ", "))
    end
  end
  o.columns = cols
  o.header = true
  -- ranking: which outputs, and which columns it reads from the text
  local outputs = model:outputs()
  local tasks = {}
  for _, t in ipairs(model.tasks) do tasks[#tasks + 1] = t.name end
  local scorer = rank.new(cfg.rank, { tasks = tasks, outputs = outputs, direct = model:direct_outputs(), columns = header })
  for _, c in ipairs(scorer.columns) do
    if not index[c] then fail("%s has no column '%s' (cfg.rank reads it)", input, c) end
  end
  local pass = opts.pass_through or {}
  for _, c in ipairs(pass) do
    if not index[c] then fail("%s has no column '%s' to pass through (columns: %s)", input, c, table.concat(header, ", ")) end
  end
  local need_text = #pass > 0 or #scorer.columns > 0
  local head = {}
  for _, c in ipairs(pass) do head[#head + 1] = csv_field(c) end
  for _, n in ipairs(outputs) do head[#head + 1] = "p_" .. n end
  head[#head + 1] = "rank_score"
  if scorer.expression then head[#head + 1] = "score" end
  local B = opts.batch_size or dc.batch_size or 1024
  o.batch_size, o.partition = B, parallel.score_partition(B)
  -- a batch's probabilities, one column per output
  local function score(batch)
    local res = model(batch)
    local cols = {}
    for i, name in ipairs(outputs) do
      local r = res[name] or fail("the model has no output '%s'", name)
      cols[i] = r.prob:reshape(batch.size, 1)
    end
    return { mtl.concat(cols, 2) }
  end
  -- Scores every batch; in a distributed run every rank scores its batches
  -- (parallel.score_partition) and rank 0 gets them back in input order and
  -- writes them to out (nil on the other ranks). Returns ok, error, rows.
  local function run(out)
    local text, close_text
    if need_text and out then
      text, close_text = records(input, quote)
      text() -- the header
    end
    local reader = mtl.data.csv(o)
    model:eval()
    local rows = 0
    local function write(parts)
      local probs = parts[1]
      local n = probs:size(1)
      rows = rows + n
      if not out then return end
      local env = {}
      for i, name in ipairs(outputs) do env[name] = probs:narrow(2, i, 1):values() end
      local passed = {}
      if text then
        for _, c in ipairs(scorer.columns) do env[c] = {} end
        for i = 1, n do
          local line = text() or fail("%s: fewer text rows than the reader read", input)
          local fields = predict.split(line, sep, quote)
          for _, c in ipairs(scorer.columns) do env[c][i] = tonumber(fields[index[c]]) or 0 / 0 end
          local p = {}
          for j, c in ipairs(pass) do p[j] = csv_field(fields[index[c]] or "") end
          passed[i] = p
        end
      end
      scorer:score(env, n)
      local buf = {}
      for i = 1, n do
        local parts_i = {}
        if text then for _, v in ipairs(passed[i]) do parts_i[#parts_i + 1] = v end end
        for _, name in ipairs(outputs) do parts_i[#parts_i + 1] = string.format("%.9g", env[name][i]) end
        parts_i[#parts_i + 1] = string.format("%.9g", env.rank_score[i])
        if env.score then parts_i[#parts_i + 1] = string.format("%.9g", env.score[i]) end
        buf[#buf + 1] = table.concat(parts_i, ",")
      end
      if n > 0 then out:write(table.concat(buf, "\n"), "\n") end
    end
    local ok, perr = pcall(mtl.no_grad, function()
      parallel.map_batches(reader:batches(), score, { mtl.zeros(0, #outputs) }, write)
    end)
    reader:close()
    if close_text then close_text() end
    return ok, perr, rows
  end
  if parallel.rank() ~= 0 then
    local ok, perr, rows = run(nil)
    if not ok then error(perr, 0) end
    return rows, head
  end
  -- the output: a temporary file next to it, renamed over it once every row is
  -- written; on an error the temporary file goes and an existing output stays
  return sys.replace(opts.output, function(tmp)
    local out, err = io.open(tmp, "w")
    if not out then fail("cannot write %s: %s", opts.output, tostring(err):gsub("^[^:]*: ", "")) end
    out:write(table.concat(head, ","), "\n")
    local ok, perr, rows = run(out)
    local closed, cerr = out:close()
    if not ok then error(perr, 0) end
    if not closed then fail("cannot write %s: %s", opts.output, tostring(cerr):gsub("^[^:]*: ", "")) end
    return rows, head
  end)
end

return predict
