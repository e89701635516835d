-- Helpers for the fault specs (tests/spec/faults): a private PostgreSQL cluster a test may
-- restart, kill or starve of disk, a TCP proxy that blackholes connections, the workload (N
-- workflows × 10 ApplyManualCredit on customers created with RegisterCustomer), and the checks
-- that nothing was lost and nothing applied twice. Everything a test starts is undone by
-- F.cleanup (run it in after_each), by PID and by path, also when the test failed.
local T = require("spine_test")
local assert = require("luassert")

local F = {}
F.pgbin = os.getenv("SPINE_PGBIN") or "/usr/lib/postgresql/15/bin"
F.python = "/usr/bin/python3" -- Debian's, not a pyenv shim first on PATH
F.proxy_script = T.src .. "/tests/lib/blackhole_proxy.py"

local q = T.q

local function trim(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

-- Runs a shell command that must succeed; returns its stdout (trimmed).
local function must(cmd, what)
  local code, out, err = T.sh(cmd)
  if code ~= 0 then
    error(("%s failed (exit %d): %s%s"):format(what, code, trim(err), trim(out)), 2)
  end
  return trim(out)
end
F.must = must

F.root = trim(select(2, T.sh("id -u"))) == "0"

-- Seconds since boot (10 ms steps): for the recovery figures, never for a decision.
function F.clock()
  local f = assert(io.open("/proc/uptime"))
  local s = f:read("n")
  f:close()
  return s
end

-- Is process `pid` gone (no such process, or a zombie nobody reaped yet)?
function F.gone(pid)
  local stat = T.read("/proc/" .. pid .. "/stat")
  if stat == "" then return true end
  return stat:match("^%d+ %b() (%a)") == "Z"
end

-- Is process `pid` stopped (SIGSTOP)?
function F.stopped(pid)
  return T.read("/proc/" .. pid .. "/stat"):match("^%d+ %b() (%a)") == "T"
end

---------------------------------------------------------------------------------------------
-- Cleanups: F.defer(fn) registers, F.cleanup() runs them newest first, each in a pcall, and
-- raises at the end when one failed. The Lua state's close runs the ones left (a spec file that
-- stopped half-way), as spine_test's reaper kills the workers.
local cleanups = {}

