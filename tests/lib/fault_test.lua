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

-- T.wait_until with a look every 0.1 s instead of 0.05 s: the waits of a fault spec last tens
-- of seconds, each look starts a psql, and the machine has two cores for everyone.
function F.wait_until(fn, seconds, what)
  return T.wait_until(fn, seconds, what, 0.1, 3)
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
-- Workers: `spine serve` as spine_test's T.serve starts it (its own session, HTTP on a free
-- port, log to a file), under a shell that waits for it and writes its exit status down:
-- F.exit_status(h). Killed by pid at cleanup if still there.
function F.serve(url, env)
  local h = { log = os.tmpname(), status = os.tmpname(), pidfile = os.tmpname() }
  os.remove(h.status)
  local prefix = "SPINE_DATABASE_URL=" .. q(url) .. " "
  env = env or {}
  if not env.SPINE_LISTEN then prefix = prefix .. "SPINE_LISTEN=127.0.0.1:0 " end
  local keys = {}
  for k in pairs(env) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do prefix = prefix .. k .. "=" .. q(env[k]) .. " " end
  local script = prefix .. q(T.bin) .. " serve >" .. q(h.log) .. " 2>&1 </dev/null & echo $! >" ..
                 q(h.pidfile) .. "; wait $!; echo $? >" .. q(h.status)
  os.execute("cd " .. q(T.src) .. " && setsid sh -c " .. q(script) .. " >/dev/null 2>&1 &")
  h.pid = T.track(T.wait_until(function()
    return tonumber(T.read(h.pidfile):match("%d+"))
  end, 30, "spine serve to start"))
  F.defer(function()
    if not F.gone(h.pid) then T.kill(h, "KILL") end
    os.remove(h.log)
    os.remove(h.status)
    os.remove(h.pidfile)
  end)
  return h
end

-- A worker's exit status once its shell wrote it down (128 + N: killed by signal N), or nil.
function F.exit_status(h)
  return tonumber(T.read(h.status):match("%d+"))
end

-- A worker's state in a few words, for failure messages: alive, stopped or gone, and its log's
-- last line.
function F.describe(h)
  local state = F.gone(h.pid) and "gone" or F.stopped(h.pid) and "stopped" or "alive"
  local last = T.log_of(h):match("([^\n]+)\n?$") or "(no log)"
  return ("worker %d %s, its last log line: %s"):format(h.pid, state, last)
end

-- A guard for F.wait_finished: the reason to stop waiting when one of these workers is gone.
function F.alive_guard(...)
  local hs = { ... }
  return function()
    for _, h in ipairs(hs) do
      if F.gone(h.pid) then return "a worker exited: " .. F.describe(h) end
    end
  end
end

-- The worker's id in spine.workers (waiting until it registered).
function F.worker_id(url, h)
  return T.wait_until(function() -- its migrations may still be under way
    return T.sql(url, "SELECT to_regclass('spine.workers') IS NOT NULL") == "t" and
           tonumber(T.sql(url, "SELECT max(id) FROM spine.workers WHERE pid = " .. h.pid))
  end, 60, "worker " .. h.pid .. " to register")
end

---------------------------------------------------------------------------------------------
-- The workload: `workflows` cases of tests/playbooks/fault_credits.lua, each doing `credits`
-- (10) ApplyManualCredit of 1..10 cents whose reasons name the workflow. customers = K puts
-- them on customers fc-1..fc-K in turn (hot keys), registered first with `spine intent
-- RegisterCustomer`; without it each workflow has its own customer and registers it first
-- (distinct keys). pause: a ctx.sleep before each credit (spreads the run, so a fault lands
-- while most of it remains). One `spine start` stores the version (and migrates a fresh
-- database), one INSERT the other cases, one NOTIFY wakes the workers.
function F.workload(url, o)
  local w = { n = o.workflows, customers = o.customers or o.workflows, credits = o.credits or 10,
              pause = o.pause }
  w.total = w.n * w.credits
  if o.customers then
    assert(T.spine(url, { "db", "migrate" }) == 0, "spine db migrate failed")
    for i = 1, o.customers do
      local code, _, err = T.spine_json(url, { "intent", "RegisterCustomer", "--actor",
        "ops:fault", "--args", T.json.encode({ customer_id = "fc-" .. i, name = "Fault Customer",
                                              email = "fc-" .. i .. "@example.org" }) })
      assert(code == 0, "RegisterCustomer fc-" .. i .. " failed: " .. tostring(err))
    end
  end
  local input = { customer_id = "fc-1", n = w.credits, pause = w.pause,
                  register = not o.customers }
  local code, first, err = T.spine_json(url, { "start", "tests/playbooks/fault_credits.lua",
                                                "--input", T.json.encode(input) })
  assert(code == 0 and first, "spine start failed: " .. tostring(err))
  local cust = o.customers and ("'fc-' || ((g - 1) %% %d + 1)"):format(o.customers) or
               "'fc-' || g"
  T.sql(url, ("INSERT INTO spine.workflows (id, process, playbook, version, status, input," ..
    " trace_id, wake_at) SELECT 'fw-' || g, w.process, w.playbook, w.version, 'pending'," ..
    " jsonb_build_object('customer_id', %s, 'n', %d, 'register', %s%s), md5(g::text), now()" ..
    " FROM generate_series(2, %d) g, spine.workflows w WHERE w.id = '%s'"):format(
      cust, w.credits, tostring(not o.customers),
      w.pause and (", 'pause', '" .. w.pause .. "'") or "", w.n, first.id))
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
-- `guard()`, called at each look, may end the wait early with a failure by returning its
-- reason (a worker that died). Returns the clock when it saw them all finished.
function F.wait_finished(url, w, seconds, what, extra, guard)
  seconds = math.ceil(seconds)
  local why
  local ok = pcall(F.wait_until, function()
    why = guard and guard()
    return why or unfinished(url) == 0
  end, seconds, what)
  local at = F.clock()
  if why then
    assert(false, ("%s: %s (%s)%s"):format(what, why, F.progress(url, w),
                                          extra and ("; " .. extra()) or ""))
  end
  if not ok then
    assert(false, ("%s: not all %d workflows finished within %d s (%s)%s"):format(what, w.n,
      seconds, F.progress(url, w), extra and ("; " .. extra()) or ""))
  end
  return at
