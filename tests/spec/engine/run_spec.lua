-- `spine run`: one workflow in this process, on a real database, with a virtual clock.
local T = require("spine_test")

describe("spine run", function()
  local url
  setup(function() url = T.newdb("spec_run") end)

  it("runs a 14-day sleep, a timed-out wait and a retried step on the virtual clock", function()
    local code, wf, err = T.spine_json(url, { "run", "tests/playbooks/durable_tour.lua",
      "--clock", "virtual", "--input", '{"customer":"c-1"}' })
    assert.are.equal(0, code, err)
    assert.are.equal("completed", wf.status)
    assert.are.same({ slept_days = 14, tries = 3, recorded = 7 }, wf.result)
    assert.are.equal("done", wf.state)
    assert.are.equal("c-1", wf.attributes.customer)
    local kinds = {}
    for i, s in ipairs(wf.steps) do
      assert.are.equal(i, s.seq)
      kinds[#kinds + 1] = s.kind .. ":" .. s.status
    end
    assert.are.same({ "now:completed", "sleep:completed", "now:completed", "wait:completed",
                      "step:completed", "intent:completed" }, kinds)
    assert.are.equal(3, wf.steps[5].attempt)
    assert.are.equal(T.json.null, wf.steps[4].result) -- the wait timed out
  end)

  it("prints the same workflow through spine show", function()
    local _, wf = T.spine_json(url, { "run", "tests/playbooks/durable_tour.lua",
      "--clock", "virtual", "--input", '{"customer":"c-2"}' })
    local code, shown = T.spine_json(url, { "show", wf.id })
    assert.are.equal(0, code)
    assert.are.equal(wf.id, shown.id)
    assert.are.equal(#wf.steps, #shown.steps)
    assert.are.equal("flaky", shown.steps[5].name)
  end)

  it("runs the compensations in reverse order when a playbook fails", function()
    local code, wf = T.spine_json(url, { "run", "tests/playbooks/saga.lua", "--clock", "virtual" })
    assert.are.equal(1, code)
    assert.are.equal("compensated", wf.status)
    assert.are.equal("business", wf.error.kind)
    assert.are.equal("no_capacity", wf.error.code)
    local seen = {}
    for _, s in ipairs(wf.steps) do seen[#seen + 1] = s.kind .. ":" .. s.name end
    assert.are.same({ "intent:BenchRecord", "intent:BenchRecord", "fail:fail",
                      "compensate:compensation 2", "intent:BenchRecord",
                      "compensate:compensation 1", "intent:BenchRecord" }, seen)
    local rows = T.sql(url, "SELECT string_agg(n::text, ',' ORDER BY seq) FROM " ..
                            "spine.bench_effects WHERE workflow_id = '" .. wf.id .. "'")
    assert.are.equal("1,2,-2,-1", rows)
  end)

  it("runs a child workflow and waits for its result", function()
    local code, wf, err = T.spine_json(url, { "run", "tests/playbooks/parent.lua",
      "--clock", "virtual" })
    assert.are.equal(0, code, err)
    assert.are.same({ child = true, started = true }, wf.result)
    local children = T.sql(url, "SELECT count(*) FROM spine.workflows WHERE parent_id = '" ..
                                wf.id .. "'")
    assert.are.equal("2", children)
  end)

  it("refuses input that does not match the playbook's declaration, naming the field", function()
    local code, out = T.spine_json(url, { "run", "tests/playbooks/durable_tour.lua",
      "--input", '{"customer": 12}' })
    assert.are.equal(1, code)
    assert.are.equal("input.customer", out.error.field)
    assert.matches("expected string", out.error.message)
  end)

  it("ends an endless loop with a clear error naming file and line", function()
    local code, wf = T.spine_json(url, { "run", "tests/playbooks/bad_loop.lua" })
    assert.are.equal(1, code)
    assert.are.equal("failed", wf.status)
    assert.are.equal("instruction_budget", wf.error.code)
    assert.matches("tests/playbooks/bad_loop.lua:%d+", wf.error.message)
  end)

  it("ends a memory bomb with a clear error", function()
    local code, wf = T.spine_json(url, { "run", "tests/playbooks/bad_memory.lua" })
    assert.are.equal(1, code)
    assert.are.equal("failed", wf.status)
    assert.are.equal("memory_limit", wf.error.code)
    assert.matches("tests/playbooks/bad_memory.lua:%d+", wf.error.message)
  end)

  it("refuses a playbook with a syntax error, naming file and line", function()
    local code, out = T.spine_json(url, { "run", "tests/playbooks/bad_syntax.lua" })
    assert.are.equal(1, code)
    assert.matches("tests/playbooks/bad_syntax.lua:4:", out.error.message)
  end)

  it("fails a workflow whose playbook raises, naming file and line", function()
    local code, wf = T.spine_json(url, { "run", "tests/playbooks/bad_runtime.lua" })
    assert.are.equal(1, code)
    assert.are.equal("failed", wf.status)
    assert.are.equal("runtime", wf.error.kind)
    assert.matches("tests/playbooks/bad_runtime.lua:6: attempt to index", wf.error.message)
    assert.are.equal("about to fail", wf.state)
  end)

  it("records ctx.fail's details, and says so when JSON cannot hold them", function()
    local code, wf = T.spine_json(url, { "run", "tests/playbooks/fail_details.lua" })
    assert.are.equal(1, code)
    assert.are.equal("failed", wf.status)
    assert.are.equal("business", wf.error.kind)
    assert.are.equal("refused", wf.error.code)
    assert.are.same({ meter = "M-1", tries = 2 }, wf.error.details)
    code, wf = T.spine_json(url, { "run", "tests/playbooks/fail_details.lua",
                                   "--input", '{"bad": true}' })
    assert.are.equal(1, code)
    assert.are.equal("failed", wf.status) -- not stuck: the failure is recorded
    assert.are.equal("bad_error", wf.error.code)
    assert.matches("details", wf.error.message)
  end)

  it("answers a missing playbook with not_found", function()
    local code, out = T.spine_json(url, { "run", "no_such_playbook" })
    assert.are.equal(1, code)
    assert.are.equal("not_found", out.error.code)
  end)
end)