function F.defer(fn)
  cleanups[#cleanups + 1] = fn
end

function F.cleanup()
  local errs = {}
  while #cleanups > 0 do
    local ok, err = pcall(table.remove(cleanups))
    if not ok then errs[#errs + 1] = tostring(err) end
  end
  if #errs > 0 then error("cleanup failed: " .. table.concat(errs, "; "), 2) end
end

F.reaper = setmetatable({}, { __gc = function() pcall(F.cleanup) end })

---------------------------------------------------------------------------------------------
-- A private PostgreSQL cluster in a temp dir under /tmp (reachable by the postgres user, whom
-- PostgreSQL runs as when we are root), listening on 127.0.0.1:<free port> and on a socket in
-- that dir. opts:
--   wal_tmpfs = "32m"    pg_wal on a tmpfs of that size mounted at <dir>/walfs (root only: the
--                        test fails, naming the reason, when mount is refused)
--   wal_segsize = 1      initdb --wal-segsize (MB)
--   settings = {k = v}   extra postgresql.conf lines
local Cluster = {}
Cluster.__index = Cluster

local function as_postgres(cmd)
  if F.root then return "cd / && runuser -u postgres -- " .. cmd end
  return "cd / && " .. cmd
end

function F.free_port()
  return tonumber(must(q(F.python) .. " -c " .. q("import socket; s = socket.socket(); " ..
    "s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"), "finding a free port"))
end

function F.cluster(opts)
  opts = opts or {}
  local c = setmetatable({}, Cluster)
  c.dir = must("mktemp -d /tmp/spine-fault.XXXXXX", "mktemp")
  c.data = c.dir .. "/data"
  c.log = c.dir .. "/server.log"
  F.defer(function() c:destroy() end)
  if F.root then must("chown postgres: " .. q(c.dir), "chown of the cluster dir") end
  local initdb = q(F.pgbin .. "/initdb") .. " -D " .. q(c.data) ..
                 " -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync"
  if opts.wal_tmpfs then
    c.walfs = c.dir .. "/walfs"
    must("mkdir " .. q(c.walfs), "mkdir walfs")
    local owner = ""
    if F.root then
      owner = (",uid=%s,gid=%s"):format(must("id -u postgres", "id -u postgres"),
                                        must("id -g postgres", "id -g postgres"))
    end
    local code, out, err = T.sh("mount -t tmpfs -o " .. q("size=" .. opts.wal_tmpfs ..
                                ",mode=0700" .. owner) .. " tmpfs " .. q(c.walfs))
    if code ~= 0 then
      error("cannot mount a tmpfs for pg_wal (the disk-full fault needs mount, as root): " ..
            trim(err .. out), 2)
    end
    c.mounted = true
    initdb = initdb .. " -X " .. q(c.walfs .. "/pg_wal")
  end
  if opts.wal_segsize then initdb = initdb .. " --wal-segsize=" .. opts.wal_segsize end
  must(as_postgres(initdb), "initdb")
  local conf = assert(io.open(c.data .. "/postgresql.conf", "a"))
  conf:write("listen_addresses = '127.0.0.1'\n", "unix_socket_directories = '", c.dir, "'\n")
  local keys = {}
  for k in pairs(opts.settings or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do conf:write(k, " = ", tostring(opts.settings[k]), "\n") end
  conf:close()
  -- a free port, taken by someone else between our look and the start at worst: try another
  local last
  for _ = 1, 3 do
    c.port = F.free_port()
    local f = assert(io.open(c.data .. "/postgresql.conf", "a"))
    f:write("port = ", c.port, "\n")
    f:close()
    local code, out, err = T.sh(as_postgres(q(F.pgbin .. "/pg_ctl") .. " -D " .. q(c.data) ..
                                            " -l " .. q(c.log) .. " -w -t 60 start"))
    if code == 0 then
      last = nil
      break
    end
    last = trim(err .. out) .. " / " .. T.read(c.log):sub(-400)
  end
  if last then error("cannot start the private cluster: " .. last, 2) end
  c.admin = ("host=127.0.0.1 port=%d user=postgres dbname=postgres"):format(c.port)
  T.sql(c.admin, "CREATE DATABASE spine")
  c.url = ("host=127.0.0.1 port=%d user=postgres dbname=spine"):format(c.port)
  return c
end

-- The postmaster's pid (first line of postmaster.pid), or nil when the file is gone.
function Cluster:postmaster()
  return tonumber(T.read(self.data .. "/postmaster.pid"):match("^(%d+)"))
end

-- Does the cluster answer a query now? (a short connect timeout; never raises)
function Cluster:up()
  local code = T.sh("psql " .. q(self.admin .. " connect_timeout=2") .. " -qAtX -c 'SELECT 1'")
  return code == 0
end

local function pg_ctl(self, args)
  return T.sh(as_postgres(q(F.pgbin .. "/pg_ctl") .. " -D " .. q(self.data) .. " -l " ..
                          q(self.log) .. " " .. args))
end

-- Starts the stopped cluster, waiting until it accepts connections. After a kill -9 the old
-- backends may hold the shared memory a little longer: tried again until `seconds` pass.
function Cluster:start(seconds)
  local last
  T.wait_until(function()
    local code, out, err = pg_ctl(self, "-w -t 60 start")
    if code == 0 then return true end
    last = trim(err .. out)
    return false
  end, seconds or 60, "the private cluster to start again")
  return last
end

-- pg_ctl restart -m fast (waits until it accepts connections again).
function Cluster:restart()
  local code, out, err = pg_ctl(self, "-w -t 60 -m fast restart")
  assert(code == 0, "pg_ctl restart failed: " .. trim(err .. out) .. " / " ..
                    T.read(self.log):sub(-400))
end

-- The postmaster's child processes (backends, checkpointer, ...), by its pid.
local function children(pid)
  local _, out = T.sh("ps -o pid= --ppid " .. pid)
  local pids = {}
  for p in out:gmatch("%d+") do pids[#pids + 1] = tonumber(p) end
  return pids
end

-- kill -9 of the postmaster; waits until it and the children it had are gone (they notice
-- their postmaster's death by themselves). Returns how many children there were.
function Cluster:kill9()
  local pid = assert(self:postmaster(), "no postmaster.pid: the cluster is not running")
  local kids = children(pid)
  must("kill -KILL " .. pid, "kill -9 of the postmaster")
  T.wait_until(function()
    if not F.gone(pid) then return false end
    for _, k in ipairs(kids) do
      if not F.gone(k) then return false end
    end
    return true
  end, 60, "the killed postmaster and its children to exit")
  return #kids
end

-- Stops the cluster (immediate: a fault test has no use for a clean shutdown), unmounts its
-- tmpfs and removes its directory. Idempotent.
function Cluster:destroy()
  if self.destroyed then return end
  local pid = self:postmaster()
  if pid and not F.gone(pid) then
    local code = pg_ctl(self, "-w -t 30 -m immediate stop")
    if code ~= 0 and not F.gone(pid) then
      local kids = children(pid)
      os.execute("kill -KILL " .. pid .. " 2>/dev/null")
      T.wait_until(function()
        for _, k in ipairs(kids) do if not F.gone(k) then return false end end
        return F.gone(pid)
      end, 30, "the private cluster's processes to exit")
    end
  end
  if self.mounted then
    local code, _, err = T.sh("umount " .. q(self.walfs))
    if code ~= 0 then
      code, _, err = T.sh("umount -l " .. q(self.walfs))
      assert(code == 0, "cannot unmount " .. self.walfs .. ": " .. err)
    end
    self.mounted = false
  end
  must("rm -rf " .. q(self.dir), "removing " .. self.dir)
  self.destroyed = true
end

-- The server log (for failure messages).
function Cluster:server_log()
  return T.read(self.log)
end

---------------------------------------------------------------------------------------------
-- The blackhole proxy (tests/lib/blackhole_proxy.py) on 127.0.0.1:<free port>, forwarding to
-- host:port. p:blackhole(), p:restore(), p:heal() signal it and wait until it has acted;
-- each returns the number of connections it reported.
local Proxy = {}
Proxy.__index = Proxy

function F.proxy(host, port)
  local p = setmetatable({}, Proxy)
  p.out = os.tmpname()
  p.err = os.tmpname()
  local h = io.popen("setsid " .. q(F.python) .. " " .. q(F.proxy_script) .. " " .. q(host) ..
                     " " .. port .. " >" .. p.out .. " 2>" .. p.err .. " </dev/null & echo $!")
  p.pid = T.track(tonumber(h:read("l")))
  h:close()
  F.defer(function() p:stop() end)
  p.port = T.wait_until(function()
    if F.gone(p.pid) then error("the proxy exited: " .. T.read(p.err)) end
    return tonumber(T.read(p.out):match("listening (%d+)"))
  end, 30, "the proxy to listen")
  return p
end

local function signal_proxy(p, sig, word)
  local before = select(2, T.read(p.out):gsub(word .. " %d+", ""))
  must("kill -" .. sig .. " " .. p.pid, "signalling the proxy")
  return T.wait_until(function()
    local n, last = 0, nil
    for v in T.read(p.out):gmatch(word .. " (%d+)") do
      n = n + 1
      last = tonumber(v)
    end
    return n > before and last
  end, 30, "the proxy to " .. word)
end

function Proxy:blackhole() return signal_proxy(self, "USR1", "blackhole") end
function Proxy:restore() return signal_proxy(self, "USR2", "restore") end
function Proxy:heal() return signal_proxy(self, "HUP", "heal") end

function Proxy:stop()
  if self.pid and not F.gone(self.pid) then
    os.execute("kill -TERM " .. self.pid .. " 2>/dev/null")
    T.wait_until(function() return F.gone(self.pid) end, 30, "the proxy to exit")
  end
  os.remove(self.out)
  os.remove(self.err)
end

---------------------------------------------------------------------------------------------
-- Workers: `spine serve` (spine_test's T.serve), killed by pid at cleanup if still there.
function F.serve(url, env)
  local h = T.serve(url, env)
  F.defer(function()
    if not F.gone(h.pid) then T.kill(h, "KILL") end
    os.remove(h.log)
  end)
  return h
end

-- A worker's state in a few words, for failure messages: alive, stopped or gone, and its log's
-- last line.
function F.describe(h)
  local state = F.gone(h.pid) and "gone" or F.stopped(h.pid) and "stopped" or "alive"
  local last = T.log_of(h):match("([^\n]+)\n?$") or "(no log)"
  return ("worker %d %s, its last log line: %s"):format(h.pid, state, last)
end

-- The worker's id in spine.workers (waiting until it registered).
function F.worker_id(url, h)
  return T.wait_until(function()
    return tonumber(T.sql(url, "SELECT max(id) FROM spine.workers WHERE pid = " .. h.pid))
  end, 60, "worker " .. h.pid .. " to register")
end

---------------------------------------------------------------------------------------------
-- The workload: `workflows` cases of tests/playbooks/fault_credits.lua, each registering its
-- customer, then `credits` (10) ApplyManualCredit of 1..10 cents whose reasons name the
-- workflow. customers = K puts them on customers fc-1..fc-K in turn (hot keys); without it each
-- has its own (distinct keys). pause: a ctx.sleep before each credit (spreads the run, so a
-- fault lands while most of it remains). One `spine start` stores the version (and migrates a
-- fresh database), one INSERT the other cases, one NOTIFY wakes the workers.
function F.workload(url, o)
  local w = { n = o.workflows, customers = o.customers or o.workflows, credits = o.credits or 10,
              pause = o.pause }
  w.total = w.n * w.credits
  local input = { customer_id = "fc-1", n = w.credits, pause = w.pause }
  local code, first, err = T.spine_json(url, { "start", "tests/playbooks/fault_credits.lua",
                                                "--input", T.json.encode(input) })
  assert(code == 0 and first, "spine start failed: " .. tostring(err))
  local cust = o.customers and ("'fc-' || ((g - 1) %% %d + 1)"):format(o.customers) or
               "'fc-' || g"
  T.sql(url, ("INSERT INTO spine.workflows (id, process, playbook, version, status, input," ..
    " trace_id, wake_at) SELECT 'fw-' || g, w.process, w.playbook, w.version, 'pending'," ..
    " jsonb_build_object('customer_id', %s, 'n', %d%s), md5(g::text), now()" ..
    " FROM generate_series(2, %d) g, spine.workflows w WHERE w.id = '%s'"):format(
      cust, w.credits, w.pause and (", 'pause', '" .. w.pause .. "'") or "", w.n, first.id))
  T.sql(url, "NOTIFY spine, 'w'")
  return w
end

-- Credits applied so far.
function F.credits(url)
  return tonumber(T.sql(url, "SELECT count(*) FROM lifecycle.credits"))
end

-- How far the workload is, as one line: statuses and credits.
function F.progress(url, w)
  local statuses = T.sql(url, "SELECT coalesce(string_agg(status || ' ' || n, ', ' ORDER BY" ..
    " status), 'none') FROM (SELECT status, count(*) n FROM spine.workflows GROUP BY status) s")
  return ("workflows: %s; credits %d of %d"):format(statuses, F.credits(url), w.total)
end

-- Workflows not finished (pending, running or waiting).
local function unfinished(url)
  return tonumber(T.sql(url, "SELECT count(*) FROM spine.workflows" ..
                             " WHERE status IN ('pending', 'running', 'waiting')"))
end

-- Waits until no workflow is pending, running or waiting, at most `seconds`; fails naming
-- where the workload stands (and what `extra()` adds: a worker's state, deadlocks, ...).
-- Returns the clock when it saw them all finished.
function F.wait_finished(url, w, seconds, what, extra)
  seconds = math.ceil(seconds)
  local ok = pcall(T.wait_until, function() return unfinished(url) == 0 end, seconds, what)
  if not ok then
    assert(false, ("%s: not all %d workflows finished within %d s (%s)%s"):format(what, w.n,
      seconds, F.progress(url, w), extra and ("; " .. extra()) or ""))
  end
  return F.clock()
end

-- Nothing lost, nothing twice: every workflow completed; each has exactly `credits` ledger
-- entries, with distinct reasons, and `credits` credit entries in the history under its id;
-- every customer registered once; every customer's balance is the sum of its credits and each
-- entry's balance is distinct (the running sum: no entry computed twice on the same base).
function F.check(url, w)
  local not_completed = T.sql(url, "SELECT coalesce(string_agg(id || ' ' || status || ' ' ||" ..
    " coalesce(error::text, ''), '; ' ORDER BY id), '') FROM (SELECT * FROM spine.workflows" ..
    " WHERE status <> 'completed' ORDER BY id LIMIT 5) x")
  assert.are.equal("", not_completed, "workflows that did not complete (first 5)")
  assert.are.equal(w.n, tonumber(T.sql(url, "SELECT count(*) FROM spine.workflows" ..
                                            " WHERE status = 'completed'")),
                   "completed workflows")
  -- the ledger, per workflow (its id is in each reason)
  assert.are.equal(w.total, F.credits(url), "credit ledger entries (" .. w.n .. " workflows × " ..
                   w.credits .. ")")
  local bad = T.sql(url, "SELECT coalesce(string_agg(wf || ': ' || c || ' entries, ' || d ||" ..
    " ' reasons', '; ' ORDER BY wf), '') FROM (SELECT wf, c, d FROM (SELECT split_part(reason," ..
    " ' credit ', 1) wf, count(*) c, count(DISTINCT reason) d FROM lifecycle.credits GROUP BY 1)" ..
    " x WHERE c <> " .. w.credits .. " OR d <> " .. w.credits .. " ORDER BY wf LIMIT 5) y")
  assert.are.equal("", bad, "workflows whose ledger entries are not exactly " .. w.credits ..
                   " distinct credits (first 5)")
  assert.are.equal(w.n, tonumber(T.sql(url, "SELECT count(DISTINCT split_part(reason," ..
    " ' credit ', 1)) FROM lifecycle.credits c JOIN spine.workflows f" ..
    " ON f.id = split_part(c.reason, ' credit ', 1)")), "workflows with ledger entries")
  assert.are.equal("", T.sql(url, "SELECT coalesce(string_agg(workflow_id || ': ' || n, '; '" ..
    " ORDER BY workflow_id), '') FROM (SELECT workflow_id, count(*) n FROM lifecycle.history" ..
    " WHERE entity = 'credit' GROUP BY 1 HAVING count(*) <> " .. w.credits ..
    " ORDER BY 1 LIMIT 5) x"), "workflows whose history has not exactly " .. w.credits ..
    " credits (first 5)")
  -- the customers
  assert.are.equal(w.customers, tonumber(T.sql(url, "SELECT count(*) FROM lifecycle.customers")),
                   "customers")
  assert.are.equal(w.customers, tonumber(T.sql(url, "SELECT count(*) FROM lifecycle.history" ..
                   " WHERE entity = 'customer'")), "customer registrations in the history")
  local per_customer = w.n // w.customers
  local sum = per_customer * w.credits * (w.credits + 1) // 2
  assert.are.equal("", T.sql(url, "SELECT coalesce(string_agg(customer_id || ': balance ' ||" ..
    " b || ', sum ' || s || ', ' || d || ' distinct balances of ' || n, '; '" ..
    " ORDER BY customer_id), '') FROM (SELECT customer_id, max(balance_cents) b," ..
    " sum(amount_cents) s, count(DISTINCT balance_cents) d, count(*) n FROM lifecycle.credits" ..
    " GROUP BY 1 HAVING max(balance_cents) <> sum(amount_cents) OR sum(amount_cents) <> " .. sum ..
    " OR count(DISTINCT balance_cents) <> count(*) ORDER BY 1 LIMIT 5) x"),
    "customers whose balance is not the sum of their " .. per_customer * w.credits ..
    " credits (" .. sum .. " cents) (first 5)")
end

-- The lines of a worker's log with message `msg`.
function F.log_count(h, msg)
  local n = 0
  for _ in T.log_of(h):gmatch('"msg":"' .. msg:gsub("%p", "%%%0") .. '"') do n = n + 1 end
  return n
end

-- Waits until a credit beyond `count` commits (the work going on after a fault); returns the
-- clock then. Fails after `seconds`, naming where the workload stands.
function F.wait_progress(url, w, count, seconds, what, extra)
  local ok = pcall(T.wait_until, function() return F.credits(url) > count end, seconds, what)
  if not ok then
    assert(false, ("%s: no credit was applied within %d s (%s)%s"):format(what, seconds,
      F.progress(url, w), extra and ("; " .. extra()) or ""))
  end
  return F.clock()
end

-- Prints one recovery figure (never asserted: a benchmark figure of this machine, this run).
function F.figure(fault, recovery, first, detail)
  print(("\n  %s: recovery %.1f s (fault end to all finished), first credit after %.1f s%s")
        :format(fault, recovery, first, detail and ("; " .. detail) or ""))
end

return F
