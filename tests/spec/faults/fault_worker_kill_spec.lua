-- Fault: the only worker killed with kill -9 mid-run and started again. Hot keys (300 workflows
-- of ten credits on 5 customers): all finish, every credit once, and PostgreSQL saw no deadlock
-- in the test's database (group commit must not take the customers' locks in clashing orders).
-- Distinct keys (300 workflows, one customer each): all finish, none stranded by a restarted
-- worker that thinks another one took its workflows over.
local T = require("spine_test")
local F = require("fault_test")

local STRANDED = "workflow taken over by another worker; dropped here"

-- Runs the workload under one worker, kill -9s it once `fraction` of the credits are in, starts
-- a new one. Returns the two handles, the clocks and counts around the kill.
local function kill_and_restart(url, w, fraction)
  local srv = F.serve(url)
  F.wait_until(function()
    assert(not F.gone(srv.pid), "the worker exited before the kill: " .. F.describe(srv))
    return F.credits(url) >= w.total * fraction
  end, 120, ("%d%% of the credits"):format(fraction * 100))
  local t0 = F.clock()
  T.kill(srv, "KILL")
  local at_kill = F.credits(url)
  assert.is_true(at_kill < w.total, "the kill came after the last credit: it tested nothing")
  local srv2 = F.serve(url)
  return { srv = srv, srv2 = srv2, t0 = t0, restarted = F.clock(), at_kill = at_kill }
end

describe("the only worker killed with kill -9 mid-run and started again", function()
  after_each(F.cleanup)

  it("finishes every workflow, every credit once, without a deadlock (300 workflows," ..
     " 5 customers)", function()
    local url = T.newdb("fault_worker_kill_hot")
    local w = F.workload(url, { workflows = 300, customers = 5, pause = "500ms" })
    local deadlocks0 = F.deadlocks(url)
    local r = kill_and_restart(url, w, 0.1)
    local extra = function()
      return ("%d deadlocks in this database since the start; %d workflows dropped as taken" ..
              " over; %s"):format(F.deadlocks(url) - deadlocks0, F.log_count(r.srv2, STRANDED),
                                  F.describe(r.srv2))
    end
    local first = F.wait_progress(url, w, r.at_kill, 120, "after the restart", extra)
    local done = F.wait_finished(url, w, math.max(10, 120 - (first - r.restarted)),
                                 "after the restart", extra, F.alive_guard(r.srv2))
    F.check(url, w)
    T.kill(r.srv2, "TERM")
    F.backends_gone(url)
    local deadlocks = F.deadlocks(url) - deadlocks0
    F.figure("worker kill -9 + restart, hot keys", done - r.restarted, first - r.restarted,
             ("killed at %d of %d credits; %d deadlocks"):format(r.at_kill, w.total, deadlocks))
    assert.are.equal(0, deadlocks, "deadlocks in the test database during the run")
  end)

  it("finishes every workflow, every credit once, none dropped as taken over, when the kill" ..
     " lands while its batches wait to commit (300 workflows, distinct keys)", function()
    -- A private cluster: the test holds every commit of the cluster for a moment.
    local pg = F.cluster()
    local url = pg.url
    local w = F.workload(url, { workflows = 300 })
    local srv = F.serve(url .. " application_name=fault-first")
    F.wait_until(function()
      assert(not F.gone(srv.pid), "the worker exited before the kill: " .. F.describe(srv))
      return F.credits(url) >= w.total * 0.3
    end, 120, "30% of the credits")
    -- Batches in flight at the kill, for sure: a synchronous standby that never comes holds
    -- every commit; the worker's batches have run all their statements and wait for its ack,
    -- their rows not yet visible. kill -9 then. Their backends live on (they do not watch their
    -- client while they wait) and commit once the standby is no longer required, after the new
    -- worker (whose commits do not wait) has taken the workflows over.
    T.sql(pg.admin, "ALTER SYSTEM SET synchronous_standby_names = 'fault_never_comes'")
    T.sql(pg.admin, "SELECT pg_reload_conf()")
    local released = false
    local function release()
      if released then return end
      T.sql(pg.admin, "ALTER SYSTEM RESET synchronous_standby_names")
      T.sql(pg.admin, "SELECT pg_reload_conf()")
      released = true
    end
    F.defer(release)
    local function backends(app, where)
      return T.sql(url, "SELECT coalesce(string_agg(pid::text, ',' ORDER BY pid), '') FROM" ..
        " pg_stat_activity WHERE datname = current_database() AND application_name = '" ..
        app .. "' AND " .. where)
    end
    local old = F.wait_until(function()
      local b = backends("fault-first", "wait_event = 'SyncRep'")
      return b ~= "" and b
    end, 60, "a batch of the worker to wait for its commit")
    local t0 = F.clock()
    T.kill(srv, "KILL")
    local at_kill = F.credits(url)
    assert.is_true(at_kill < w.total, "the kill came after the last credit: it tested nothing")
    local pending = backends("fault-first", "wait_event = 'SyncRep'")
    assert.are_not.equal("", pending, "no batch of the killed worker waits to commit")
    local srv2 = F.serve(url .. " application_name=fault-second",
                         { PGOPTIONS = "-c synchronous_commit=local" })
    local restarted = F.clock()
    -- the new worker runs the workflows again; its batches wait for the old ones' rows (or
    -- the old ones are gone: an engine that ends a dead worker's backends)
    F.wait_until(function()
      assert(not F.gone(srv2.pid), "the new worker exited: " .. F.describe(srv2))
      return backends("fault-second", "pg_blocking_pids(pid) && '{" .. pending .. "}'") ~= "" or
             backends("fault-first", "true") == ""
    end, 60, "a batch of the new worker to wait behind the old ones")
    release()
    local guard = function()
      if F.gone(srv2.pid) then return "the new worker exited: " .. F.describe(srv2) end
      local ids = F.log_workflows(srv2, STRANDED)
      if #ids > 0 then
        local list = "'" .. table.concat(ids, "','") .. "'"
        return ("the only worker logged \"%s\" for %d workflows (no other worker ran), e.g." ..
                " %s; they now are: %s"):format(STRANDED, #ids, table.concat(ids, ", ", 1,
                math.min(#ids, 5)), T.sql(url, "SELECT string_agg(n || ' ' || status ||" ..
                " ' owned by ' || who, ', ') FROM (SELECT status, CASE WHEN owner IS NULL THEN" ..
                " 'nobody' WHEN owner = (SELECT max(id) FROM spine.workers WHERE pid = " ..
                srv2.pid .. ") THEN 'this worker' ELSE 'worker ' || owner END who, count(*) n" ..
                " FROM spine.workflows WHERE id IN (" .. list .. ") GROUP BY 1, 2) x"))
      end
    end
    local done = F.wait_finished(url, w, 120, "after the restart", function()
      return F.describe(srv2)
    end, guard)
    F.check(url, w)
    F.figure("worker kill -9 + restart, distinct keys, batches in flight", done - restarted,
             nil, ("killed at %d of %d credits with %d batches waiting to commit; kill and" ..
                   " restart took %.1f s"):format(at_kill, w.total,
                   select(2, pending:gsub("%d+", "")), restarted - t0))
    assert.are.equal(0, F.log_count(srv2, STRANDED), "log lines \"" .. STRANDED .. "\"")
  end)
end)
