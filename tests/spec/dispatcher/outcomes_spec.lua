-- Business outcomes (issue 15 §0): a playbook names its outcome with ctx.outcome("read"); the
-- name is a step (replayed exactly) and is kept on the workflow, and `spine experiments` counts
-- each outcome per variant with its interval and its difference to the control's.
local T = require("spine_test")

local Z = 1.959963984540054

local function wilson(s, n)
  local p = s / n
  local denom = 1 + Z * Z / n
  local centre = (p + Z * Z / (2 * n)) / denom
  local half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / denom
  return centre - half, centre + half
end

local function near(a, b) return math.abs(a - b) < 1e-5 end

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

-- A playbook that waits for a meter reading at most 3 days and names what happened.
local READING = [[
return {
  name = "reading",
  run = function(ctx, input)
    local got = ctx.wait("customer.meter_reading", { timeout = "3d" })
    ctx.outcome(got and "read" or "estimated")
    return { value = got and got.value }
  end,
}
]]

describe("ctx.outcome", function()
  local url, dir
  setup(function()
    url = T.newdb("spec_outcomes")
    dir = T.tmpfile()
    assert(os.execute("mkdir -p " .. T.q(dir)))
    write(dir .. "/reading.lua", READING)
    write(dir .. "/renamed.lua", (READING:gsub('"estimated"', '"guessed"')))
    write(dir .. "/bad.lua", 'return { name = "bad", run = function(ctx) ctx.outcome("Not OK") end }')
  end)
  teardown(function() os.execute("rm -rf " .. T.q(dir)) end)

  it("is kept on the workflow, shown by spine show, and replayed exactly", function()
    local code, wf = T.spine_json(url, { "run", dir .. "/reading.lua", "--clock", "virtual" })
    assert.are.equal(0, code)
    assert.are.equal("completed", wf.status)
    assert.are.equal("estimated", T.sql(url, "SELECT outcome FROM spine.workflows WHERE id = '" ..
                                             wf.id .. "'"))
    local _, shown = T.spine_json(url, { "show", wf.id })
    assert.are.equal("estimated", shown.outcome)
    assert.are.same({ "wait", "outcome" }, { shown.steps[1].kind, shown.steps[2].kind })
    local _, text = T.spine(url, { "show", wf.id })
    assert.matches("outcome   estimated", text, 1, true)
    assert.are.equal(0, (T.spine(url, { "replay", wf.id, "--playbook", dir .. "/reading.lua" })))
    local rc, out = T.spine(url, { "replay", wf.id, "--playbook", dir .. "/renamed.lua" })
    assert.are.equal(1, rc)
    assert.matches('the history has outcome \\"estimated\\", the playbook now asks for outcome' ..
                   ' \\"guessed\\"', out, 1, true)
  end)

  it("refuses a name that is not [a-z][a-z0-9_]*", function()
    local _, wf = T.spine_json(url, { "run", dir .. "/bad.lua", "--clock", "virtual" })
    assert.are.equal("failed", wf.status)
    assert.matches("an outcome is a name", wf.error.message, 1, true)
  end)
end)

-- One finished workflow row of `variant` that named `outcome` (nil: none), 16 days long.
local function row(id, variant, status, outcome)
  return ("('%s', 'meter', 'x', 'h', '%s', 'exp-o', '%s', %s, 't', now() - interval '20 days'," ..
          " now() - interval '4 days')")
    :format(id, variant, status, outcome and ("'" .. outcome .. "'") or "NULL")
end

