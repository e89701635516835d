-- Fault: the network between `spine serve` and PostgreSQL goes silent. The worker connects
-- through a TCP proxy (tests/lib/blackhole_proxy.py) that stops forwarding in both directions
-- without closing anything, as a dead link does: no FIN, no RST, no error, only silence. It stays
-- silent until the worker's lease has run out, then either comes back on the same connections
-- (a link restored) or stays dead for them while new connections get through (a firewall or NAT
-- that lost their state). Either way every workflow must complete, every credit once.
local T = require("spine_test")
local F = require("fault_test")

local LEASE_MS = 5000

-- 300 workflows under one worker that reaches PostgreSQL through the proxy; blackholes it a
-- third of the way in, until the worker's lease has expired. Returns what the test needs.
local function blackholed_run()
  local pg = F.cluster()
  local proxy = F.proxy("127.0.0.1", pg.port)
  local via = ("host=127.0.0.1 port=%d user=postgres dbname=spine connect_timeout=5"):format(
    proxy.port)
  local w = F.workload(pg.url, { workflows = 300, pause = "500ms" })
  local srv = F.serve(via, { SPINE_LEASE_MS = tostring(LEASE_MS) })
  local worker = F.worker_id(pg.url, srv)
  F.wait_until(function() return F.credits(pg.url) >= w.total * 0.3 end, 120,
               "a third of the credits")
  local t0 = F.clock()
  local held = proxy:blackhole()
  assert.is_true(held >= 2, "the proxy held " .. held .. " connections: the worker's pool and" ..
                            " session should be among them")
  local at_fault = F.credits(pg.url)
  -- silent past the lease: the database sees the worker as dead
  F.wait_until(function()
    return T.sql(pg.url, "SELECT coalesce(bool_and(lease_until < now()), true)" ..
                         " FROM spine.workers WHERE id = " .. worker) == "t"
  end, 60, "the blackholed worker's lease to expire")
  assert.is_true(F.credits(pg.url) - at_fault < w.total * 0.1,
                 "credits kept coming while the link was silent: the blackhole cut nothing")
  return { pg = pg, proxy = proxy, w = w, srv = srv, t0 = t0 }
end

local function finish(r, fault, silent)
  local fault_end = F.clock()
  local after = F.credits(r.pg.url)
  assert.is_true(after < r.w.total, "the blackhole came after the last credit: tested nothing")
  local extra = function() return F.describe(r.srv) end
  -- one deadline for both: 120 s from the fault's end
  local first = F.wait_progress(r.pg.url, r.w, after, 120, "after the link " .. fault, extra)
  local done = F.wait_finished(r.pg.url, r.w, math.max(10, 120 - (first - fault_end)),
                               "after the link " .. fault, extra, F.alive_guard(r.srv))
  assert.is_true(T.alive(r.srv), "the worker exited: " .. F.describe(r.srv))
  F.check(r.pg.url, r.w)
  F.figure("blackhole, link " .. fault, done - fault_end, first - fault_end,
           ("silent %.1f s (past the %d ms lease), %d connections left silent for good;" ..
            " %d of %d credits before"):format(fault_end - r.t0, LEASE_MS, silent, after,
                                               r.w.total))
end

describe("connections blackholed mid-run", function()
  after_each(F.cleanup)

  it("complete every workflow, every credit once, when the link comes back on the same" ..
     " connections (300, distinct keys)", function()
    local r = blackholed_run()
    r.proxy:restore()
    finish(r, "restored", 0)
  end)

  it("complete every workflow, every credit once, when the old connections stay silent and" ..
     " only new ones get through (300, distinct keys)", function()
    local r = blackholed_run()
    local silent = r.proxy:heal()
    finish(r, "healed for new connections only", silent)
  end)
end)
