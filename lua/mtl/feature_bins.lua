-- mtl.feature_bins: the bin edges mtl.features fits for raw features
-- (`bins = {method =, n =}`, docs/features.md); pure functions on Lua arrays.
local bins = {}

-- n equal-width bins over [lo, hi] -> n-1 inner boundaries
function bins.equal_width_edges(lo, hi, n)
  local edges = {}
  if not (hi > lo) then return edges end
  for k = 1, n - 1 do edges[k] = lo + (hi - lo) * k / n end
  return edges
end

-- equal-frequency: the k/n quantiles of sorted values (lower value at a split),
-- duplicates removed
function bins.equal_freq_edges(sorted, n)
  local edges, m = {}, #sorted
  for k = 1, n - 1 do
    local pos = math.floor(k * m / n)
    if pos >= 1 and pos < m then
      -- boundary between sorted[pos] and sorted[pos + 1]
      local e = sorted[pos + 1]
      if e > sorted[1] and (#edges == 0 or e > edges[#edges]) then edges[#edges + 1] = e end
    end
  end
  return edges
end

local function entropy(pos, n)
  if n == 0 or pos == 0 or pos == n then return 0 end
  local p = pos / n
  return -(p * math.log(p) + (1 - p) * math.log(1 - p))
end

-- Adaptive (supervised) binning, the way a decision tree picks splits: the
-- sorted (value, label) pairs are cut at the value boundary that most reduces
-- the label entropy (weighted by count), best segment first, until n bins or
-- no split gains; every bin keeps at least min_fraction of the rows.
function bins.adaptive_edges(values, labels, n, min_fraction)
  min_fraction = min_fraction or 0.05
  local m = #values
  local idx = {}
  for i = 1, m do idx[i] = i end
  table.sort(idx, function(a, b) return values[a] < values[b] end)
  -- prefix sums of positives over sorted rows
  local v, cum = {}, { [0] = 0 }
  for r = 1, m do
    v[r] = values[idx[r]]
    cum[r] = cum[r - 1] + (labels[idx[r]] > 0.5 and 1 or 0)
  end
  local min_rows = math.max(1, math.ceil(min_fraction * m))
  -- best cut of rows (lo, hi]: the row r with v[r] < v[r+1]
  local function best_cut(lo, hi)
    local n_all, p_all = hi - lo, cum[hi] - cum[lo]
    local base = entropy(p_all, n_all) * n_all
    local best, best_r = 1e-12, nil
    for r = lo + min_rows, hi - min_rows do
      if v[r] < v[r + 1] then
        local nl, pl = r - lo, cum[r] - cum[lo]
        local gain = base - entropy(pl, nl) * nl - entropy(p_all - pl, n_all - nl) * (n_all - nl)
        if gain > best then best, best_r = gain, r end
      end
    end
    return best_r, best
  end
  local segments = { { 0, m } }
  local cuts = {}
  while #segments < n do
    local pick, pick_r, pick_gain = nil, nil, 0
    for s, seg in ipairs(segments) do
      local r, g = best_cut(seg[1], seg[2])
      if r and g > pick_gain then pick, pick_r, pick_gain = s, r, g end
    end
    if not pick then break end
    local seg = table.remove(segments, pick)
    table.insert(segments, { seg[1], pick_r })
    table.insert(segments, { pick_r, seg[2] })
    cuts[#cuts + 1] = v[pick_r + 1] -- rows up to pick_r fall below this boundary
  end
  table.sort(cuts)
  return cuts
end

return bins
