-- Fault: PostgreSQL's postmaster killed with kill -9 while one `spine serve` runs 300 workflows
-- of ten credits each, then started again (crash recovery), on a private cluster of the test's
-- own. Nothing may be lost, nothing applied twice; the recovery time is printed.
local F = require("fault_test")

describe("PostgreSQL killed with kill -9 mid-run and started again", function()
  after_each(F.cleanup)

  it("completes every workflow and applies every credit exactly once (300, distinct keys)",
     function()
    local pg = F.cluster()
    local srv, w, before = F.midrun(pg)
    local t0 = F.clock()
    local backends = pg:kill9()
    assert.is_false(pg:up(), "the cluster still answers after its postmaster was killed")
    pg:start()
    local fault_end = F.clock()
    assert.matches("database system was interrupted", pg:server_log(),
                   "the restart did not run crash recovery")
    local after = F.credits(pg.url)
    local first, done = F.recovered(pg, srv, w, after, "after the kill -9 and restart")
    F.figure("PostgreSQL kill -9 + start", done - fault_end, first - fault_end,
             ("down and crash recovery took %.1f s (%d server processes killed); %d of %d" ..
              " credits applied before, %d after crash recovery"):format(fault_end - t0,
              backends + 1, before, w.total, after))
  end)
end)