end

-- Nothing lost, nothing twice: every workflow completed; each has exactly `credits` ledger
-- entries, with distinct reasons, and `credits` credit entries in the history under its id;
-- every customer registered once; every customer's balance is the sum of its credits and each
-- entry's balance is distinct (the running sum: no entry computed twice on the same base).
-- `when` (optional) starts each failure message ("after the thaw").
function F.check(url, w, when)
  local function say(msg) return when and (when .. ": " .. msg) or msg end
  local not_completed = T.sql(url, "SELECT coalesce((SELECT count(*) FROM spine.workflows" ..
    " WHERE status <> 'completed') || ' of them; first: ' || string_agg(id || ' ' || status ||" ..
    " ' (owner ' || coalesce(owner::text, 'none') || CASE WHEN ended_at IS NOT NULL THEN" ..
    " ', ended at ' || ended_at ELSE '' END || CASE WHEN result IS NOT NULL THEN" ..
    " ', has its result' ELSE '' END || coalesce(', error ' || error::text, '') || ')', '; '" ..
    " ORDER BY id), '') FROM (SELECT * FROM spine.workflows WHERE status <> 'completed'" ..
    " ORDER BY id LIMIT 5) x")
  assert.are.equal("", not_completed, say("workflows that are not completed"))
  assert.are.equal(w.n, tonumber(T.sql(url, "SELECT count(*) FROM spine.workflows" ..
                                            " WHERE status = 'completed'")),
                   say("completed workflows"))
  -- the ledger, per workflow (its id is in each reason)
  assert.are.equal(w.total, F.credits(url), say("credit ledger entries (" .. w.n ..
                   " workflows × " .. w.credits .. ")"))
  local bad = T.sql(url, "SELECT coalesce(string_agg(wf || ': ' || c || ' entries, ' || d ||" ..
    " ' reasons', '; ' ORDER BY wf), '') FROM (SELECT wf, c, d FROM (SELECT split_part(reason," ..
    " ' credit ', 1) wf, count(*) c, count(DISTINCT reason) d FROM lifecycle.credits GROUP BY 1)" ..
    " x WHERE c <> " .. w.credits .. " OR d <> " .. w.credits .. " ORDER BY wf LIMIT 5) y")
  assert.are.equal("", bad, say("workflows whose ledger entries are not exactly " ..
                   w.credits .. " distinct credits (first 5)"))
  assert.are.equal(w.n, tonumber(T.sql(url, "SELECT count(DISTINCT split_part(reason," ..
    " ' credit ', 1)) FROM lifecycle.credits c JOIN spine.workflows f" ..
    " ON f.id = split_part(c.reason, ' credit ', 1)")), say("workflows with ledger entries"))
  assert.are.equal("", T.sql(url, "SELECT coalesce(string_agg(workflow_id || ': ' || n, '; '" ..
    " ORDER BY workflow_id), '') FROM (SELECT workflow_id, count(*) n FROM lifecycle.history" ..
    " WHERE entity = 'credit' GROUP BY 1 HAVING count(*) <> " .. w.credits ..
    " ORDER BY 1 LIMIT 5) x"), say("workflows whose history has not exactly " .. w.credits ..
    " credits (first 5)"))
  -- the customers
  assert.are.equal(w.customers, tonumber(T.sql(url, "SELECT count(*) FROM lifecycle.customers")),
                   say("customers"))
  assert.are.equal(w.customers, tonumber(T.sql(url, "SELECT count(*) FROM lifecycle.history" ..
                   " WHERE entity = 'customer'")), say("customer registrations in the history"))
  -- per customer: its workflows' credits (1 + 2 + ... + credits cents each), the last balance
  -- their sum, every balance distinct
  local each = w.credits * (w.credits + 1) // 2
  assert.are.equal("", T.sql(url, "SELECT coalesce(string_agg(customer_id || ': balance ' ||" ..
    " coalesce(b, 0) || ', sum ' || coalesce(s, 0) || ', expected ' || coalesce(e, 0) || ', ' ||" ..
    " coalesce(d, 0) || ' distinct balances of ' || coalesce(n, 0), '; ' ORDER BY customer_id)," ..
    " '') FROM (SELECT * FROM (SELECT customer_id, max(balance_cents) b, sum(amount_cents) s," ..
    " count(DISTINCT balance_cents) d, count(*) n FROM lifecycle.credits GROUP BY 1) x FULL JOIN" ..
    " (SELECT input->>'customer_id' customer_id, count(*) * " .. each .. " e FROM" ..
    " spine.workflows GROUP BY 1) y USING (customer_id) WHERE b IS DISTINCT FROM s OR" ..
    " s IS DISTINCT FROM e OR d IS DISTINCT FROM n ORDER BY 1 LIMIT 5) z"),
    say("customers whose balance is not the sum of their workflows' credits, " .. each ..
        " cents each (first 5)"))
