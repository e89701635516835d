-- spine.testing: the process designer's test kit. Runs playbooks on the real engine (`spine
-- serve`) against a real PostgreSQL with a manual clock, simulated providers (`spine simulate`,
-- one per provider with a base_url, and an SMTP sink), and lets a busted spec drive a case:
--
--   local S = require("spine.testing")
--   local env = S.new()                        -- a fresh database, simulators, spine serve
--   local case = env:start("contract_activation", { contract_id = "k-1" })
--   env:advance("14d")                         -- 14 days pass at once: timers fire in order
--   assert.equal("awaiting_task", case:state())
--   env:close()                                -- stops every process it started
--
-- Every call that changes something (start, signal, webhook, advance, intent) returns once the
-- engine is idle again: nothing sleeps, nothing polls for long. Needs the `spine` binary
-- ($SPINE_BIN, else build/spine, else `spine` on the PATH), psql, curl and openssl, and
-- lua-cjson. From the project's root, plain `busted SPEC` finds this module (.busted).
local cjson = require("cjson")
require("spine.tmp") -- what os.tmpname names goes at exit

local S = {}

-- ---- processes and shell ----

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local function tmpname()
  local p = os.tmpname()
  os.remove(p)
  return p
end

-- Runs a shell command; returns exit code, stdout, stderr.
local function sh(cmd)
  local out, err = tmpname(), tmpname()
  local ok, how, code = os.execute(cmd .. " >" .. out .. " 2>" .. err .. " </dev/null")
  local o, e = read(out), read(err)
  os.remove(out)
  os.remove(err)
  if how == "signal" then code = 128 + code end
  return code or (ok and 0 or 1), o, e
end

-- Every process the kit started and has not stopped: killed (by pid) when the Lua state closes,
-- so a failing spec leaves nothing behind (busted closes the state when it exits).
local running = {}
S._reaper = setmetatable({}, { __gc = function()
  for pid in pairs(running) do os.execute("kill -9 " .. pid .. " 2>/dev/null") end
end })

-- Starts `cmd` (env assignments, then the program and its arguments) in `root`, in the
-- background with stdout to `out` and stderr to `err`; returns its pid.
local function spawn(root, env, cmd, out, err)
  local p = io.popen("cd " .. q(root) .. " && " .. env .. " setsid " .. cmd .. " >" .. out ..
                     " 2>" .. err .. " </dev/null & echo $!")
  local pid = tonumber(p:read("l"))
  p:close()
  assert(pid, "cannot start: " .. cmd)
  running[pid] = true
  return pid
end

-- A process that exited but was not reaped yet (a zombie, until init gets to it) is gone.
local function alive(pid)
  local stat = io.open("/proc/" .. pid .. "/stat", "r")
  if stat then
    local state = (stat:read("a") or ""):match("%) (%a)")
    stat:close()
    return state ~= nil and state ~= "Z" and state ~= "X"
  end
  if io.open("/proc/self/stat", "r") then return false end -- /proc, and no such process
  return os.execute("kill -0 " .. pid .. " 2>/dev/null") == true
end

local function stop(pid, sig)
  if not pid or not running[pid] then return end
  os.execute("kill -" .. (sig or "TERM") .. " " .. pid .. " 2>/dev/null")
  for _ = 1, 200 do -- up to 10 s, then for good
    if not alive(pid) then break end
    os.execute("sleep 0.05")
  end
  if alive(pid) then os.execute("kill -9 " .. pid .. " 2>/dev/null") end
  running[pid] = nil
end

-- Waits (a deadline, not a timing) until fn() is truthy; returns its value.
local function wait_for(fn, seconds, what)
  local deadline = os.time() + seconds
  while true do
    local v = fn()
    if v then return v end
    if os.time() > deadline then error("spine.testing: timed out waiting for " .. what, 3) end
    os.execute("sleep 0.02")
  end
end

local function http(method, url, body, headers)
  local bodyfile, outfile = tmpname(), tmpname()
  local cmd = "curl -sS -X " .. method .. " -o " .. outfile .. " -w '%{http_code}' --max-time 120"
  for _, h in ipairs(headers or {}) do cmd = cmd .. " -H " .. q(h) end
  if body then
    write(bodyfile, body)
    cmd = cmd .. " -H 'Content-Type: application/json' --data-binary @" .. bodyfile
  end
  local _, status = sh(cmd .. " " .. q(url))
  local answer = read(outfile)
  os.remove(bodyfile)
  os.remove(outfile)
  return tonumber(status) or 0, answer
end

local function decode(text)
  local ok, v = pcall(cjson.decode, text)
  return ok and v or nil
end

-- JSON null decodes to cjson.null: to nil, recursively, so that specs test plain Lua values.
local function plain(v)
  if v == cjson.null then return nil end
  if type(v) ~= "table" then return v end
  for k, x in pairs(v) do v[k] = plain(x) end
  return v
end

local function hmac(secret, body)
  local f = tmpname()
  write(f, body)
  local code, out = sh("openssl dgst -sha256 -hmac " .. q(secret) .. " " .. f)
  os.remove(f)
  assert(code == 0, "openssl failed")
  return (out:match("(%x+)%s*$"))
end

local function upper(name)
  return (name:upper():gsub("%-", "_"))
end

-- ---- the environment ----

local Env = {}
Env.__index = Env
local Case = {}
Case.__index = Case
local Provider = {}
Provider.__index = Provider

-- The binary: $SPINE_BIN (a relative path is taken from the current folder), else build/spine
-- when the current folder has one (busted run from the project's root), else on the PATH.
S.bin = os.getenv("SPINE_BIN")
if not S.bin then
  local built = io.open("build/spine", "rb")
  if built then built:close() end
  S.bin = built and "build/spine" or "spine"
end
if S.bin:find("/", 1, true) and S.bin:sub(1, 1) ~= "/" then
  S.bin = (os.getenv("PWD") or ".") .. "/" .. S.bin
end

-- Runs `spine ARGS` in the project with the environment's database; returns code, out, err.
function Env:spine(args, extra_env)
  local cmd = "cd " .. q(self.root) .. " && SPINE_DATABASE_URL=" .. q(self.url) ..
              " SPINE_MANIFESTS=" .. q(self.manifests) .. " SPINE_PROVIDERS=" .. q(self.providers)
  for k, v in pairs(extra_env or {}) do cmd = cmd .. " " .. k .. "=" .. q(v) end
  cmd = cmd .. " " .. q(S.bin)
  for _, a in ipairs(args) do cmd = cmd .. " " .. q(a) end
  return sh(cmd)
end

-- `spine ARGS --json`: the decoded object, or an error naming the command.
function Env:spine_json(args)
  local a = { table.unpack(args) }
  a[#a + 1] = "--json"
  local code, out, err = self:spine(a)
  local obj = decode(out)
  if not obj then
    error(("spine %s: exit %d: %s%s"):format(table.concat(args, " "), code, out, err), 3)
  end
  return plain(obj), code
end

-- A fresh database: in the cluster of $SPINE_DATABASE_URL, else in Spine's embedded one
-- ($SPINE_TEST_HOME when the suite runs, else $SPINE_HOME or ./.spine). Returns its conninfo.
local function new_database(root, name)
  local base = os.getenv("SPINE_DATABASE_URL")
  -- the embedded cluster: made by its superuser, owned by role spine, which Spine works as
  local admin, owner = base, ""
  if not base or base == "" then
    local home = os.getenv("SPINE_TEST_HOME")
    local prefix = "cd " .. q(root) .. " && unset SPINE_DATABASE_URL; " ..
                   (home and ("SPINE_HOME=" .. q(home) .. " ") or "") .. q(S.bin) .. " db url"
    local code, out, err = sh(prefix)
    assert(code == 0, "spine db url failed: " .. err)
    base = out:gsub("%s+$", "")
    code, out, err = sh(prefix .. " --admin")
    assert(code == 0, "spine db url --admin failed: " .. err)
    admin, owner = out:gsub("%s+$", ""), " OWNER spine"
  end
  local code, _, err = sh("PGOPTIONS='-c client_min_messages=warning' psql " .. q(admin) ..
                          " -qAtX -v ON_ERROR_STOP=1 -c " ..
                          q('DROP DATABASE IF EXISTS "' .. name .. '" WITH (FORCE)') ..
                          " -c " .. q('CREATE DATABASE "' .. name .. '"' .. owner))
  assert(code == 0, "cannot create database " .. name .. ": " .. err)
  if base:match("^postgres") then -- a URI: replace its path
    return (base:gsub("^(postgres[%w]*://[^/?]*)/?[^?]*", "%1/" .. name, 1))
  end
  if base:match("dbname=%S+") then return (base:gsub("dbname=%S+", "dbname=" .. name)) end
  return base .. " dbname=" .. name
end

local db_seq = 0

-- Options (all optional):
--   root       the project: playbooks/, providers/, manifests/ (default $SPINE_SRC, else ".")
--   providers  folder of adapters and providers.json (default root/providers)
--   manifests  folder of manifests (default root/manifests)
--   now        where the manual clock starts, ISO 8601 (default: now)
--   simulate   names of the providers to simulate (default: every one with a base_url)
--   settings   per-provider settings merged into providers.json ({acme_energy = {...}})
--   secrets    per-provider secrets ({acme_energy = {api_key = "..."}}); api_key and
--              webhook_secret default to test values
--   database   a conninfo to use as it is (default: a fresh database, named after `name`)
--   name       the database's name (default spine_testing_<pid>_<n>)
--   env        more environment variables for `spine serve`
function S.new(o)
  o = o or {}
  local self = setmetatable({}, Env)
  self.root = o.root or os.getenv("SPINE_SRC") or "."
  self.providers_src = o.providers or (self.root .. "/providers")
  self.manifests = o.manifests or (self.root .. "/manifests")
  db_seq = db_seq + 1
  local pid = read("/proc/self/stat"):match("^(%d+)") or tostring(math.random(1e6))
  self.db = o.name or ("spine_testing_" .. pid .. "_" .. db_seq)
  self.url = o.database or new_database(self.root, self.db)
  self.sims = {}
  self.secrets = {}
  self.closed = false
  local ok, err = pcall(Env._start, self, o)
  if not ok then
    self:close()
    error(err, 2)
  end
  return self
end

function Env:_start(o)
  -- the adapters, in a folder of this environment's own, their settings pointing at simulators
  local dir = tmpname()
  local code, _, err = sh("mkdir -p " .. q(dir) .. " && { ! [ -d " .. q(self.providers_src) ..
                          " ] || cp -r " .. q(self.providers_src) .. "/. " .. q(dir) .. "; }")
  assert(code == 0, "cannot copy " .. self.providers_src .. ": " .. err) -- none: no adapters
  self.providers = dir
  local settings = decode(read(dir .. "/providers.json")) or {}
  settings.environments = nil
  for name, more in pairs(o.settings or {}) do
    settings[name] = settings[name] or {}
    for k, v in pairs(more) do settings[name][k] = v end
  end
  local names = o.simulate
  if not names then
    names = {}
    for name, conf in pairs(settings) do
      if type(conf) == "table" and conf.base_url then names[#names + 1] = name end
    end
    table.sort(names)
  end
  local serve_env = {}
  for _, name in ipairs(names) do
    local sim = self:_simulate(name)
    settings[name] = settings[name] or {}
    settings[name].base_url = sim.url
  end
  local sink = self:_simulate("smtp", { "--smtp-port", "0" })
  settings.smtp = settings.smtp or {}
  settings.smtp.url = "smtp://127.0.0.1:" .. sink.smtp_port
  write(dir .. "/providers.json", cjson.encode(settings))
  -- secrets: test values unless given
  for name, conf in pairs(settings) do
    if type(conf) == "table" and name ~= "smtp" then
      local given = (o.secrets or {})[name] or {}
      local s = { api_key = "test-" .. name .. "-api-key", webhook_secret = "whsec-test-" .. name }
      for k, v in pairs(given) do s[k] = v end
      self.secrets[name] = s
      for k, v in pairs(s) do serve_env["SPINE_SECRET_" .. upper(name) .. "_" .. upper(k)] = v end
    end
  end
  for k, v in pairs(o.env or {}) do serve_env[k] = v end
  self.serve_env = serve_env
  -- the manifests in force before any case comes (serve loads them too, in the background)
  local mf = io.open(self.manifests, "r")
  if mf then
    mf:close()
    local mcode, mout, merr = self:spine({ "manifests", "reload" })
    assert(mcode == 0, "spine manifests reload failed: " .. mout .. merr)
  end
  self.clock_start = o.now
  self:_serve()
end

-- Starts `spine simulate ARGS` for provider `name` (or the SMTP sink).
function Env:_simulate(name, args)
  local out, log = tmpname(), tmpname()
  local cmd = q(S.bin) .. " simulate --port 0"
  for _, a in ipairs(args or {}) do cmd = cmd .. " " .. q(a) end
  local pid = spawn(self.root, "", cmd, out, log)
  local ready = wait_for(function()
    local line = read(out):match("^[^\n]+\n")
    return line and decode(line)
  end, 30, "spine simulate (" .. name .. ") to listen")
  local sim = { name = name, pid = pid, log = log, out = out, url = ready.url,
                smtp_port = ready.smtp_port and math.tointeger(ready.smtp_port) }
  self.sims[name] = sim
  return sim
end

-- Starts (or starts again) `spine serve` with the manual clock; waits until it answers.
function Env:_serve()
  local log = tmpname()
  local env = "SPINE_DATABASE_URL=" .. q(self.url) .. " SPINE_MANIFESTS=" .. q(self.manifests) ..
              " SPINE_PROVIDERS=" .. q(self.providers) .. " SPINE_LISTEN=127.0.0.1:0"
  for k, v in pairs(self.serve_env) do env = env .. " " .. k .. "=" .. q(v) end
  local cmd = q(S.bin) .. " serve --clock " ..
              q(self.clock_start and ("manual=" .. self.clock_start) or "manual")
  self.clock_start = nil -- a restart goes on from the database's clock
  self.serve_log = log
  self.serve_logs = self.serve_logs or {}
  self.serve_logs[#self.serve_logs + 1] = log
  self.serve_pid = spawn(self.root, env, cmd, log, log)
  local port = wait_for(function()
    local text = read(log)
    if not alive(self.serve_pid) then
      error("spine serve exited at start:\n" .. text, 0)
    end
    return tonumber(text:match('"msg":"http listening","addr":"[^"]*:(%d+)"'))
  end, 60, "spine serve to listen")
  self.base = "http://127.0.0.1:" .. port
  self:settle()
end

-- Stops `spine serve` (SIGTERM: it releases its workflows; "KILL": as a crash) and starts it
-- again on the same database and clock.
function Env:restart(sig)
  local before = self:sql("SELECT id FROM spine.workers")
  stop(self.serve_pid, sig or "TERM")
  self:_serve()
  -- A killed worker's cases are free once the new one has reaped it, which it does when the
  -- database has seen the old connections go (its advisory lock): until then a deadline that
  -- falls due would find them owned. Wait for that, not for time.
  local ids = {}
  for _, r in ipairs(before) do ids[#ids + 1] = tostring(math.tointeger(r.id) or r.id) end
  if #ids > 0 then
    wait_for(function()
      return self:sql1("SELECT count(*) AS n FROM spine.workers WHERE id IN (" ..
                       table.concat(ids, ",") .. ")") == 0
    end, 120, "the stopped worker to be reaped")
  end
  self:settle()
end

-- The serve log so far (JSON lines), for a failing spec's message.
function Env:log()
  return read(self.serve_log or "")
end

function Env:close()
  if self.closed then return end
  self.closed = true
  stop(self.serve_pid)
  for _, sim in pairs(self.sims) do
    stop(sim.pid)
    os.remove(sim.out)
    os.remove(sim.log)
  end
  for _, log in ipairs(self.serve_logs or {}) do os.remove(log) end
  if self.providers then sh("rm -rf " .. q(self.providers)) end
end

-- ---- time ----

local function clock_call(self, body)
  local status, answer = http("POST", self.base .. "/v1/clock/advance", body)
  local v = decode(answer)
  if status ~= 200 or not v then
    error(("spine.testing: the clock answered %d: %s"):format(status, answer), 3)
  end
  return v.now_ms / 1000
end

-- Moves the clock by a duration ("14d", "90m", or seconds); returns the new now (seconds since
-- the epoch, as ctx.now()). Every timer due by then fires, in order.
function Env:advance(by)
  return clock_call(self, cjson.encode({ by = by }))
end

-- Moves the clock to a time (ISO 8601, or seconds since the epoch).
function Env:advance_to(time)
  return clock_call(self, cjson.encode({ to = time }))
end

-- Waits until the engine is idle (no step, signal, case or provider call left to do now).
function Env:settle()
  return clock_call(self, "{}")
end

-- Now on the manual clock, seconds since the epoch.
function Env:now()
  local _, answer = http("GET", self.base .. "/v1/clock")
  return decode(answer).now_ms / 1000
end

-- ---- the database ----

-- The rows of a query as tables (column name -> value, JSON types).
function Env:sql(query)
  local code, out, err = sh("psql " .. q(self.url) .. " -qAtX -v ON_ERROR_STOP=1 -c " ..
                            q("SELECT coalesce(json_agg(t), '[]') FROM (" .. query .. ") t"))
  if code ~= 0 then error("SQL failed: " .. query .. ": " .. err, 2) end
  return plain(cjson.decode(out))
end

-- Runs SQL statements in one transaction (psql -c), for what a query cannot do (a DELETE);
-- returns once the engine is idle.
function Env:exec(statements)
  local code, _, err = sh("psql " .. q(self.url) .. " -qAtX -v ON_ERROR_STOP=1 -c " ..
                          q(statements))
  if code ~= 0 then error("SQL failed: " .. statements .. ": " .. err, 2) end
  self:settle()
end

-- The first column of the first row (nil when no row).
function Env:sql1(query)
  local row = self:sql(query)[1]
  if not row then return nil end
  local _, v = next(row)
  return v
end

local function lit(s)
  return "'" .. tostring(s):gsub("'", "''") .. "'"
end
S.literal = lit

-- Applies an intent as an operator (`spine intent`); returns its result, or raises the error.
function Env:intent(name, args, actor)
  local res, code = self:spine_json({ "intent", name, "--args", cjson.encode(args or {}),
                                      "--actor", actor or "test:spine.testing" })
  if code ~= 0 then
    local e = res.error or {}
    error({ kind = e.kind, code = e.code, message = e.message, field = e.field }, 2)
  end
  self:settle()
  return res.result
end

-- The contract's record (GetContract), as of a time if given.
function Env:contract(contract_id, as_of)
  local res = self:spine_json({ "intent", "GetContract", "--args",
                                cjson.encode({ contract_id = contract_id, as_of = as_of }),
                                "--actor", "test:spine.testing" })
  return res.result
end

-- Resolves a human task as an operator would (ResolveTask), which signals "task.resolved" to
-- the workflow that opened the task; returns ResolveTask's result once the engine is idle.
function Env:resolve_task(task_id, outcome, data, actor)
  return self:intent("ResolveTask", { task_id = task_id, outcome = outcome, data = data },
                     actor or "ops:test")
end

-- Open tasks (of a kind, if given), oldest first.
function Env:tasks(kind)
  return self:sql("SELECT task_id, kind, subject, status, outcome, data, due, created_at" ..
                  " FROM lifecycle.tasks" .. (kind and (" WHERE kind = " .. lit(kind)) or "") ..
                  " ORDER BY created_at, task_id")
end

-- ---- cases ----

-- Starts a case of a process (routed by its manifest) or a playbook (name or file); returns
-- the case once the engine is idle. opts: subject, idempotency_key.
function Env:start(process, input, opts)
  opts = opts or {}
  local args = { "start", process, "--input", cjson.encode(input or {}) }
  if opts.subject then args[#args + 1] = "--subject"; args[#args + 1] = opts.subject end
  if opts.idempotency_key then
    args[#args + 1] = "--idempotency-key"
    args[#args + 1] = opts.idempotency_key
  end
  local wf, code = self:spine_json(args)
  if code ~= 0 then error("spine start " .. process .. ": " .. cjson.encode(wf), 2) end
  local c = self:case(wf.id)
  self:settle()
  return c
end

-- A case by workflow id.
function Env:case(id)
  return setmetatable({ env = self, id = id }, Case)
end

-- What `spine show --json` says: status, state, result, error, variant, steps...
function Case:show()
  return (self.env:spine_json({ "show", self.id }))
end

function Case:status()
  return self:show().status
end

function Case:state()
  return self:show().state
end

function Case:result()
  return self:show().result
end

function Case:error()
  return self:show().error
end

function Case:variant()
  return self:show().variant
end

function Case:attributes()
  return self:show().attributes or {}
end

-- The step history: {seq, kind, name, status, attempt, result?, error?, started_at, ...}.
function Case:steps()
  return self:show().steps or {}
end

-- "kind name" of every step, in order: { "intent RequestActivation", "provider ...", ... }.
function Case:step_names()
  local list = {}
  for _, s in ipairs(self:steps()) do list[#list + 1] = s.kind .. " " .. s.name end
  return list
end

-- The names of the intents this case applied, in order.
function Case:intent_names()
  local list = {}
  for _, s in ipairs(self:steps()) do
    if s.kind == "intent" and s.status == "completed" then list[#list + 1] = s.name end
  end
  return list
end

-- The history rows this case's intents wrote (lifecycle.history): {intent, entity, entity_id,
-- before, after, at}, in order.
function Case:intents()
  return self.env:sql("SELECT intent, entity, entity_id, before, after, at," ..
                      " extract(epoch from at)::float8 AS at_epoch FROM lifecycle.history" ..
                      " WHERE workflow_id = " .. lit(self.id) .. " ORDER BY history_id")
end

-- Delivers a signal (as `spine signal`) and returns once the engine is idle.
function Case:signal(name, payload)
  local code, out, err = self.env:spine({ "signal", self.id, name, "--data",
                                          cjson.encode(payload or {}) })
  if code ~= 0 then error("spine signal failed: " .. out .. err, 2) end
  self.env:settle()
end

-- Why the case is where it is (`spine explain`), as text.
function Case:explain()
  local _, out, err = self.env:spine({ "explain", self.id })
  return out .. err
end

-- Replays the case's history against its playbook (`spine replay`): true, or false and the
-- report when the playbook no longer takes the same steps.
function Case:replays(playbook)
  local args = { "replay", self.id }
  if playbook then args[#args + 1] = "--playbook"; args[#args + 1] = playbook end
  local rep, code = self.env:spine_json(args)
  return code == 0, rep
end

local function wait_case(self, field, want)
  self.env:settle()
  local last
  for _ = 1, 50 do
    last = self:show()
    if last[field] == want then return last end
    self.env:settle()
  end
  error(("case %s: %s is %s, not %s\n%s"):format(self.id, field, tostring(last[field]), want,
                                                  self:explain()), 3)
end

-- Returns once the case's business state is `name` (the engine idle), or fails saying where
-- the case is.
function Case:wait_for_state(name)
  return wait_case(self, "state", name)
end

function Case:wait_for_status(status)
  return wait_case(self, "status", status)
end

-- ---- providers and webhooks ----

-- A simulated provider: script its answers, take it down, see what it received.
function Env:provider(name)
  local sim = self.sims[name]
  assert(sim, "provider " .. name .. " is not simulated (no base_url in providers.json?)")
  return setmetatable({ env = self, name = name, sim = sim }, Provider)
end

local function control(sim, path, body)
  local status, answer = http("POST", sim.url .. path, cjson.encode(body))
  assert(status == 200, path .. " answered " .. status .. ": " .. answer)
  return decode(answer)
end

-- The next request gets this answer (no effect at the provider): {status = 201, json = {...}}
-- or body = "text"; repeat = n for n requests; match = "text" for the next request whose path
-- or body contains the text (a contract id, a reference), whatever other cases ask meanwhile.
function Provider:answer(a)
  local body = a.body or (a.json ~= nil and cjson.encode(a.json)) or "{}"
  control(self.sim, "/_sim/script", { responses = { { status = a.status or 200, body = body,
                                                      ["repeat"] = a["repeat"],
                                                      match = a.match } } })
  return self
end

-- The next n requests (with `match`, the next n that contain it) fail with status (default
-- 503), without effect.
function Provider:fail_next(n, status, match)
  return self:answer({ status = status or 503, json = { error = "scripted" }, ["repeat"] = n,
                       match = match })
end

-- Forgets scripted answers not used yet.
function Provider:clear()
  control(self.sim, "/_sim/script", { clear = true })
  return self
end

-- The provider's API down (every request 503) or up again.
function Provider:outage(down)
  control(self.sim, "/_sim/outage", { down = down ~= false })
  return self
end

-- What the provider saw: {requests, effects = {{id, idempotency_key, request, ...}}, ...}.
function Provider:effects()
  local status, answer = http("GET", self.sim.url .. "/_sim/effects")
  assert(status == 200, "GET /_sim/effects answered " .. status)
  return plain(cjson.decode(answer))
end

-- The provider's effects (requests that did something), oldest first; the last one.
function Provider:last_effect()
  local list = self:effects().effects or {}
  return list[#list]
end

-- The number of API requests the provider received.
function Provider:requests()
  return self:effects().requests
end

-- Back to normal: up, no scripted answers left (the SMTP sink: accepting mail).
function Provider:reset()
  if self.name == "smtp" then return self:smtp_outage(false) end
  control(self.sim, "/_sim/outage", { down = false })
  return self:clear()
end

-- Every simulated provider back to normal (between the `it`s of a spec sharing one env).
function Env:reset_providers()
  for name in pairs(self.sims) do
    local p = name == "smtp" and self:smtp() or self:provider(name)
    p:reset()
  end
end

-- The SMTP sink every provider's email goes to: outage(true) defers mail (451, transient).
function Env:smtp()
  return setmetatable({ env = self, name = "smtp", sim = self.sims.smtp }, Provider)
end

function Provider:smtp_outage(down)
  control(self.sim, "/_sim/smtp", { down = down ~= false })
  return self
end

-- The emails the sink accepted: {{from, to, subject, x_idempotency_key, body}}.
function Env:emails()
  return self:smtp():effects().emails or {}
end

-- Posts a webhook from `provider` to spine serve, signed as SPEC §6 says with its webhook
-- secret (or with opts.secret): X-Spine-Timestamp (opts.timestamp, default now) and
-- X-Spine-Signature, the HMAC of "<timestamp>.<body>" (opts.signature overrides the header;
-- opts.headers, a list of "Name: value", are added). Body: a table (sent as JSON) or text.
-- Returns the HTTP status and the decoded answer, once the engine is idle.
function Env:webhook(provider, body, opts)
  opts = opts or {}
  local text = type(body) == "string" and body or cjson.encode(body)
  local secret = opts.secret or (self.secrets[provider] or {}).webhook_secret or ""
  local ts = opts.timestamp or os.time()
  local sig = opts.signature or ("sha256=" .. hmac(secret, ts .. "." .. text))
  local headers = { "X-Spine-Timestamp: " .. ts, "X-Spine-Signature: " .. sig }
  for _, h in ipairs(opts.headers or {}) do headers[#headers + 1] = h end
  local status, answer = http("POST", self.base .. "/v1/webhooks/" .. provider, text, headers)
  self:settle()
  return status, decode(answer) or answer
end

S.json = cjson
S.plain = plain
return S
