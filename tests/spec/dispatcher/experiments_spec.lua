-- `spine experiments` over a seeded set of finished workflows, checked against hand computations.
local T = require("spine_test")

local Z = 1.959963984540054

-- The Wilson score interval, written out as in any statistics book.
local function wilson(s, n)
  local p = s / n
  local denom = 1 + Z * Z / n
  local centre = (p + Z * Z / (2 * n)) / denom
  local half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / denom
  return centre - half, centre + half
end

local function near(a, b) return math.abs(a - b) < 1e-5 end

-- One workflow row of `variant` in `status`, created at `age` days ago, ended after `secs`.
local function row(id, variant, status, secs, age)
  return ("('%s', 'seeded', 'x', 'h', '%s', 'exp-seed', '%s', 't', now() - interval '%d days'," ..
          " CASE WHEN %s IS NULL THEN NULL ELSE now() - interval '%d days' + interval '%s seconds' END)")
    :format(id, variant, status, age, secs or "NULL", age, secs or "0")
end

describe("spine experiments", function()
  local url
  setup(function()
    url = T.newdb("spec_dispatch_experiments")
    assert.are.equal(0, (T.spine_json(url, { "list" })))
    local rows = {}
    -- control: 8 completed in 1..8 s, 1 failed, 1 compensated, 2 waiting, 1 cancelled
    for i = 1, 8 do rows[#rows + 1] = row("c" .. i, "control", "completed", i, 1) end
    rows[#rows + 1] = row("cf", "control", "failed", 1, 1)
    rows[#rows + 1] = row("cc", "control", "compensated", 1, 1)
    rows[#rows + 1] = row("cw1", "control", "waiting", nil, 1)
    rows[#rows + 1] = row("cw2", "control", "waiting", nil, 1)
    rows[#rows + 1] = row("cx", "control", "cancelled", 1, 1)
    -- fast: 19 completed in 10 s each, 1 failed
    for i = 1, 19 do rows[#rows + 1] = row("f" .. i, "fast", "completed", 10, 1) end
    rows[#rows + 1] = row("ff", "fast", "failed", 2, 1)
    -- long ago: only counted without --since
    rows[#rows + 1] = row("old", "fast", "failed", 1, 60)
    T.sql(url, "INSERT INTO spine.playbook_versions (hash, name, path, source) VALUES " ..
               "('h', 'x', 'x', 'return {}')")
    T.sql(url, "INSERT INTO spine.workflows (id, process, playbook, version, variant, experiment," ..
               " status, trace_id, created_at, ended_at) VALUES " .. table.concat(rows, ","))
  end)

  it("reports counts, durations, the Wilson interval and the comparison to control", function()
    local code, rep = T.spine_json(url, { "experiments", "--process", "seeded", "--since", "7d" })
    assert.are.equal(0, code)
    assert.are.equal(1, #rep.experiments)
    local x = rep.experiments[1]
    assert.are.equal("exp-seed", x.experiment)
    assert.are.equal("control", x.control)
    local c, f = x.variants[1], x.variants[2]
    assert.are.equal("control", c.variant)
    assert.are.same({ 13, 8, 1, 1, 1, 2, 10 },
                    { c.started, c.completed, c.failed, c.compensated, c.cancelled, c.active,
                      c.finished })
    assert.is_true(near(c.success_rate, 0.8))
    local lo, hi = wilson(8, 10)
    assert.is_true(near(c.ci95[1], lo) and near(c.ci95[2], hi))
    -- median of 1..8 s is 4.5 s; p95 interpolates 65 % of the way from 7 s to 8 s
    assert.is_true(near(c.duration_ms.median, 4500))
    assert.is_true(near(c.duration_ms.p95, 7650))
    assert.are.equal(T.json.null, c.vs_control)
    assert.are.same({ 20, 19, 1 }, { f.started, f.completed, f.failed })
    lo, hi = wilson(19, 20)
    assert.is_true(near(f.ci95[1], lo) and near(f.ci95[2], hi))
    -- pooled two-proportion z: (0.95 - 0.8) / sqrt(0.9 * 0.1 * (1/10 + 1/20))
    local z = 0.15 / math.sqrt(0.9 * 0.1 * (1 / 10 + 1 / 20))
    assert.is_true(near(f.vs_control.difference, 0.15))
    assert.is_true(math.abs(f.vs_control.z - z) < 1e-4)
    assert.is_false(f.vs_control.significant)
  end)

  it("counts cases older than --since only without it", function()
    local _, rep = T.spine_json(url, { "experiments", "--process", "seeded" })
    assert.are.equal(21, rep.experiments[1].variants[2].started)
    local _, none = T.spine_json(url, { "experiments", "--process", "nothing" })
    assert.are.same({}, none.experiments)
  end)

  it("prints a table for people", function()
    local code, out = T.spine(url, { "experiments", "--process", "seeded", "--since", "7d" })
    assert.are.equal(0, code)
    assert.matches("seeded  experiment exp%-seed", out)
    assert.matches("control%s+13%s+8%s+1%s+1", out)
  end)
end)
