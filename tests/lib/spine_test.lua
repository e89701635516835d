-- Helpers for the end-to-end specs: a fresh database per spec, the `spine` binary, SQL, and
-- background `spine serve` processes that tests kill for real.
local cjson = require("cjson")

local T = {}
T.bin = assert(os.getenv("SPINE_BIN"), "SPINE_BIN is not set (run the specs through ctest)")
T.src = os.getenv("SPINE_SRC") or "."

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
T.q = shell_quote

local function read_all(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

local tmp_seq = 0
local function tmpfile()
  tmp_seq = tmp_seq + 1
  return os.tmpname() .. "." .. tmp_seq
end

-- Runs a shell command; returns exit code, stdout, stderr.
function T.sh(cmd)
  local out, err = tmpfile(), tmpfile()
  local ok, how, code = os.execute(cmd .. " >" .. out .. " 2>" .. err .. " </dev/null")
  local o, e = read_all(out), read_all(err)
  os.remove(out)
  os.remove(err)
  if how == "signal" then code = 128 + code end
  return code or (ok and 0 or 1), o, e
end

-- A fresh database in the test run's cluster; returns its conninfo.
function T.newdb(name)
  local code, out, err = T.sh(T.q(T.src .. "/tests/lib/testpg") .. " newdb " .. T.q(name))
  assert(code == 0, "cannot create database " .. name .. ": " .. err)
  return (out:gsub("%s+$", ""))
end

-- Runs spine against database `url`; returns exit code, stdout, stderr.
function T.spine(url, args, env)
  local prefix = "SPINE_DATABASE_URL=" .. T.q(url) .. " "
  for k, v in pairs(env or {}) do prefix = prefix .. k .. "=" .. T.q(v) .. " " end
  local cmd = "cd " .. T.q(T.src) .. " && " .. prefix .. T.q(T.bin)
  for _, a in ipairs(args) do cmd = cmd .. " " .. T.q(a) end
  return T.sh(cmd)
end

-- Runs spine with --json and decodes its one object; returns exit code, object, stderr.
function T.spine_json(url, args, env)
  local a = { table.unpack(args) }
  a[#a + 1] = "--json"
  local code, out, err = T.spine(url, a, env)
  local ok, obj = pcall(cjson.decode, out)
  if not ok then obj = nil end
  return code, obj, err, out
end

-- One value (first column of the first row) of a query, as text.
function T.sql(url, query)
  local code, out, err = T.sh("psql " .. T.q(url) .. " -qAtX -v ON_ERROR_STOP=1 -c " .. T.q(query))
  assert(code == 0, "SQL failed: " .. query .. ": " .. err)
  return (out:gsub("%s+$", ""))
end

-- Starts `spine serve` in the background; returns a handle with pid and log path. Its HTTP
-- server picks a free port (SPINE_LISTEN=127.0.0.1:0) unless env says otherwise: T.http_port.
function T.serve(url, env)
  local log = tmpfile()
  local prefix = "SPINE_DATABASE_URL=" .. T.q(url) .. " "
  env = env or {}
  if not env.SPINE_LISTEN then prefix = prefix .. "SPINE_LISTEN=127.0.0.1:0 " end
  for k, v in pairs(env) do prefix = prefix .. k .. "=" .. T.q(v) .. " " end
  local cmd = "cd " .. T.q(T.src) .. " && " .. prefix .. "setsid " .. T.q(T.bin) ..
              " serve >" .. log .. " 2>&1 </dev/null & echo $!"
  local p = io.popen(cmd)
  local pid = tonumber(p:read("l"))
  p:close()
  return { pid = pid, log = log }
end

function T.kill(h, sig)
  os.execute("kill -" .. (sig or "KILL") .. " " .. h.pid .. " 2>/dev/null")
  -- reap: wait until the process is gone
  T.wait_until(function()
    return os.execute("kill -0 " .. h.pid .. " 2>/dev/null") ~= true
  end, 30, "process " .. h.pid .. " to exit")
end

-- The HTTP port a `spine serve` logged ("http listening"), waiting for it to start.
function T.http_port(h)
  return T.wait_until(function()
    return tonumber(read_all(h.log):match('"msg":"http listening","addr":"[^"]*:(%d+)"'))
  end, 30, "spine serve to listen")
end

function T.log_of(h)
  return read_all(h.log)
end

-- Polls `fn` until it returns a truthy value or `seconds` pass (then fails naming `what`).
-- A deadline for a condition, not a timing assertion.
function T.wait_until(fn, seconds, what)
  local deadline = os.time() + seconds
  while true do
    local v = fn()
    if v then return v end
    if os.time() > deadline then error("timed out waiting for " .. (what or "condition"), 2) end
    os.execute("sleep 0.05")
  end
end

T.json = cjson
return T