end

-- The lines of a worker's log with message `msg`.
function F.log_count(h, msg)
  local n = 0
  for _ in T.log_of(h):gmatch('"msg":"' .. msg:gsub("%p", "%%%0") .. '"') do n = n + 1 end
  return n
end

-- The workflows named by a worker's log lines with message `msg`, in order.
function F.log_workflows(h, msg)
  local ids = {}
  for id in T.log_of(h):gmatch('"msg":"' .. msg:gsub("%p", "%%%0") .. '","workflow":"([^"]+)"') do
    ids[#ids + 1] = id
  end
  return ids
end

-- Waits until a credit beyond `count` commits (the work going on after a fault); returns the
-- clock then. Fails after `seconds`, naming where the workload stands.
function F.wait_progress(url, w, count, seconds, what, extra)
  local ok = pcall(F.wait_until, function() return F.credits(url) > count end, seconds, what)
  if not ok then
    assert(false, ("%s: no credit was applied within %d s (%s)%s"):format(what, seconds,
      F.progress(url, w), extra and ("; " .. extra()) or ""))
  end
  return F.clock()
end

-- pg_stat_database.deadlocks of the connected database. A backend reports its deadlocks when
-- it ends or some time later: read it once the workers' backends are gone (F.backends_gone).
function F.deadlocks(url)
  return tonumber(T.sql(url, "SELECT deadlocks FROM pg_stat_database" ..
                             " WHERE datname = current_database()"))
end

-- Waits until no other backend is connected to the database (the workers stopped, their
-- backends ended and so reported their statistics).
function F.backends_gone(url)
  T.wait_until(function()
    return T.sql(url, "SELECT count(*) FROM pg_stat_activity WHERE datname =" ..
                      " current_database() AND pid <> pg_backend_pid()") == "0"
  end, 60, "the workers' backends to end")
end

-- One worker on cluster `pg` running the distinct-keys workload (300 workflows x 10 paced
-- credits), up to a third of its credits: the moment a database fault strikes. Returns the
-- worker, the workload and the credits applied so far.
function F.midrun(pg)
  local srv = F.serve(pg.url)
  local w = F.workload(pg.url, { workflows = 300, pause = "500ms" })
  F.wait_until(function() return F.credits(pg.url) >= w.total * 0.3 end, 120,
               "a third of the credits")
  return srv, w, F.credits(pg.url)
end

-- After a database fault: the worker went on by itself (it reconnected, it did not exit),
-- every workflow finished and every credit was applied once. `after` is the credits at the end
-- of the fault; `what` says which fault; `extra` (optional) explains a timeout. Returns the
-- times of the first credit after the fault and of the last.
function F.recovered(pg, srv, w, after, what, extra)
  assert.is_true(after < w.total, "the fault came after the last credit: it tested nothing")
  local first = F.wait_progress(pg.url, w, after, 120, what, extra)
  local done = F.wait_finished(pg.url, w, 120, what, extra, F.alive_guard(srv))
  assert.is_true(T.alive(srv), "the worker exited instead of reconnecting: " .. F.describe(srv))
  assert.is_true(F.log_count(srv, "reconnected") >= 1, "the worker never reconnected")
  F.check(pg.url, w)
  return first, done
end

-- Prints one recovery figure (never asserted: a benchmark figure of this machine, this run).
function F.figure(fault, recovery, first, detail)
  print(("\n  %s: recovery %.1f s (fault end to all finished)%s%s"):format(fault, recovery,
        first and (", first credit after %.1f s"):format(first) or "",
        detail and ("; " .. detail) or ""))
end

return F
