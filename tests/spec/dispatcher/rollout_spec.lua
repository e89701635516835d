-- Weights over many subjects, roll-outs by reload, and refused manifests that change nothing.
local T = require("spine_test")

local function write(path, body)
  local f = assert(io.open(path, "w"))
  f:write(body)
  f:close()
end

local function manifest(control, fast, playbook_fast)
  return ([[{
  "process": "rollout",
  "input": { "contract_id": "string" },
  "subject": "contract_id",
  "experiment": { "id": "exp-rollout", "owner": "ops" },
  "variants": [
    { "name": "control", "playbook": "tests/playbooks/waiter.lua", "weight": %s },
    { "name": "fast", "playbook": "%s", "weight": %s }
  ]
}]]):format(control, playbook_fast or "tests/playbooks/cancellable.lua", fast)
end

-- The variant of each of n subjects under the manifest in force.
local function routes(url, env, n)
  local file = os.tmpname()
  local f = assert(io.open(file, "w"))
  for i = 1, n do f:write("subject-", i, "\n") end
  f:close()
  local code, res, err = T.spine_json(url, { "manifests", "route", "rollout",
                                             "--subjects-file", file }, env)
  os.remove(file)
  assert.are.equal(0, code, err)
  local by = {}
  for _, r in ipairs(res.routes) do by[r.subject] = r.variant end
  return by
end

local function count(by, variant)
  local n = 0
  for _, v in pairs(by) do if v == variant then n = n + 1 end end
  return n
end

