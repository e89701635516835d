-- A variant without a copied playbook (issue 15 §3): the manifest gives the process's playbook
-- parameters, which ctx.param reads. They are stored with the case when it starts, so a reload
-- of the manifests, a crash and a replay on another worker all read the same values.
local T = require("spine_test")

local function write(dir, name, body)
  local f = assert(io.open(dir .. "/" .. name, "w"))
  f:write(body)
  f:close()
end

local function manifest(polling_params)
  return [[{
  "process": "param_waiter",
  "input": { "contract_id": "string" },
  "subject": "contract_id",
  "experiment": { "id": "exp-params", "owner": "ops" },
  "variants": [
    { "name": "control", "weight": 50 },
    { "name": "polling", "params": ]] .. polling_params .. [[, "weight": 50 }
  ],
  "overrides": { "c-control": "control", "c-polling": "polling" }
}]]
end

describe("variant parameters", function()
  local url, dir, env

  setup(function()
    url = T.newdb("spec_dispatch_params")
    dir = os.tmpname()
    os.remove(dir) -- a name only: os.tmpname made the file
    dir = dir .. ".manifests"
    os.execute("mkdir -p " .. T.q(dir))
    write(dir, "param_waiter.json", manifest('{"mode": "polling", "limit": [1, 2.5, "x"]}'))
    env = { SPINE_MANIFESTS = dir, SPINE_PLAYBOOKS = "tests/playbooks" }
  end)

  teardown(function()
    os.execute("rm -rf " .. T.q(dir))
  end)

  local function start(subject)
    local code, s, err = T.spine_json(url, { "start", "param_waiter", "--input",
                                             ('{"contract_id": "%s"}'):format(subject) }, env)
    assert.are.equal(0, code, err)
    return s
  end

  local function status(id)
    return T.sql(url, "SELECT status FROM spine.workflows WHERE id = '" .. id .. "'")
  end

  it("are read by ctx.param, stay with the case through a reload and a crash", function()
    assert.are.equal(0, (T.spine_json(url, { "manifests", "reload" }, env)))
    local control, polling = start("c-control"), start("c-polling")
    assert.are.equal("control", control.variant)
    assert.are.equal("polling", polling.variant)
    local _, shown = T.spine_json(url, { "show", polling.id }, env)
    assert.are.equal("param_waiter", shown.playbook) -- no playbook named: the process's
    assert.are.same({ mode = "polling", limit = { 1, 2.5, "x" } }, shown.params)

    local srv = T.serve(url, env)
    T.wait_until(function()
      return status(control.id) == "waiting" and status(polling.id) == "waiting"
    end, 30, "both cases to wait")
    -- the manifest changes its parameters; the worker dies mid-wait
    write(dir, "param_waiter.json", manifest('{"mode": "daily"}'))
    assert.are.equal(0, (T.spine_json(url, { "manifests", "reload" }, env)))
    T.kill(srv, "KILL")
    srv = T.serve(url, env)
    for _, id in ipairs({ control.id, polling.id }) do
      assert.are.equal(0, (T.spine(url, { "signal", id, "go" }, env)))
    end
    T.wait_until(function()
      return status(control.id) == "completed" and status(polling.id) == "completed"
    end, 60, "both cases to complete")
    local _, p = T.spine_json(url, { "show", polling.id }, env)
    assert.are.same({ before = "polling", after = "polling", limit = { 1, 2.5, "x" }, days = 14 },
                    p.result)
    local _, c = T.spine_json(url, { "show", control.id }, env)
    assert.are.same({ before = "webhook", after = "webhook", days = 14 }, c.result)
    -- a case started now gets the new parameters
    local later = start("c-polling")
    T.wait_until(function() return status(later.id) == "waiting" end, 30, "the new case to wait")
    T.spine(url, { "signal", later.id, "go" }, env)
    T.wait_until(function() return status(later.id) == "completed" end, 30, "the new case")
    local _, l = T.spine_json(url, { "show", later.id }, env)
    assert.are.equal("daily", l.result.before)
    T.kill(srv, "TERM")
  end)

  it("must be an object, named with its line when not", function()
    local bad = os.tmpname()
    os.remove(bad)
    bad = bad .. ".manifests"
    os.execute("mkdir -p " .. T.q(bad))
    write(bad, "param_waiter.json", manifest('["polling"]'))
    local code, out = T.spine_json(url, { "manifests", "check" },
                                   { SPINE_MANIFESTS = bad, SPINE_PLAYBOOKS = "tests/playbooks" })
    os.execute("rm -rf " .. T.q(bad))
    assert.are_not.equal(0, code)
    local text = require("cjson").encode(out)
    assert.matches("variants[1].params", text, 1, true)
    assert.matches("expected an object of parameters", text, 1, true)
    assert.matches("param_waiter.json:8", text, 1, true)
  end)
end)
