-- High availability (issue 16 §4): the primary of a pg_auto_failover formation — a monitor, a
-- primary and its synchronous standby on this machine (tests/lib/ha_test.lua) — is killed with
-- kill -9, keeper and PostgreSQL, while one `spine serve` runs 200 workflows of ten credits each
-- through a multi-host URL (target_session_attrs=read-write). The monitor promotes the standby;
-- the worker reconnects to it and goes on. Nothing may be lost, nothing applied twice: a commit
-- the worker saw acknowledged was on the standby too. The switch's duration is printed.
local T = require("spine_test")
local F = require("fault_test")
local H = require("ha_test")

describe("the primary killed mid-run under pg_auto_failover", function()
  after_each(F.cleanup)

  it("goes on on the promoted standby: every workflow completes, every credit applied once",
     function()
    local ha = H.formation()
    local url = ha.url
    assert.are.equal(ha.ports[1], ha:primary_port(), "n1 is not the primary")
    assert.matches("^ANY 1 ", T.sql(ha.primary, "SHOW synchronous_standby_names"),
                   "the standby is not synchronous")
    local srv = F.serve(url)
    local w = F.workload(url, { workflows = 200, pause = "300ms" })
    F.wait_until(function() return F.credits(url) >= w.total * 0.3 end, 120, "a third of the credits")
    local before = F.credits(url) -- at most this many before the kill: the work goes on
    local t0 = F.clock()
    ha:kill("n1") -- its keeper and its PostgreSQL: nothing restarts it
    assert.is_true(before < w.total * 0.9, "the kill came at the end of the run: it tested little")
    T.wait_until(function() return ha:primary_port() == ha.ports[2] end, 120,
                 "n2 to be promoted (monitor: " .. T.json.encode(ha:states()) .. ")")
    local promoted = F.clock()
    local first = F.wait_progress(url, w, before, 120, "after the failover")
    local done = F.wait_finished(url, w, 180, "after the failover", function()
      return F.describe(srv)
    end, F.alive_guard(srv))
    assert.is_true(T.alive(srv), "the worker exited instead of reconnecting: " .. F.describe(srv))
    assert.is_true(F.log_count(srv, "reconnected") >= 1, "the worker never reconnected")
    assert.are.equal(ha.ports[2], ha:primary_port())
    F.check(url, w, "after the failover")
    F.figure("primary kill -9, pg_auto_failover promotes its standby", done - t0, first - t0,
             ("the standby was read-write %.1f s after the kill; %d of %d credits applied" ..
              " before it"):format(promoted - t0, before, w.total))
  end)
end)
