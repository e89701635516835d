-- Case intake through the dispatcher: `spine start PROCESS` with a manifest in force.
local T = require("spine_test")

local function manifest_dir(files)
  local dir = os.tmpname() .. ".manifests"
  os.execute("mkdir -p " .. T.q(dir))
  for name, body in pairs(files) do
    local f = assert(io.open(dir .. "/" .. name, "w"))
    f:write(body)
    f:close()
  end
  return dir
end

local waiting = [[{
  "process": "waitproc",
  "input": { "contract_id": "string" },
  "subject": "contract_id",
  "experiment": { "id": "exp-intake", "owner": "ops" },
  "variants": [
    { "name": "control", "playbook": "tests/playbooks/waiter.lua", "weight": 50 },
    { "name": "other", "playbook": "tests/playbooks/cancellable.lua", "weight": 50 }
  ],
  "overrides": { "vip-1": "other" }
}]]

describe("spine start through the dispatcher", function()
  local url, env
  setup(function()
    url = T.newdb("spec_dispatch_intake")
    env = { SPINE_MANIFESTS = manifest_dir({ ["waitproc.json"] = waiting }) }
  end)

  it("records process, variant, experiment, subject and bucket, shown by spine show", function()
    local code, started = T.spine_json(url, { "start", "waitproc", "--input",
                                              '{"contract_id": "c-1"}' }, env)
    assert.are.equal(0, code)
    local _, route = T.spine_json(url, { "manifests", "route", "waitproc", "c-1" }, env)
    local _, wf = T.spine_json(url, { "show", started.id }, env)
    assert.are.equal("waitproc", wf.process)
    assert.are.equal(route.routes[1].variant, wf.variant)
    assert.are.equal(route.routes[1].bucket, wf.bucket)
    assert.are.equal("exp-intake", wf.experiment)
    assert.are.equal("c-1", wf.subject)
    assert.are.equal(started.variant, wf.variant)
    local playbook = wf.variant == "control" and "waiter" or "cancellable"
    assert.are.equal(playbook, wf.playbook)
    local _, out = T.spine(url, { "show", started.id }, env)
    assert.matches("variant   " .. wf.variant .. " %(experiment exp%-intake, subject c%-1%)", out)
  end)

  it("gives every case of one subject the same variant", function()
    local seen = {}
    for _, subject in ipairs({ "a", "b", "c", "d", "e", "f" }) do
      for round = 1, 2 do
        local code, s = T.spine_json(url, { "start", "waitproc", "--input",
                                            ('{"contract_id": "%s"}'):format(subject) }, env)
        assert.are.equal(0, code)
        if round == 1 then seen[subject] = s.variant else assert.are.equal(seen[subject], s.variant) end
      end
    end
  end)

  it("routes an override's subject to its variant and --subject wins over the input", function()
    local _, s = T.spine_json(url, { "start", "waitproc", "--input", '{"contract_id": "vip-1"}' },
                              env)
    assert.are.equal("other", s.variant)
    local _, s2 = T.spine_json(url, { "start", "waitproc", "--input", '{"contract_id": "x"}',
                                      "--subject", "vip-1" }, env)
    assert.are.equal("other", s2.variant)
    local _, wf = T.spine_json(url, { "show", s2.id }, env)
    assert.are.equal("vip-1", wf.subject)
  end)

  it("refuses input that does not fit the manifest, naming the field", function()
    local code, res = T.spine_json(url, { "start", "waitproc", "--input", '{"contract_id": 7}' },
                                   env)
    assert.are.equal(1, code)
    assert.are.equal("input.contract_id", res.error.field)
    assert.matches("expected string", res.error.message)
    code, res = T.spine_json(url, { "start", "waitproc", "--input", '{}' }, env)
    assert.are.equal(1, code)
    assert.are.equal("input.contract_id", res.error.field)
    assert.matches("missing", res.error.message)
  end)

  it("starts one workflow for 20 concurrent calls with one idempotency key", function()
    local outs = {}
    local cmd = ""
    for i = 1, 20 do
      outs[i] = os.tmpname()
      cmd = cmd .. ("(cd %s && SPINE_DATABASE_URL=%s SPINE_MANIFESTS=%s %s start waitproc " ..
        "--input '{\"contract_id\": \"k-1\"}' --idempotency-key same-key --json >%s 2>&1) & ")
        :format(T.q(T.src), T.q(url), T.q(env.SPINE_MANIFESTS), T.q(T.bin), outs[i])
    end
    os.execute(cmd .. "wait")
    local ids = {}
    for i = 1, 20 do
      local f = assert(io.open(outs[i]))
      local text = f:read("a")
      f:close()
      os.remove(outs[i])
      local ok, res = pcall(T.json.decode, text)
      assert.is_true(ok, text)
      assert.is_string(res.id, text)
      ids[res.id] = true
    end
    local n = 0
    for _ in pairs(ids) do n = n + 1 end
    assert.are.equal(1, n)
    assert.are.equal("1", T.sql(url,
      "SELECT count(*) FROM spine.workflows WHERE idempotency_key = 'same-key'"))
  end)

  it("starts a process without a manifest by its playbook, with no variant", function()
    local code, s = T.spine_json(url, { "start", "tests/playbooks/waiter.lua" }, env)
    assert.are.equal(0, code)
    assert.are.equal(T.json.null, s.variant)
    assert.are.equal("waiter", s.process)
  end)

  it("lets the playbook read its variant and experiment from ctx", function()
    local facts = [[{
      "process": "factsproc",
      "input": { "customer": "string" },
      "subject": "customer",
      "experiment": { "id": "exp-facts", "owner": "ops" },
      "variants": [ { "name": "only", "playbook": "tests/playbooks/facts.lua", "weight": 100 } ]
    }]]
    local fenv = { SPINE_MANIFESTS = manifest_dir({ ["factsproc.json"] = facts }) }
    local db = T.newdb("spec_dispatch_facts")
    local code, started = T.spine_json(db, { "start", "factsproc", "--input",
                                             '{"customer": "c-7"}' }, fenv)
    assert.are.equal(0, code)
    local srv = T.serve(db, fenv)
    local wf = T.wait_until(function()
      local _, w = T.spine_json(db, { "show", started.id })
      return w and w.status == "completed" and w
    end, 30, "the case to complete")
    T.kill(srv, "TERM")
    assert.are.same({ variant = "only", experiment = "exp-facts", process = "factsproc",
                      attempt = 1, id = started.id }, wf.result)
  end)
end)
