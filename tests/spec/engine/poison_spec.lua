-- A poison pill: a workflow that keeps taking its worker down with it is failed after a few
-- attempts instead of being passed from worker to worker. Here the workflow is mid provider call
-- (its row `running`) each time its only worker is killed with kill -9.
local T = require("spine_test")
local P = require("provider_test")

local PLAYBOOK = "tests/playbooks/provider_switch.lua"

describe("a workflow running when its worker dies", function()
  it("is failed as a poison pill the third time, and spine retry runs it again", function()
    -- the provider never answers within the test: each worker dies with the call in flight
    local sim = T.simulate({ "--latency", "600000" })
    local dir = P.dir({ gridco = { base_url = sim.url, rate_limit = 100000,
                                   breaker = { failures = 1000, cooldown = "1s" } } })
    local url = T.newdb("spec_poison")
    local env = { SPINE_PROVIDERS = dir, SPINE_SECRET_GRIDCO_API_KEY = "sk-test-poison-key" }
    local id = P.start(url, PLAYBOOK, { contract_id = "C-poison" })
    local srv
    for n = 1, 3 do
      srv = T.serve(url, env)
      T.wait_until(function() return T.sim_effects(sim).requests >= n end, 60,
                   "call " .. n .. " to reach the provider")
      assert.are.equal("running", T.sql(url,
        "SELECT status FROM spine.workflows WHERE id = '" .. id .. "'"))
      T.kill(srv)
    end
    srv = T.serve(url, env)
    local wf = P.wait_status(url, id, "failed")
    assert.are.equal("poison", wf.error.kind)
    assert.are.equal("worker_lost", wf.error.code)
    assert.matches("3 times", wf.error.message)
    assert.are.equal("3", T.sql(url, "SELECT lost_runs FROM spine.workflows WHERE id = '" ..
                                     id .. "'"))
    assert.are.equal(3, T.sim_effects(sim).requests) -- the fourth worker did not call again
    assert.is_true(T.alive(srv), "the worker went down with the poison pill")
    -- an operator's retry runs it once more, with the count reset
    assert.are.equal(0, (T.spine(url, { "retry", id })))
    T.wait_until(function() return T.sim_effects(sim).requests >= 4 end, 60,
                 "the retried workflow to call the provider again")
    assert.are.equal("0", T.sql(url, "SELECT lost_runs FROM spine.workflows WHERE id = '" ..
                                     id .. "'"))
    T.kill(srv)
    T.kill(sim)
  end)
end)
