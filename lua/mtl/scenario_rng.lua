-- The random numbers of mtl.scenario: MRG32k3a (L'Ecuyer 1999) in exact
-- double arithmetic. The same stream on every machine; independent of
-- mtl.seed's stream.
--
--   scenario.rng(seed) -> {uniform = f() in (0, 1), normal = f(), int = f(n) in 1..n}
--   scenario.rng{state = {s10, s11, s12, s20, s21, s22}}: the generator from a
--   raw state (x[n-3], x[n-2], x[n-1] of each component), without warm-up.
local M1, M2 = 4294967087, 4294944443
local NORM = 1 / (M1 + 1)

local function mod(p, m)
  local r = p - math.floor(p / m) * m -- exact: |p| < 2^53, floor(p/m) * m < 2^53
  if r < 0 then r = r + m elseif r >= m then r = r - m end
  return r
end

local function rng(seed)
  local s10, s11, s12, s20, s21, s22
  if type(seed) == "table" and type(seed.state) == "table" then
    s10, s11, s12, s20, s21, s22 = unpack(seed.state, 1, 6)
  else
    if type(seed) ~= "number" or seed ~= math.floor(seed) or seed < 0 or seed >= 2 ^ 31 then
      error("mtl.scenario: seed must be a whole number in 0..2^31-1, got " .. tostring(seed), 2)
    end
    local x = seed + 1
    local function lcg()
      x = mod(x * 48271 + 11, 2147483647)
      return x + 1
    end
    s10, s11, s12, s20, s21, s22 = lcg(), lcg(), lcg(), lcg(), lcg(), lcg()
  end
  local function uniform()
    local p1 = mod(1403580 * s11 - 810728 * s10, M1)
    s10, s11, s12 = s11, s12, p1
    local p2 = mod(527612 * s22 - 1370589 * s20, M2)
    s20, s21, s22 = s21, s22, p2
    if p1 > p2 then return (p1 - p2) * NORM end
    return (p1 - p2 + M1) * NORM
  end
  if type(seed) == "number" then
    for _ = 1, 16 do uniform() end
  end
  local function normal()
    return math.sqrt(-2 * math.log(uniform())) * math.cos(2 * math.pi * uniform())
  end
  local function int(n) return math.floor(uniform() * n) + 1 end
  return { uniform = uniform, normal = normal, int = int }
end

return rng
