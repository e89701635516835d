-- Helpers for the end-to-end specs: a fresh database per spec, the `spine` binary, SQL, and
-- background `spine serve` processes that tests kill for real.
local cjson = require("cjson")
require("spine.tmp") -- what os.tmpname names goes at exit

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
T.read = read_all -- a file's whole contents, "" when it cannot be read

-- Writes `text` to `path` (made or replaced); fails the test when it cannot.
function T.write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

-- A file of the source tree (path relative to it); fails the test when it cannot be read.
function T.source(path)
  local s = read_all(T.src .. "/" .. path)
  assert(s ~= "", "cannot read " .. path)
  return s
end

-- Temp files are <base>.<n> beside one name os.tmpname() reserved for the whole spec file (each
-- os.tmpname() call creates an empty file: one per call had left tens of thousands in /tmp);
-- the base goes when the Lua state closes.
local tmp_base = os.tmpname()
local tmp_seq = 0
local function tmpfile()
  tmp_seq = tmp_seq + 1
  return tmp_base .. "." .. tmp_seq
end
T.tmp_reaper = setmetatable({}, { __gc = function() os.remove(tmp_base) end })
T.tmpfile = tmpfile -- a fresh temp file name (nothing created); the caller removes the file

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

-- A fresh database in the test run's cluster; returns its conninfo. A spec run a second time
-- in another setting (tests/CMakeLists.txt) names its databases apart with SPINE_TEST_DB_SUFFIX.
function T.newdb(name)
  name = name .. (os.getenv("SPINE_TEST_DB_SUFFIX") or "")
  local code, out, err = T.sh(T.q(T.src .. "/tests/lib/testpg") .. " newdb " .. T.q(name))
  assert(code == 0, "cannot create database " .. name .. ": " .. err)
  return (out:gsub("%s+$", ""))
end

-- The product's spine ($SPINE_PRODUCT_BIN). T.bin is the specs' build of it, which also has
-- the test-only intent BenchRecord (tests/spine_testing.c): what documents the product's
-- catalog asks this one.
T.product_bin = os.getenv("SPINE_PRODUCT_BIN") or T.bin

-- Runs spine (T.bin, or `bin`) against database `url`; returns exit code, stdout, stderr.
function T.spine(url, args, env, bin)
  local prefix = "SPINE_DATABASE_URL=" .. T.q(url) .. " "
  for k, v in pairs(env or {}) do prefix = prefix .. k .. "=" .. T.q(v) .. " " end
  local cmd = "cd " .. T.q(T.src) .. " && " .. prefix .. T.q(bin or T.bin)
  for _, a in ipairs(args) do cmd = cmd .. " " .. T.q(a) end
  return T.sh(cmd)
end

