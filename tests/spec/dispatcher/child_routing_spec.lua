-- Children go through the dispatcher (issue 15 §3): ctx.start and ctx.child of a process with a
-- manifest in force are routed as `spine start` routes a case (the same bucket for the same
-- subject, overrides, the variant's parameters, counted in the experiment), unless the call
-- names a playbook; a reload reaches the workers at its commit; a refusal is a recorded step.
local T = require("spine_test")

local function write(dir, name, body)
  local f = assert(io.open(dir .. "/" .. name, "w"))
  f:write(body)
  f:close()
end

local function manifest(overrides)
  return [[{
  "process": "param_waiter",
  "input": { "contract_id": "string" },
  "subject": "contract_id",
  "experiment": { "id": "exp-children", "owner": "ops" },
  "variants": [
    { "name": "control", "weight": 50 },
    { "name": "polling", "params": {"mode": "polling"}, "weight": 50 }
  ],
  "overrides": ]] .. overrides .. [[
}]]
end

describe("children routed by the dispatcher", function()
  local url, dir, env, srv

  setup(function()
    url = T.newdb("spec_child_routing")
    dir = os.tmpname()
    os.remove(dir)
    dir = dir .. ".manifests"
    os.execute("mkdir -p " .. T.q(dir))
    write(dir, "param_waiter.json", manifest('{"c-control": "control", "c-polling": "polling"}'))
    env = { SPINE_MANIFESTS = dir, SPINE_PLAYBOOKS = "tests/playbooks" }
    assert.are.equal(0, (T.spine_json(url, { "manifests", "reload" }, env)))
    srv = T.serve(url, env)
  end)

  teardown(function()
    if srv then T.kill(srv, "TERM") end
    os.execute("rm -rf " .. T.q(dir))
  end)

  local function row(id)
    local r = T.sql(url, ("SELECT coalesce(status, '') || '|' || coalesce(variant, '') || '|' ||" ..
      " coalesce(experiment, '') || '|' || coalesce(subject, '') || '|' ||" ..
      " coalesce(bucket::text, '') || '|' || coalesce(params::text, '') || '|' || playbook" ..
      " FROM spine.workflows WHERE id = '%s'"):format(id))
    if not r or r == "" then return nil end
    local f = {}
    for v in (r .. "|"):gmatch("([^|]*)|") do f[#f + 1] = v end
    return { status = f[1], variant = f[2], experiment = f[3], subject = f[4], bucket = f[5],
             params = f[6], playbook = f[7] }
  end

  local function parent(how, subject)
    local input = { how = how, subject = subject }
    local code, s, err = T.spine_json(url, { "start", "tests/playbooks/router_parent.lua",
                                             "--input", T.json.encode(input) }, env)
    assert.are.equal(0, code, err)
    return s.id
  end

  local function ended(id)
    return T.wait_until(function()
      local r = row(id)
      return r and (r.status == "completed" or r.status == "failed") and r
    end, 60, "workflow " .. id .. " to end")
  end

  local function started_child(id)
    local _, shown = T.spine_json(url, { "show", id }, env)
    assert.are.equal("completed", shown.status, T.json.encode(shown))
    return shown.result.started
  end

  it("routes ctx.start like spine start: same variant and bucket for the same subject", function()
    for _, subject in ipairs({ "c-control", "c-polling", "c-1", "c-2", "c-3", "c-4" }) do
      local p = parent("start", subject)
      ended(p)
      local child = row(started_child(p))
      local code, direct, err = T.spine_json(url, { "start", "param_waiter", "--input",
        T.json.encode({ contract_id = subject }) }, env)
      assert.are.equal(0, code, err)
      local d = row(direct.id)
      assert.are.equal(d.variant, child.variant, subject)
      assert.are.equal(d.bucket, child.bucket, subject)
      assert.are.equal("exp-children", child.experiment)
      assert.are.equal(subject, child.subject)
      if subject == "c-polling" then
        assert.are.equal("polling", child.variant)
        assert.are.same({ mode = "polling" }, T.json.decode(child.params))
      elseif subject == "c-control" then
        assert.are.equal("control", child.variant)
      end
    end
    -- the experiment counts them: 6 children and 6 direct cases
    local _, ex = T.spine_json(url, { "experiments" }, env)
    local e = ex.experiments[1]
    assert.are.equal("exp-children", e.experiment, T.json.encode(ex))
    assert.are.equal(1, #ex.experiments)
    local total = 0
    for _, v in ipairs(e.variants) do total = total + v.started end
    assert.are.equal(12, total, T.json.encode(ex))
  end)

  it("runs a ctx.child in its variant, with the variant's parameters", function()
    local p = parent("child", "c-polling")
    local child_id
    T.wait_until(function()
      child_id = T.sql(url, "SELECT id FROM spine.workflows WHERE parent_id = '" .. p ..
                            "' AND status = 'waiting'")
      return child_id and child_id ~= ""
    end, 60, "the child to wait")
    assert.are.equal("polling", row(child_id).variant)
    assert.are.equal(0, (T.spine(url, { "signal", child_id, "go" }, env)))
    ended(p)
    local _, shown = T.spine_json(url, { "show", p }, env)
    assert.are.equal("polling", shown.result.before)
    assert.are.equal("polling", shown.result.after)
  end)

  it("leaves a child unrouted when the call names its playbook", function()
    local p = parent("named", "c-polling")
    ended(p)
    local child = row(started_child(p))
    assert.are.equal("", child.variant)
    assert.are.equal("", child.experiment)
  end)

  it("routes by the subject the call gives", function()
    local p = parent("by_subject", "c-polling")
    ended(p)
    local child = row(started_child(p))
    assert.are.equal("polling", child.variant)
    assert.are.equal("c-polling", child.subject)
  end)

  it("follows a reload at once: the worker hears of it when it commits", function()
    -- c-moved's override changes with each reload; its child follows as soon as the worker
    -- says it routes by that load
    for _, variant in ipairs({ "polling", "control" }) do
      write(dir, "param_waiter.json", manifest('{"c-moved": "' .. variant .. '"}'))
      assert.are.equal(0, (T.spine_json(url, { "manifests", "reload" }, env)))
      local load = T.sql(url, "SELECT max(id) FROM spine.manifest_loads")
      T.wait_until(function()
        return T.log_of(srv):find('"msg":"children routed by the manifests in force","load":"' ..
                                  load .. '"', 1, true)
      end, 30, "the worker to route by load " .. load)
      local p = parent("start", "c-moved")
      ended(p)
      assert.are.equal(variant, row(started_child(p)).variant)
    end
  end)

  it("records a refused child: the playbook catches it, a replay after kill -9 raises it again",
     function()
    local p = parent("refused")
    T.wait_until(function()
      return T.sql(url, "SELECT state FROM spine.workflows WHERE id = '" .. p .. "'") == "refused"
    end, 60, "the refusal")
    local step = T.sql(url, "SELECT kind || ' ' || status || ' ' || (error->>'code') FROM" ..
                            " spine.steps WHERE workflow_id = '" .. p .. "' AND kind = 'start'")
    assert.are.equal("start failed routing_refused", step)
    T.kill(srv, "KILL")
    srv = T.serve(url, env)
    assert.are.equal(0, (T.spine(url, { "signal", p, "go" }, env)))
    ended(p)
    local _, shown = T.spine_json(url, { "show", p }, env)
    assert.are.equal("completed", shown.status)
    assert.is_false(shown.result.ok)
    assert.are.equal("invalid_argument", shown.result.kind)
    assert.are.equal("routing_refused", shown.result.code)
    assert.are.equal("input.contract_id", shown.result.field)
    assert.truthy(shown.result.message:find("param_waiter.json", 1, true), shown.result.message)
    assert.are.equal(0, tonumber(T.sql(url, "SELECT count(*) FROM spine.workflows WHERE" ..
                                            " parent_id = '" .. p .. "'")))
  end)

  it("starts with a stored manifest that no longer parses, and runs its children by name",
     function()
    -- as a newer version's stricter rules would find it: the row is there, the parser refuses it
    T.sql(url, "UPDATE spine.manifests SET body = replace(body, '\"subject\"', '\"subjekt\"')" ..
               " WHERE process = 'param_waiter'")
    -- and serve's own reload at its start is refused (a bad file): the stored set stays
    write(dir, "broken.json", "{")
    T.kill(srv, "TERM")
    srv = T.serve(url, env)
    T.http_port(srv) -- it serves
    T.wait_until(function() return T.log_of(srv):find("manifests refused", 1, true) end, 30,
                 "serve's reload to be refused")
    assert.truthy(T.log_of(srv):find("a manifest in force no longer parses", 1, true),
                  T.log_of(srv))
    local p = parent("start", "c-polling")
    ended(p)
    local child = row(started_child(p))
    assert.are.equal("", child.variant)
    assert.are.equal("param_waiter", child.playbook)
  end)
end)
