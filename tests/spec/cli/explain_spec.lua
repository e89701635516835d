-- `spine explain`: one plain sentence (and the facts under --json) for each place a workflow
-- can be: waiting for a signal, sleeping, unclaimed, held by a worker, ended, stuck.
local T = require("spine_test")

local function explain(url, id)
  local code, obj, err = T.spine_json(url, { "explain", id })
  assert.are.equal(0, code, err)
  local tcode, text = T.spine(url, { "explain", id })
  assert.are.equal(0, tcode)
  assert.are.equal(obj.explanation, (text:gsub("\n$", "")))
  return obj
end

describe("spine explain", function()
  it("says what a waiting workflow waits for, since when, and who holds it", function()
    local url = T.newdb("spec_explain_wait")
    local _, wf = T.spine_json(url, { "start", "tests/playbooks/waiter.lua" })
    local obj = explain(url, wf.id)
    assert.matches("is ready to run since .*no worker has claimed it yet %(0 workers are alive%)",
                   obj.explanation)
    T.spine(url, { "signal", wf.id, "later", "--data", "{}" })
    local srv = T.serve(url)
    T.wait_until(function()
      local _, w = T.spine_json(url, { "show", wf.id })
      return w.status == "waiting"
    end, 30, "the workflow to wait")
    obj = explain(url, wf.id)
    assert.matches('waits for signal "go" since %d%d%d%d%-%d%d%-%d%dT', obj.explanation)
    assert.matches("signals kept for later waits: later", obj.explanation)
    assert.are.equal("later", obj.signals_pending[1].name)
    assert.is_string(obj.since)
    T.kill(srv, "TERM")
  end)

  it("says until when a workflow sleeps", function()
    local url = T.newdb("spec_explain_sleep")
    local _, wf = T.spine_json(url, { "start", "tests/playbooks/durable_tour.lua",
                                      "--input", '{"customer":"c-9"}' })
    local srv = T.serve(url)
    local obj = T.wait_until(function()
      local _, o = T.spine_json(url, { "explain", wf.id })
      return o and o.waiting_for ~= T.json.null and o.waiting_for.kind == "timer" and o
    end, 30, "the workflow to sleep")
    T.kill(srv, "TERM")
    assert.truthy(obj.explanation:find("is sleeping until " .. obj.waiting_for["until"], 1, true),
                  obj.explanation)
    assert.matches("%(in 13 days", obj.explanation)
  end)

  it("names file and line of a failure, and both steps of a non-determinism", function()
    local url = T.newdb("spec_explain_end")
    local _, failed = T.spine_json(url, { "run", "tests/playbooks/bad_runtime.lua" })
    local obj = explain(url, failed.id)
    assert.matches("failed at .*bad_runtime.lua:6: attempt to index", obj.explanation)

    -- a history recorded by other code: the wait step was named "stop", the playbook asks "go"
    local _, wf = T.spine_json(url, { "start", "tests/playbooks/waiter.lua" })
    local srv = T.serve(url)
    T.wait_until(function()
      local _, w = T.spine_json(url, { "show", wf.id })
      return w.status == "waiting"
    end, 30, "the workflow to wait")
    T.kill(srv, "TERM")
    T.sql(url, "UPDATE spine.steps SET name = 'stop' WHERE workflow_id = '" .. wf.id .. "'")
    srv = T.serve(url)
    T.spine(url, { "signal", wf.id, "go", "--data", '{"value": 1}' })
    obj = T.wait_until(function()
      local _, o = T.spine_json(url, { "explain", wf.id })
      return o and o.status == "stuck" and o
    end, 30, "the workflow to be stuck")
    T.kill(srv, "TERM")
    assert.matches("is stuck since", obj.explanation)
    assert.matches('"stop"', obj.explanation)
    assert.matches('"go"', obj.explanation)
    assert.matches("spine retry " .. wf.id, obj.explanation, 1, true)
  end)

  it("answers an unknown workflow with not_found", function()
    local code, obj = T.spine_json(T.newdb("spec_explain_none"), { "explain", "nope" })
    assert.are.equal(1, code)
    assert.are.equal("not_found", obj.error.kind)
  end)
end)
