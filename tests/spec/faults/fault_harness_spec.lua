-- The fault specs' own parts (tests/lib/fault_test.lua, tests/lib/blackhole_proxy.py), checked
-- so that a fault spec that fails does so for the engine, not for its harness: the checks see a
-- credit applied twice and a workflow not completed, the proxy really stops and restores
-- traffic, the private cluster really dies, comes back and goes away with its tmpfs.
local T = require("spine_test")
local F = require("fault_test")

-- A psql session of its own through `url`, fed line by line through a FIFO: s.ping(n) sends
-- SELECT 'pong n'; s.got(n) says whether its answer came.
local function session(url)
  local s = { dir = F.must("mktemp -d", "mktemp") }
  s.fifo, s.out = s.dir .. "/in", s.dir .. "/out"
  F.must("mkfifo " .. T.q(s.fifo), "mkfifo")
  local p = io.popen("setsid psql " .. T.q(url) .. " -qAtX <" .. T.q(s.fifo) .. " >" ..
                     T.q(s.out) .. " 2>&1 & echo $!")
  s.pid = tonumber(p:read("l"))
  p:close()
  s.w = assert(io.open(s.fifo, "w"))
  F.defer(function()
    pcall(s.w.close, s.w)
    if not F.gone(s.pid) then os.execute("kill -KILL " .. s.pid .. " 2>/dev/null") end
    F.must("rm -rf " .. T.q(s.dir), "removing " .. s.dir)
  end)
  function s.ping(n)
    s.w:write("SELECT 'pong ' || ", n, ";\n")
    s.w:flush()
  end
  function s.got(n)
    return T.read(s.out):find("pong " .. n .. "\n", 1, true) ~= nil
  end
  return s
end

-- Can a new connection through `url` run a query within 2 s?
local function connects(url)
  return (T.sh("psql " .. T.q(url .. " connect_timeout=2") .. " -qAtX -c 'SELECT 1'")) == 0
end

describe("the fault harness", function()
  after_each(F.cleanup)

  it("sees a credit applied twice and a workflow left unfinished", function()
    local url = T.newdb("fault_harness_check")
    local w = F.workload(url, { workflows = 20 })
    F.serve(url)
    F.wait_finished(url, w, 60, "the harness workload")
    F.check(url, w) -- clean: passes
    assert.are.equal(200, F.credits(url))
    -- one credit of fw-7 once more, as a worker applying it twice would
    local code = T.spine(url, { "intent", "ApplyManualCredit", "--actor", "ops:harness", "--args",
      T.json.encode({ customer_id = "fc-7", amount_cents = 3, reason = "fw-7 credit 3" }) })
    assert.are.equal(0, code)
    local ok, err = pcall(F.check, url, w)
    assert.is_false(ok)
    assert.matches("credit ledger entries", tostring(err))
    -- the count right, one workflow with a credit twice and one with a credit missing
    w.total = w.total + 1
    ok, err = pcall(F.check, url, w)
    assert.is_false(ok)
    assert.matches("fw%-7: 11 entries, 10 reasons", tostring(err))
    w.total = w.total - 1
    -- a workflow not completed
    local url2 = T.newdb("fault_harness_lost")
    local w2 = F.workload(url2, { workflows = 5, customers = 2 })
    F.serve(url2)
    F.wait_finished(url2, w2, 60, "the second harness workload")
    F.check(url2, w2)
    T.sql(url2, "UPDATE spine.workflows SET status = 'running' WHERE id = 'fw-3'")
    ok, err = pcall(F.check, url2, w2)
    assert.is_false(ok)
    assert.matches("1 of them; first: fw%-3 running", tostring(err))
  end)

  it("stops traffic both ways without closing, restores it, and heals new connections only",
     function()
    local pg = F.cluster()
    local proxy = F.proxy("127.0.0.1", pg.port)
    local via = ("host=127.0.0.1 port=%d user=postgres dbname=spine"):format(proxy.port)
    assert.is_true(connects(via))
    local a = session(via .. " application_name=harness-a")
    a.ping(1)
    T.wait_until(function() return a.got(1) end, 30, "pong 1 through the proxy")
    assert.is_true(proxy:blackhole() >= 1) -- session a (a closed one may linger)
    a.ping(2)
    assert.is_false(connects(via), "a new connection got through the blackhole")
    assert.is_false(a.got(2), "an answer got through the blackhole")
    -- nothing was closed: PostgreSQL still has the session, which never saw the query
    assert.are.equal("SELECT 'pong ' || 1;", T.sql(pg.url, "SELECT query FROM pg_stat_activity" ..
                     " WHERE application_name = 'harness-a'"))
    assert.is_true(proxy:restore() >= 2) -- session a and the held connection attempt
    T.wait_until(function() return a.got(2) end, 30, "pong 2 once restored")
    assert.is_true(connects(via))
    -- heal: the blackholed session stays silent for good, new connections work
    proxy:blackhole()
    assert.is_true(proxy:heal() >= 1) -- session a stays silent
    a.ping(3)
    local b = session(via .. " application_name=harness-b")
    b.ping(1)
    T.wait_until(function() return b.got(1) end, 30, "a new session's answer after the heal")
    assert.is_true(connects(via))
    assert.is_false(a.got(3), "an answer got through to a connection blackholed for good")
    assert.are.equal("SELECT 'pong ' || 2;", T.sql(pg.url, "SELECT query FROM pg_stat_activity" ..
                     " WHERE application_name = 'harness-a'"))
  end)

  it("kills, starts again and removes a private cluster, its pg_wal tmpfs unmounted", function()
    local pg = F.cluster({ wal_tmpfs = "16m" })
    assert.is_true(pg:up())
    assert.are.equal(0, (T.sh("mountpoint -q " .. T.q(pg.walfs))))
    assert.are.equal(pg.walfs .. "/pg_wal", F.must("readlink " .. T.q(pg.data .. "/pg_wal"),
                                                   "readlink"))
    local pid = pg:postmaster()
    assert.is_true(pg:kill9() > 0)
    assert.is_true(F.gone(pid))
    assert.is_false(pg:up())
    pg:start()
    assert.is_true(pg:up())
    pg:restart()
    assert.is_true(pg:up())
    local dir, walfs = pg.dir, pg.walfs
    pg:destroy()
    assert.are_not.equal(0, (T.sh("mountpoint -q " .. T.q(walfs))))
    assert.are.equal("", T.read(dir .. "/server.log"))
    assert.are.equal(1, (T.sh("test -e " .. T.q(dir))))
  end)
end)
