-- Fault: PostgreSQL restarted (pg_ctl restart -m fast) while one `spine serve` runs 300
-- workflows of ten credits each, on a private cluster of the test's own. Nothing may be lost,
-- nothing applied twice; the recovery time is printed.
local F = require("fault_test")

describe("a PostgreSQL restart mid-run", function()
  after_each(F.cleanup)

  it("completes every workflow and applies every credit exactly once (300, distinct keys)",
     function()
    local pg = F.cluster()
    local srv, w, before = F.midrun(pg)
    local t0 = F.clock()
    pg:restart()
    local fault_end = F.clock()
    local after = F.credits(pg.url)
    -- the restart reached the worker: it lost its connections and came back (F.recovered)
    local first, done = F.recovered(pg, srv, w, after, "after the restart")
    F.figure("PostgreSQL restart -m fast", done - fault_end, first - fault_end,
             ("restart took %.1f s; %d of %d credits applied before it, %d after it"):
             format(fault_end - t0, before, w.total, after))
  end)
end)
