-- A worker whose database connections are cut (a failover, a restarted PostgreSQL, a killed
-- backend) reconnects by itself and loses nothing: every intent still applies exactly once.
local T = require("spine_test")

local function effects(url)
  return tonumber(T.sql(url, "SELECT count(*) FROM spine.bench_effects"))
end

-- Terminates every backend of this database but the caller's: the worker's pool and session.
local function cut(url)
  return tonumber(T.sql(url, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity" ..
    " WHERE datname = current_database() AND pid <> pg_backend_pid()"))
end

describe("spine serve", function()
  it("reconnects after its connections are cut, applying every intent exactly once", function()
    local url = T.newdb("spec_reconnect")
    T.start_many(url, "tests/playbooks/intents_gate.lua", 1000)
    local srv = T.serve(url)
    -- every workflow has applied its first five intents and waits: cut there, surely mid-run
    T.wait_until(function()
      return T.sql(url, "SELECT count(*) FROM spine.workflows WHERE status = 'waiting'") == "1000"
    end, 120, "the 1000 workflows to wait at the gate")
    assert.are.equal(5000, effects(url))
    assert.is_true(cut(url) >= 2, "expected the worker's connections to cut")
    T.sql(url, "SELECT count(spine.signal_workflow(id, 'go', '{}')) FROM spine.workflows")
    T.wait_until(function() return effects(url) >= 6000 end, 120,
                 "the worker to go on after the first cut")
    cut(url) -- a second cut, while the second half runs (or just after)
    T.wait_until(function()
      return T.sql(url, "SELECT count(*) FROM spine.workflows WHERE status = 'completed'")
             == "1000"
    end, 300, "all 1000 workflows to complete")
    assert.is_true(T.alive(srv), "the worker exited instead of reconnecting")
    T.kill(srv, "TERM")
    assert.matches('"reconnected"', T.log_of(srv))
    assert.are.equal("10000", T.sql(url, "SELECT count(*) FROM spine.bench_effects"))
    assert.are.equal("10000", T.sql(url,
      "SELECT count(DISTINCT (workflow_id, seq)) FROM spine.bench_effects"))
    assert.are.equal("0", T.sql(url, "SELECT count(*) FROM (SELECT workflow_id FROM " ..
      "spine.bench_effects GROUP BY workflow_id HAVING count(*) <> 10) x"))
  end)
end)
