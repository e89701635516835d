-- A pg_auto_failover formation on this machine for the failover spec (issue 16 §4): a monitor,
-- a primary and a synchronous standby, each a `pg_autoctl` keeper with its PostgreSQL, in a temp
-- dir under /tmp, listening on 127.0.0.1 only (run as the postgres user when we are root, as
-- PostgreSQL must). The monitor's health checks and demotion timeout are shortened so that a
-- failover takes seconds, not the production defaults' half a minute. Everything is stopped by
-- process group and removed at F.cleanup, also when the test failed.
local T = require("spine_test")
local F = require("fault_test")

local q, must = T.q, F.must

local H = {}
H.pgbin = F.pgbin

local Formation = {}
Formation.__index = Formation

-- What runs a command as the user PostgreSQL runs as, with pg_autoctl's files — its
-- configuration, state and pid files (else under /tmp/pg_autoctl) — in the formation's dir.
function Formation:runner()
  local env = "env XDG_CONFIG_HOME=" .. q(self.dir .. "/config") .. " XDG_DATA_HOME=" ..
              q(self.dir .. "/share") .. " XDG_RUNTIME_DIR=" .. q(self.dir .. "/run") ..
              " PG_CONFIG=" .. q(H.pgbin .. "/pg_config") .. " "
  return (F.root and "runuser -u postgres -- " or "") .. env
end

function Formation:as_postgres(cmd)
  return "cd / && " .. self:runner() .. cmd
end

-- Starts `args` (a pg_autoctl command that runs until killed) in a session of its own;
-- returns the session's id (its process group: kill -9 -<pgid> ends the keeper and its
-- PostgreSQL together).
function Formation:spawn(name, args)
  local log = self.dir .. "/" .. name .. ".log"
  local pidfile = self.dir .. "/" .. name .. ".pid"
  -- $$: the session's shell, whose process group the keeper and its PostgreSQL stay in
  os.execute("setsid sh -c " .. q("echo $$ >" .. q(pidfile) .. "; cd / && exec " ..
             self:runner() .. "pg_autoctl " .. args .. " >" .. q(log) .. " 2>&1 </dev/null") ..
             " >/dev/null 2>&1 &")
  local pid = T.wait_until(function() return tonumber(T.read(pidfile):match("%d+")) end, 30,
                           "pg_autoctl " .. name .. " to start")
  self.groups[name] = pid -- setsid made it a session (and group) leader
  return pid
end

-- Kills a keeper's whole process group with SIGKILL and waits until its processes are gone.
function Formation:kill(name)
  local pgid = self.groups[name]
  if not pgid then return end
  os.execute("kill -KILL -" .. pgid .. " 2>/dev/null")
  T.wait_until(function()
    local _, out = T.sh("ps -o pid= -g " .. pgid)
    return not out:match("%d")
  end, 60, "pg_autoctl " .. name .. "'s processes to exit")
  self.groups[name] = nil
end

-- The monitor's view: {name = {reported, assigned}} of every node.
function Formation:states()
  local out = T.sql(self.monitor, "SELECT coalesce(string_agg(nodename || '=' || reportedstate ||" ..
                                  " '/' || goalstate, ' ' ORDER BY nodeid), '')" ..
                                  " FROM pgautofailover.node")
  local s = {}
  for name, rep, goal in out:gmatch("(%w+)=([%w_]+)/([%w_]+)") do s[name] = { rep, goal } end
  return s
end

function Formation:log(name)
  return T.read(self.dir .. "/" .. name .. ".log")
end

-- Which node answers read-write now (its port), or nil.
function Formation:primary_port()
  local code, out = T.sh("psql " .. q(self.url .. " connect_timeout=2") ..
                         " -qAtX -c 'SELECT inet_server_port()'")
  return code == 0 and tonumber(out:match("%d+")) or nil
end

