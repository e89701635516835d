-- Fault: PostgreSQL restarted (pg_ctl restart -m fast) while one `spine serve` runs 300
-- workflows of ten credits each, on a private cluster of the test's own. Nothing may be lost,
-- nothing applied twice; the recovery time is printed.
local T = require("spine_test")
local F = require("fault_test")

describe("a PostgreSQL restart mid-run", function()
  after_each(F.cleanup)

  it("completes every workflow and applies every credit exactly once (300, distinct keys)",
     function()
    local pg = F.cluster()
    local srv = F.serve(pg.url)
    local w = F.workload(pg.url, { workflows = 300, pause = "500ms" })
    F.wait_until(function() return F.credits(pg.url) >= w.total * 0.3 end, 120,
                 "a third of the credits")
    local before = F.credits(pg.url)
    local t0 = F.clock()
    pg:restart()
    local fault_end = F.clock()
    local after = F.credits(pg.url)
    assert.is_true(after < w.total, "the restart came after the last credit: it tested nothing")
    local first = F.wait_progress(pg.url, w, after, 60, "after the restart")
    local done = F.wait_finished(pg.url, w, 120, "after the restart", nil, F.alive_guard(srv))
    assert.is_true(T.alive(srv), "the worker exited instead of reconnecting")
    -- the restart reached the worker: it lost its connections and came back
    assert.is_true(F.log_count(srv, "reconnected") >= 1, "the worker never reconnected")
    F.check(pg.url, w)
    F.figure("PostgreSQL restart -m fast", done - fault_end, first - fault_end,
             ("restart took %.1f s; %d of %d credits applied before it, %d after it"):
             format(fault_end - t0, before, w.total, after))
  end)
end)
