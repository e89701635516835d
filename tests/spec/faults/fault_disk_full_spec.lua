-- Fault: the disk under the cluster's WAL fills up mid-run. The private cluster's pg_wal lives on
-- a small tmpfs (1 MB segments, not recycled: every segment is a new file that needs space); a
-- file fills the tmpfs while one `spine serve` runs 300 workflows of ten credits, so PostgreSQL
-- cannot write WAL (it PANICs and restarts, or stops). Once the server log shows it, the file
-- goes, and the cluster is started again if it died. Every workflow must complete, every credit
-- once. Needs root (mount): without it the test fails, saying so.
local T = require("spine_test")
local F = require("fault_test")

describe("the disk under pg_wal full mid-run", function()
  after_each(F.cleanup)

  it("completes every workflow and applies every credit exactly once (300, distinct keys)",
     function()
    local pg = F.cluster({ wal_tmpfs = "48m", wal_segsize = 1,
                           settings = { wal_recycle = "off", min_wal_size = "'2MB'",
                                        max_wal_size = "'16MB'" } })
    local fill = pg.walfs .. "/fill"
    local srv, w, before = F.midrun(pg)
    local t0 = F.clock()
    -- dd stops at ENOSPC (exit 1): what counts is that nothing is left
    T.sh("dd if=/dev/zero of=" .. T.q(fill) .. " bs=1M")
    local df = F.must("df --output=avail -B1 " .. T.q(pg.walfs), "df")
    assert.are.equal("0", df:match("(%d+)%s*$"), "the tmpfs under pg_wal is not full")
    local from = #pg:server_log() + 1
    local at = F.wait_until(function()
      return pg:server_log():find("No space left on device", from, true)
    end, 60, "PostgreSQL to run out of WAL space")
    -- still full: until the server died, or came back from its crash with the disk full, and
    -- the worker has seen its connections go
    local postmaster = pg:postmaster() -- nil: its pid file is gone, it died already
    F.wait_until(function()
      return (not postmaster or F.gone(postmaster) or
              pg:server_log():find("database system is ready to accept connections", at, true))
             and F.log_count(srv, "database connection lost") >= 1
    end, 60, "PostgreSQL to die or recover with its disk full, and the worker to lose it")
    F.must("rm -f " .. T.q(fill), "removing the fill file")
    local restarted = false
    if not pg:up() then
      -- it may still be restarting by itself after the PANIC: start it only if it died
      local pid = pg:postmaster()
      if not pid or F.gone(pid) then
        pg:start()
        restarted = true
      else
        F.wait_until(function() return pg:up() or F.gone(pid) end, 60,
                     "the cluster to come back or die")
        if not pg:up() then
          pg:start()
          restarted = true
        end
      end
    end
    local fault_end = F.clock()
    local after = F.credits(pg.url)
    local first, done = F.recovered(pg, srv, w, after, "after the disk was freed",
                                    function() return F.describe(srv) end)
    local panics = select(2, pg:server_log():gsub("PANIC:", ""))
    F.figure("disk under pg_wal full", done - fault_end, first - fault_end,
             ("full for %.1f s, %d PANICs, cluster %s; %d of %d credits before, %d after"):format(
               fault_end - t0, panics, restarted and "started again by the test" or
               "came back by itself", before, w.total, after))
  end)
end)
