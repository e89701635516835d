-- Two edges of the step machinery under `spine serve`: a step call where the coroutine cannot
-- yield is refused before anything is submitted; a replay is charged per replayed step, so a
-- workflow that ran within its budget live replays within it after its worker died.
local T = require("spine_test")
local P = require("provider_test")

describe("a step call", function()
  it("is refused where the coroutine cannot yield, and the workflow goes on", function()
    local url = T.newdb("spec_steps_yield")
    local srv = T.serve(url)
    local id = P.start(url, "tests/playbooks/hostile_yield.lua", {})
    local wf = P.wait_status(url, id, "completed")
    assert.same({ "not_yieldable", "not_yieldable", "not_yieldable", "not_yieldable" },
                wf.result.codes)
    assert.are.equal("number", wf.result.after)
    -- only the two real steps ran: no refused call left a step or an effect behind
    assert.are.equal("2", T.sql(url, "SELECT count(*) FROM spine.steps WHERE workflow_id = '" ..
                                     id .. "'"))
    assert.are.equal("1", T.sql(url, "SELECT count(*) FROM spine.bench_effects WHERE" ..
                                     " workflow_id = '" .. id .. "'"))
    assert.is_true(T.alive(srv), "the worker died")
    T.kill(srv, "TERM")
  end)
end)

describe("a replay", function()
  it("charges each replayed step as the resume it was: the workflow completes after a kill -9",
     function()
    local url = T.newdb("spec_steps_replay")
    -- each stretch is ~60 % of the budget: the six together are 3.6 budgets
    local env = { SPINE_INSTRUCTIONS = "4000000" }
    local srv = T.serve(url, env)
    local id = P.start(url, "tests/playbooks/replay_budget.lua", { n = 1200000 })
    T.wait_until(function()
      return T.sql(url, "SELECT count(*) FROM spine.steps WHERE workflow_id = '" .. id ..
                        "' AND kind = 'wait' AND status = 'waiting'") == "1"
    end, 120, "the workflow to wait for go after six stretches")
    T.kill(srv) -- kill -9: the next worker must replay the six stretches
    srv = T.serve(url, env)
    assert.are.equal(0, (T.spine(url, { "signal", id, "go", "--data", '{"value":1}' })))
    local wf = P.wait_status(url, id, "completed", 120)
    assert.are.equal(1, wf.result.go)
    T.kill(srv, "TERM")
  end)
end)

describe("a value the database cannot store", function()
  it("fails where it is made, naming it, and never leaves the workflow stuck", function()
    local url = T.newdb("spec_steps_unstorable")
    local srv = T.serve(url)
    local id = P.start(url, "tests/playbooks/unstorable.lua", {})
    local wf = P.wait_status(url, id, "completed")
    assert.same({ "bad_result", "bad_result", "bad_result", "refused" }, wf.result.caught)
    assert.are.equal("café 😀", T.sql(url, "SELECT result->>'body' FROM spine.steps WHERE" ..
                                         " workflow_id = '" .. id .. "' AND name = 'fine'"))
    local failing = P.start(url, "tests/playbooks/unstorable.lua", { fail = true })
    local f = P.wait_status(url, failing, "failed")
    assert.are.equal("bad_result", f.error.code)
    assert.matches("not UTF-8 at byte 0 (byte 0xff", f.error.message, 1, true)
    assert.is_true(T.alive(srv), "the worker died")
    T.kill(srv, "TERM")
  end)
end)