-- Runs spine with --json and decodes its one object; returns exit code, object, stderr.
function T.spine_json(url, args, env, bin)
  local a = { table.unpack(args) }
  a[#a + 1] = "--json"
  local code, out, err = T.spine(url, a, env, bin)
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
-- Every process a spec starts (serve, simulate) that it has not killed: killed with the spec
-- file's Lua state (busted closes it on exit), so that a failed test leaves nothing running.
local running = {}
T.reaper = setmetatable({}, { __gc = function()
  for pid in pairs(running) do os.execute("kill -9 " .. pid .. " 2>/dev/null") end
end })

-- Remembers a process to kill when the spec file ends; returns its pid.
function T.track(pid)
  if pid then running[pid] = true end
  return pid
end

function T.serve(url, env)
  local log = tmpfile()
  local prefix = "SPINE_DATABASE_URL=" .. T.q(url) .. " "
  env = env or {}
  if not env.SPINE_LISTEN then prefix = prefix .. "SPINE_LISTEN=127.0.0.1:0 " end
  for k, v in pairs(env) do prefix = prefix .. k .. "=" .. T.q(v) .. " " end
  local cmd = "cd " .. T.q(T.src) .. " && " .. prefix .. "setsid " .. T.q(T.bin) ..
              " serve >" .. log .. " 2>&1 </dev/null & echo $!"
  local p = io.popen(cmd)
  local pid = T.track(tonumber(p:read("l")))
  p:close()
  return { pid = pid, log = log }
end

-- Stores n cases of playbook through one SQL statement (spine start is one process per case:
-- too slow for thousands) after registering the version with one spine start; wakes workers.
function T.start_many(url, playbook, n)
  local code, first = T.spine_json(url, { "start", playbook })
  assert(code == 0, "spine start " .. playbook .. " failed")
  T.sql(url, ("INSERT INTO spine.workflows (id, process, playbook, version, status, input," ..
    " trace_id, wake_at) SELECT 'bulk-' || g, w.process, w.playbook, w.version, 'pending', '{}'," ..
    " md5(g::text), now() FROM generate_series(2, %d) g, spine.workflows w WHERE w.id = '%s'")
    :format(n, first.id))
  T.sql(url, "NOTIFY spine, 'w'")
  return first.id
end

function T.alive(h)
  return os.execute("kill -0 " .. h.pid .. " 2>/dev/null") == true
end

function T.kill(h, sig)
  os.execute("kill -" .. (sig or "KILL") .. " " .. h.pid .. " 2>/dev/null")
  -- reap: wait until the process is gone
  T.wait_until(function()
    return os.execute("kill -0 " .. h.pid .. " 2>/dev/null") ~= true
  end, 30, "process " .. h.pid .. " to exit")
  running[h.pid] = nil
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
function T.wait_until(fn, seconds, what, interval, level)
  local deadline = os.time() + seconds
  while true do
    local v = fn()
    if v then return v end
    if os.time() > deadline then
      error("timed out waiting for " .. (what or "condition"), level or 2)
    end
    os.execute("sleep " .. (interval or 0.05))
  end
end

-- An HTTP request through curl. opts: headers (list of "Name: value"), body (string).
-- Returns status (0 when no answer), body, headers (lower-cased names).
function T.http(method, url, opts)
  opts = opts or {}
  local bodyfile, outfile, headfile = tmpfile(), tmpfile(), tmpfile()
  local cmd = "curl -sS -X " .. method .. " -o " .. outfile .. " -D " .. headfile ..
              " -w '%{http_code}' --max-time 60"
  for _, h in ipairs(opts.headers or {}) do cmd = cmd .. " -H " .. T.q(h) end
  if opts.body then
    local f = assert(io.open(bodyfile, "wb"))
    f:write(opts.body)
    f:close()
    cmd = cmd .. " --data-binary @" .. bodyfile
  end
  local _, out = T.sh(cmd .. " " .. T.q(url))
  local body, head = read_all(outfile), read_all(headfile)
  os.remove(bodyfile)
  os.remove(outfile)
  os.remove(headfile)
  local headers = {}
  for name, value in head:gmatch("([%w%-]+):%s*([^\r\n]*)") do headers[name:lower()] = value end
  return tonumber(out) or 0, body, headers
end

-- The value of metric `name` (labels included, as written) in /metrics text, or nil.
function T.metric(text, name)
  local pattern = "\n" .. name:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?{}]", "%%%0") .. " ([%d%.e%+]+)\n"
  return tonumber(("\n" .. text):match(pattern))
end

-- HMAC-SHA256 of `body` keyed with `secret`, in hex (openssl, independent of Spine's own).
function T.hmac(secret, body)
  local f = tmpfile()
  local h = assert(io.open(f, "wb"))
  h:write(body)
  h:close()
  local code, out = T.sh("openssl dgst -sha256 -hmac " .. T.q(secret) .. " " .. f)
  os.remove(f)
  assert(code == 0, "openssl failed")
  return (out:match("(%x+)%s*$"))
end

-- The headers of a webhook signed by SPEC §6's default scheme: X-Spine-Timestamp (`ts`, default
-- now) and X-Spine-Signature, the HMAC of "<ts>.<body>" keyed with `secret`. A list for T.http.
function T.webhook_headers(secret, body, ts)
  ts = ts or os.time()
  return { "Content-Type: application/json", "X-Spine-Timestamp: " .. ts,
           "X-Spine-Signature: sha256=" .. T.hmac(secret, ts .. "." .. body) }
end

-- Starts `spine simulate ARGS` on a free port; returns a handle with pid, log, port, url.
function T.simulate(args)
  local log, out = tmpfile(), tmpfile()
  local cmd = "cd " .. T.q(T.src) .. " && setsid " .. T.q(T.bin) .. " simulate --port 0"
  for _, a in ipairs(args or {}) do cmd = cmd .. " " .. T.q(a) end
  local p = io.popen(cmd .. " >" .. out .. " 2>" .. log .. " </dev/null & echo $!")
  local pid = T.track(tonumber(p:read("l")))
  p:close()
  local ready = T.wait_until(function()
    local line = read_all(out):match("^[^\n]+\n")
    return line and cjson.decode(line)
  end, 30, "spine simulate to listen")
  return { pid = pid, log = log, port = math.tointeger(ready.port), url = ready.url,
           smtp_port = ready.smtp_port and math.tointeger(ready.smtp_port) }
end

-- GET /_sim/effects of a simulator, decoded.
function T.sim_effects(sim)
  local status, body = T.http("GET", sim.url .. "/_sim/effects")
  assert(status == 200, "GET /_sim/effects answered " .. status)
  return cjson.decode(body)
end

T.json = cjson
return T