-- A monitor, then node n1 (the primary) and n2 (its synchronous standby), database spine.
function H.formation()
  local f = setmetatable({ groups = {} }, Formation)
  f.dir = must("mktemp -d /tmp/spine-ha.XXXXXX", "mktemp")
  F.defer(function() f:destroy() end)
  must("mkdir -m 0700 " .. q(f.dir .. "/run"), "mkdir of the formation's run dir")
  if F.root then must("chown -R postgres: " .. q(f.dir), "chown of the formation dir") end
  local common = " --hostname 127.0.0.1 --listen 127.0.0.1 --auth trust --no-ssl"
  -- the monitor
  f.monitor_port = F.free_port()
  must(f:as_postgres("pg_autoctl create monitor --pgdata " .. q(f.dir .. "/monitor") ..
                     " --pgport " .. f.monitor_port .. common), "pg_autoctl create monitor")
  f:spawn("monitor", "run --pgdata " .. q(f.dir .. "/monitor"))
  f.monitor = ("host=127.0.0.1 port=%d user=autoctl_node dbname=pg_auto_failover"):format(
    f.monitor_port)
  T.wait_until(function()
    return T.sh("psql " .. q(f.monitor .. " connect_timeout=2") .. " -qAtX -c 'SELECT 1'") == 0
  end, 60, "the monitor to accept connections")
  -- fast failure detection, and a short wait for the old primary to demote itself
  local admin = q(("host=127.0.0.1 port=%d dbname=pg_auto_failover"):format(f.monitor_port))
  for _, set in ipairs({ "health_check_period = 1000", "health_check_retry_delay = 500",
                         "health_check_timeout = 1000", "node_considered_unhealthy_timeout = 3000",
                         "primary_demote_timeout = 5000" }) do
    must(f:as_postgres("psql " .. admin .. " -qAtX -c " .. q("ALTER SYSTEM SET pgautofailover." ..
                                                               set)), "monitor setting " .. set)
  end
  must(f:as_postgres("psql " .. admin .. " -qAtX -c 'SELECT pg_reload_conf()'"), "monitor reload")
  local uri = ("postgres://autoctl_node@127.0.0.1:%d/pg_auto_failover?sslmode=disable"):format(
    f.monitor_port)
  -- the nodes: n1 becomes the primary, n2 its standby
  f.ports = {}
  for i, name in ipairs({ "n1", "n2" }) do
    f.ports[i] = F.free_port()
    f:spawn(name, "create postgres --pgdata " .. q(f.dir .. "/" .. name) .. " --pgport " ..
                  f.ports[i] .. common .. " --monitor " .. q(uri) .. " --dbname spine --name " ..
                  name .. " --run")
    local want = i == 1 and "single" or "secondary" -- a lone primary is "single"
    local ok, err = pcall(T.wait_until, function()
      if i == 2 then -- the standby's base backup waits for a checkpoint: ask for one now
        T.sh("psql " .. q(("host=127.0.0.1 port=%d user=postgres dbname=spine" ..
                           " connect_timeout=2"):format(f.ports[1])) .. " -qAtX -c CHECKPOINT")
      end
      local s = f:states()[name]
      return s and s[1] == want
    end, 120, name .. " to be " .. want)
    if not ok then
      error(("%s (monitor: %s); the end of its log:\n%s"):format(err, T.json.encode(f:states()),
            f:log(name):sub(-1500)), 0)
    end
  end
  T.wait_until(function()
    local s = f:states()
    return s.n1 and s.n1[1] == "primary" and s.n2 and s.n2[1] == "secondary"
  end, 60, "n1 primary with n2 its standby")
  f.url = ("host=127.0.0.1,127.0.0.1 port=%d,%d user=postgres dbname=spine" ..
           " target_session_attrs=read-write"):format(f.ports[1], f.ports[2])
  f.primary = ("host=127.0.0.1 port=%d user=postgres dbname=spine"):format(f.ports[1])
  return f
end

-- Stops a keeper gracefully: SIGTERM to its group, so that it stops its PostgreSQL, whose
-- postmaster takes its children down with it (a SIGKILLed monitor's postmaster leaves its
-- logger and its health-check worker running, each in a group of its own); SIGKILL after a
-- minute.
function Formation:stop(name)
  local pgid = self.groups[name]
  if not pgid then return end
  local postmaster = tonumber(T.read(self.dir .. "/" .. name .. "/postmaster.pid"):match("^(%d+)"))
  os.execute("kill -TERM -" .. pgid .. " 2>/dev/null")
  local ok = pcall(T.wait_until, function()
    local _, out = T.sh("ps -o pid= -g " .. pgid)
    return not out:match("%d") and (not postmaster or F.gone(postmaster))
  end, 60, "pg_autoctl " .. name .. " to stop")
  if not ok then
    self:kill(name)
    if postmaster then os.execute("kill -KILL " .. postmaster .. " 2>/dev/null") end
  end
  self.groups[name] = nil
end

-- Stops every keeper and its PostgreSQL, and removes the dir. Idempotent.
function Formation:destroy()
  if self.destroyed then return end
  for _, name in ipairs({ "n2", "n1", "monitor" }) do pcall(self.stop, self, name) end
  must("rm -rf " .. q(self.dir), "removing " .. self.dir)
  self.destroyed = true
end

return H