-- A database with the experiment's finished cases: control 3 read and 7 estimated, remind 9
-- read and 1 estimated (and, with `waiting`, one still under way that named its outcome).
local function seeded(name, waiting)
  local url = T.newdb(name)
  assert.are.equal(0, (T.spine_json(url, { "list" })))
  local rows = {}
  for i = 1, 10 do
    rows[#rows + 1] = row("c" .. i, "control", "completed", i <= 3 and "read" or "estimated")
    rows[#rows + 1] = row("r" .. i, "remind", "completed", i <= 9 and "read" or "estimated")
  end
  if waiting then rows[#rows + 1] = row("rw", "remind", "waiting", "read") end
  T.sql(url, "INSERT INTO spine.playbook_versions (hash, name, path, source) VALUES " ..
             "('h', 'x', 'x', 'return {}')")
  T.sql(url, "INSERT INTO spine.workflows (id, process, playbook, version, variant, experiment," ..
             " status, outcome, trace_id, created_at, ended_at) VALUES " .. table.concat(rows, ","))
  return url
end

describe("spine experiments with outcomes", function()
  local url
  setup(function() url = seeded("spec_outcomes_report", true) end)

  it("counts each outcome per variant with its Wilson interval and the comparison", function()
    local code, rep = T.spine_json(url, { "experiments", "--process", "meter" })
    assert.are.equal(0, code)
    local c, r = rep.experiments[1].variants[1], rep.experiments[1].variants[2]
    assert.are.same({ "control", "remind" }, { c.variant, r.variant })
    -- both all completed: the success rate cannot tell them apart, the outcomes can
    assert.are.same({ 1, 1 }, { c.success_rate, r.success_rate })
    assert.are.same({ "estimated", "read" }, { c.outcomes[1].outcome, c.outcomes[2].outcome })
    assert.are.same({ 7, 3 }, { c.outcomes[1].count, c.outcomes[2].count })
    local read = r.outcomes[2]
    assert.are.same({ "read", 9 }, { read.outcome, read.count })
    assert.is_true(near(read.share, 0.9))
    local lo, hi = wilson(9, 10)
    assert.is_true(near(read.ci95[1], lo) and near(read.ci95[2], hi))
    assert.is_true(near(read.vs_control.difference, 0.6))
    assert.is_true(read.vs_control.significant)
    assert.are.equal(T.json.null, c.outcomes[2].vs_control)
  end)

  it("prints outcome lines and readable durations for people", function()
    local code, out = T.spine(url, { "experiments", "--process", "meter" })
    assert.are.equal(0, code)
    assert.matches("outcome read%s+9 of 10%s+90.0%% %[", out)
    assert.matches("+60.0 pts", out, 1, true)
    assert.matches("16 d / 16 d", out, 1, true)
    assert.not_matches("ms", out, 1, true)
  end)
end)

describe("GET /v1/experiments", function()
  it("reports the outcomes as spine experiments --json does (api_experiments.c)", function()
    local url = seeded("spec_outcomes_api", false)
    local code, tok = T.spine_json(url, { "tokens", "create", "--subject", "ops:r",
                                          "--scopes", "workflows:read" })
    assert.are.equal(0, code)
    local srv = T.serve(url)
    local base = "http://127.0.0.1:" .. T.http_port(srv)
    local status, text = T.http("GET", base .. "/v1/experiments?process=meter",
                                { headers = { "Authorization: Bearer " .. tok.token } })
    T.kill(srv, "TERM")
    assert.are.equal(200, status)
    local api = T.json.decode(text).items[1]
    local _, cli = T.spine_json(url, { "experiments", "--process", "meter" })
    assert.are.same(cli.experiments[1].variants[2].outcomes, api.variants[2].outcomes)
    assert.are.equal(9, api.variants[2].outcomes[2].count)
  end)
end)

describe("a manifest's outcome rule", function()
  it("names the outcome of completed cases from their result; ctx.outcome wins", function()
    local url = T.newdb("spec_outcomes_rule")
    local dir = T.tmpfile()
    assert(os.execute("mkdir -p " .. T.q(dir .. "/m") .. " " .. T.q(dir .. "/p")))
    write(dir .. "/p/meter.lua", 'return { name = "meter", run = function(ctx) return {} end }')
    write(dir .. "/m/meter.json", [[{
  "process": "meter", "input": { "customer": "string" }, "subject": "customer",
  "experiment": { "id": "exp-o" }, "outcome": "result.case.end",
  "variants": [ { "name": "control", "weight": 50 }, { "name": "remind", "weight": 50 } ]
}]])
    local env = { SPINE_MANIFESTS = dir .. "/m", SPINE_PLAYBOOKS = dir .. "/p" }
    local rc, _, err = T.spine_json(url, { "manifests", "reload" }, env)
    assert.are.equal(0, rc, err)
    T.sql(url, "INSERT INTO spine.playbook_versions (hash, name, path, source) VALUES " ..
               "('h', 'x', 'x', 'return {}')")
    -- control: 2 results say read, 1 says estimated, 1 named "read" itself though its result
    -- says estimated, 1 failed (no result: no outcome); remind: 3 read, 1 with no such field
    local rows = {
      { "c1", "control", "completed", nil, '{"case": {"end": "read"}}' },
      { "c2", "control", "completed", nil, '{"case": {"end": "read"}}' },
      { "c3", "control", "completed", nil, '{"case": {"end": "estimated"}}' },
      { "c4", "control", "completed", "read", '{"case": {"end": "estimated"}}' },
      { "c5", "control", "failed", nil, nil },
      { "r1", "remind", "completed", nil, '{"case": {"end": "read"}}' },
      { "r2", "remind", "completed", nil, '{"case": {"end": "read"}}' },
      { "r3", "remind", "completed", nil, '{"case": {"end": "read"}}' },
      { "r4", "remind", "completed", nil, '{"other": 1}' },
    }
    local values = {}
    for _, r in ipairs(rows) do
      values[#values + 1] = ("('%s', 'meter', 'x', 'h', '%s', 'exp-o', '%s', %s, %s, 't')")
        :format(r[1], r[2], r[3], r[4] and ("'" .. r[4] .. "'") or "NULL",
                r[5] and ("'" .. r[5] .. "'") or "NULL")
    end
    T.sql(url, "INSERT INTO spine.workflows (id, process, playbook, version, variant," ..
               " experiment, status, outcome, result, trace_id) VALUES " ..
               table.concat(values, ","))
    local code, rep = T.spine_json(url, { "experiments", "--process", "meter" })
    os.execute("rm -rf " .. T.q(dir))
    assert.are.equal(0, code)
    local c, r = rep.experiments[1].variants[1], rep.experiments[1].variants[2]
    local function counts(v)
      local t = {}
      for _, o in ipairs(v.outcomes) do t[o.outcome] = o.count end
      return t
    end
    assert.are.same({ read = 3, estimated = 1 }, counts(c))
    assert.are.same({ read = 3, estimated = 0 }, counts(r))
  end)
end)