describe("roll-outs", function()
  local url, dir, env
  before_each(function()
    url = T.newdb("spec_dispatch_rollout")
    dir = os.tmpname() .. ".manifests"
    os.execute("mkdir -p " .. T.q(dir))
    env = { SPINE_MANIFESTS = dir }
  end)

  it("lands 10,000 subjects within 1.5 points of 90/10 and moves only 10 % to 80/20", function()
    write(dir .. "/rollout.json", manifest(90, 10))
    assert.are.equal(0, (T.spine_json(url, { "manifests", "reload" }, env)))
    local first = routes(url, env, 10000)
    -- fixed subjects and a fixed hash: these bounds are deterministic, they cannot flake
    local fast = count(first, "fast")
    assert.is_true(fast >= 850 and fast <= 1150, "fast got " .. fast)
    assert.are.same(first, routes(url, env, 10000)) -- the same subjects again: the same variants
    -- the routes agree with real intake for a sample
    for i = 1, 20 do
      local _, s = T.spine_json(url, { "start", "rollout", "--input",
                                       ('{"contract_id": "subject-%d"}'):format(i) }, env)
      assert.are.equal(first["subject-" .. i], s.variant)
    end
    write(dir .. "/rollout.json", manifest(80, 20))
    assert.are.equal(0, (T.spine_json(url, { "manifests", "reload" }, env)))
    local second = routes(url, env, 10000)
    local moved, back = 0, 0
    for s, v in pairs(first) do
      if v ~= second[s] then moved = moved + 1 end
      if v == "fast" and second[s] == "control" then back = back + 1 end
    end
    assert.are.equal(0, back)
    assert.are.equal(count(second, "fast") - fast, moved)
    assert.is_true(moved >= 850 and moved <= 1150, "moved " .. moved)
  end)

  it("refuses bad manifests with file, field and reason and keeps the old one in force", function()
    local path = dir .. "/rollout.json"
    write(path, manifest(90, 10))
    assert.are.equal(0, (T.spine_json(url, { "manifests", "reload" }, env)))
    local bad = {
      { manifest(90, 9), "rollout.json:6", "variants", "weights sum to 99" },
      { manifest(90, 10, "no_such_playbook"), "rollout.json:8", "variants[1].playbook",
        "no playbook" },
      { manifest(90, 10, "tests/playbooks/bad_syntax.lua"), "rollout.json:8",
        "variants[1].playbook", "does not compile" },
      { (manifest(90, 10):gsub('"owner": "ops"', '"owner" "ops"')), "rollout.json:5", "",
        "malformed JSON: expected ':'" },
    }
    for _, case in ipairs(bad) do
      write(path, case[1])
      for _, action in ipairs({ "check", "reload" }) do
        local code, res = T.spine_json(url, { "manifests", action }, env)
        assert.are.equal(1, code)
        assert.are.equal(dir .. "/" .. case[2], res.error.where)
        assert.are.equal(case[3], res.error.field)
        assert.matches(case[4], res.error.message, 1, true)
      end
      local _, out = T.spine(url, { "manifests", "check" }, env)
      assert.matches(case[2] .. ": ", out, 1, true)
      -- still routed by the 90/10 manifest in force
      local _, shown = T.spine_json(url, { "manifests", "show" }, env)
      assert.are.equal(10, shown.manifests[1].manifest.variants[2].weight)
      local code = T.spine_json(url, { "start", "rollout", "--input", '{"contract_id": "z"}' }, env)
      assert.are.equal(0, code)
    end
  end)

  it("keeps a running server on the old manifest when a reload is refused, and rolls out a "
     .. "promotion at reload while running workflows keep their variant", function()
    local path = dir .. "/rollout.json"
    write(path, manifest(50, 50))
    local srv = T.serve(url, env)
    T.wait_until(function() return T.log_of(srv):find("manifests loaded", 1, true) end, 30,
                 "the server to load the manifests")
    -- a case of each variant, started under 50/50: both wait (waiter for "go", cancellable too)
    local by = routes(url, env, 200)
    local old = {}
    for i = 1, 200 do
      local v = by["subject-" .. i]
      if not old[v] then
        local _, s = T.spine_json(url, { "start", "rollout", "--input",
                                         ('{"contract_id": "subject-%d"}'):format(i) }, env)
        old[v] = s.id
      end
    end
    assert.is_string(old.control)
    assert.is_string(old.fast)
    -- a bad manifest and SIGHUP: refused, logged with the reason, the old one serves on
    write(path, manifest(50, 49))
    os.execute("kill -HUP " .. srv.pid)
    T.wait_until(function() return T.log_of(srv):find("manifests refused", 1, true) end, 30,
                 "the server to refuse the manifest")
    assert.matches("weights sum to 99", T.log_of(srv), 1, true)
    local _, shown = T.spine_json(url, { "manifests", "show" }, env)
    assert.are.equal(50, shown.manifests[1].manifest.variants[2].weight)
    -- promote control to 100 %: new cases all go to control at reload
    write(path, [[{ "process": "rollout", "input": { "contract_id": "string" },
      "subject": "contract_id", "experiment": { "id": "exp-rollout" },
      "variants": [ { "name": "control", "playbook": "tests/playbooks/waiter.lua", "weight": 100 } ] }]])
    os.execute("kill -HUP " .. srv.pid)
    T.wait_until(function()
      local _, s = T.spine_json(url, { "manifests", "show" }, env)
      return s and #s.manifests[1].manifest.variants == 1
    end, 30, "the server to load the promotion")
    local after = routes(url, env, 200)
    assert.are.equal(200, count(after, "control"))
    -- the running "fast" workflow keeps its variant and playbook, and ends as that playbook does
    local _, wf = T.spine_json(url, { "show", old.fast }, env)
    assert.are.equal("fast", wf.variant)
    assert.are.equal("cancellable", wf.playbook)
    T.wait_until(function()
      local _, w = T.spine_json(url, { "show", old.control }, env)
      return w and w.status == "waiting"
    end, 30, "the control case to wait")
    T.spine_json(url, { "signal", old.control, "go", "--data", '{"value": 3}' }, env)
    local done = T.wait_until(function()
      local _, w = T.spine_json(url, { "show", old.control }, env)
      return w and w.status == "completed" and w
    end, 30, "the control case to complete")
    assert.are.equal("control", done.variant)
    T.kill(srv, "TERM")
  end)
end)
