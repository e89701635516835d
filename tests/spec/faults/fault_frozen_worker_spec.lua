-- Fault: one of two workers frozen (SIGSTOP: a VM stall, a GC pause, a debugger) past its lease,
-- then thawed. Two `spine serve` with a 2 s lease run 200 workflows of ten credits; worker 1 is
-- frozen mid-run. Worker 2 must finish every workflow while worker 1 is still frozen; once
-- thawed, worker 1 must apply nothing twice and undo nothing (every workflow stays completed),
-- and keep running or exit by itself. Hot keys (5 customers) as issue 11 asks, and distinct keys
-- (which today's deadlocks on hot keys do not slow down).
local T = require("spine_test")
local F = require("fault_test")

local LEASE_MS = 2000

-- Transactions a worker's connections hold open (by their application_name).
local function open_xacts(url, app)
  return tonumber(T.sql(url, "SELECT count(*) FROM pg_stat_activity WHERE datname =" ..
    " current_database() AND application_name = '" .. app .. "' AND xact_start IS NOT NULL"))
end

local function backends(url, app)
  return tonumber(T.sql(url, "SELECT count(*) FROM pg_stat_activity WHERE datname =" ..
    " current_database() AND application_name = '" .. app .. "'"))
end

local function owned_by(url, id)
  return tonumber(T.sql(url, "SELECT count(*) FROM spine.workflows WHERE owner = " .. id))
end

-- customers: 5 (hot keys) or nil (one each); fraction: of the credits applied before the freeze.
-- Worker 1 is the one of the two holding the most unfinished workflows then, worker 2 the other.
local function frozen_run(db, customers, fraction)
  local url = T.newdb(db)
  local w = F.workload(url, { workflows = 200, customers = customers, pause = "500ms" })
  local env = { SPINE_LEASE_MS = tostring(LEASE_MS) }
  local ws = { F.serve(url .. " application_name=fault-a", env),
               F.serve(url .. " application_name=fault-b", env) }
  ws[1].app, ws[2].app = "fault-a", "fault-b"
  for _, h in ipairs(ws) do h.id = F.worker_id(url, h) end
  local both = F.alive_guard(ws[1], ws[2])
  local deadlocks0 = F.deadlocks(url)
  local function unfinished_of(h)
    return tonumber(T.sql(url, "SELECT count(*) FROM spine.workflows WHERE owner = " .. h.id ..
                               " AND status <> 'completed'"))
  end
  local ok, err = pcall(F.wait_until, function()
    local why = both()
    assert(not why, "before the freeze, " .. tostring(why))
    return F.credits(url) >= w.total * fraction and
           unfinished_of(ws[1]) + unfinished_of(ws[2]) > 0
  end, 120, "the run under way")
  if not ok and not tostring(err):find("timed out waiting", 1, true) then error(err, 0) end
  assert(ok, ("before the freeze: the two workers did not get %d%% of the credits in, holding" ..
              " unfinished workflows, within 120 s (%s; %d deadlocks in this database;" ..
              " unfinished workflows held: %d and %d)"):format(fraction * 100, F.progress(url, w),
              F.deadlocks(url) - deadlocks0, unfinished_of(ws[1]), unfinished_of(ws[2])))
  if unfinished_of(ws[2]) > unfinished_of(ws[1]) then ws[1], ws[2] = ws[2], ws[1] end
  local w1, w2, id1 = ws[1], ws[2], ws[1].id
  F.must("kill -STOP " .. w1.pid, "SIGSTOP of worker 1")
  local t0 = F.clock()
  F.wait_until(function() return F.stopped(w1.pid) end, 10, "worker 1 to stop")
  local frozen_at, held, owned = F.credits(url), open_xacts(url, w1.app), owned_by(url, id1)
  assert.is_true(frozen_at < w.total, "worker 1 froze after the last credit: tested nothing")
  local extra = function()
    return ("worker 1 frozen at %d credits holding %d open transactions, %d now, %d workflows" ..
            " still owned by it; %d backends waiting on a lock; %d deadlocks in this database;" ..
            " %s"):format(frozen_at, held, open_xacts(url, w1.app), owned_by(url, id1),
      tonumber(T.sql(url, "SELECT count(*) FROM pg_stat_activity WHERE datname =" ..
                          " current_database() AND wait_event_type = 'Lock'")),
      F.deadlocks(url) - deadlocks0, F.describe(w2))
  end
  local guard = function()
    if not F.stopped(w1.pid) then return "worker 1 is no longer frozen: " .. F.describe(w1) end
    if F.gone(w2.pid) then return "worker 2 exited: " .. F.describe(w2) end
  end
  local done = F.wait_finished(url, w, 120, "with worker 1 frozen", extra, guard)
  F.check(url, w, "with worker 1 frozen")
  F.figure("worker frozen past its lease, " .. (customers and "hot" or "distinct") .. " keys",
           done - t0, nil, ("frozen at %d of %d credits owning %d workflows, %d open" ..
                            " transactions"):format(frozen_at, w.total, owned, held))

  -- thawed: it finds its lease gone; it must apply nothing twice, and live on or exit
  local credits_done = F.credits(url)
  local thawed_at = T.sql(url, "SELECT now()")
  F.must("kill -CONT " .. w1.pid, "SIGCONT of worker 1")
  F.wait_until(function()
    if F.gone(w1.pid) then return backends(url, w1.app) == 0 end -- its last batches too
    return T.sql(url, "SELECT count(*) FROM spine.workers WHERE pid = " .. w1.pid ..
                      " AND lease_until > '" .. thawed_at .. "'") ~= "0"
  end, 60, "worker 1 to exit or hold a lease again after the thaw")
  local after = "alive, holding a lease"
  if F.gone(w1.pid) then
    local status = F.wait_until(function() return F.exit_status(w1) end, 30,
                                "worker 1's exit status")
    assert.is_true(status < 128, ("worker 1 was killed by signal %d after the thaw: %s"):format(
      status - 128, F.describe(w1)))
    after = ("exited with status %d"):format(status)
  end
  print(("\n  worker 1 after the thaw: %s; %s"):format(after, F.describe(w1)))
  assert.are.equal(credits_done, F.credits(url), "credits applied after worker 1 thawed")
  F.check(url, w, "after worker 1 thawed")
  assert.is_true(T.alive(w2), "worker 2 exited: " .. F.describe(w2))
end

describe("a worker frozen past its lease", function()
  after_each(F.cleanup)

  it("leaves its work to the other worker, which finishes all of it while the first is frozen;" ..
     " thawed, it applies nothing twice (200 workflows, 5 customers)", function()
    -- frozen early: on hot keys the two workers get under way slowly today (deadlocks)
    frozen_run("fault_frozen_worker_hot", 5, 0.01)
  end)

  it("leaves its work to the other worker, which finishes all of it while the first is frozen;" ..
     " thawed, it applies nothing twice (200 workflows, distinct keys)", function()
    frozen_run("fault_frozen_worker_distinct", nil, 0.3)
  end)
end)
