-- tests/spec/providers/__NAME___spec.lua: providers/__NAME__.lua against `spine simulate`, a
-- provider's REST API on 127.0.0.1 (POST /v1/switches, honouring Idempotency-Key), through
-- small playbooks run with the spine binary ($SPINE_BIN, else `spine` on the PATH) and its
-- database ($SPINE_DATABASE_URL, else spine's own under ./.spine); the webhook through a
-- `spine serve`. Needs curl and openssl.
-- Run it: busted tests/spec/providers/__NAME___spec.lua
local cjson = require("cjson")

local SPINE = os.getenv("SPINE_BIN") or "spine"
-- The project's folder: this file is <root>/tests/spec/providers/__NAME___spec.lua.
local ROOT = debug.getinfo(1, "S").source:sub(2):match("^(.-)/?tests/spec/providers/[^/]+$")
if not ROOT or ROOT == "" then ROOT = "." end

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function read(path)
  local f = io.open(path, "rb")
  local s = f and f:read("a") or ""
  if f then f:close() end
  return s
end

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

-- Runs a shell command; returns its exit code, stdout and stderr.
local function sh(cmd)
  local out, err = os.tmpname(), os.tmpname()
  local _, _, code = os.execute(cmd .. " >" .. out .. " 2>" .. err .. " </dev/null")
  local o, e = read(out), read(err)
  os.remove(out)
  os.remove(err)
  return code, o, e
end

-- Starts `spine simulate ARGS` on a free port; returns {pid, url}.
local function simulate(args)
  local out, log = os.tmpname(), os.tmpname()
  local p = io.popen(q(SPINE) .. " simulate --port 0 " .. (args or "") .. " >" .. out ..
                     " 2>" .. log .. " </dev/null & echo $!")
  local pid = tonumber(p:read("l"))
  p:close()
  for _ = 1, 600 do
    local line = read(out):match("^[^\n]+\n")
    if line then return { pid = pid, url = cjson.decode(line).url } end
    os.execute("sleep 0.05")
  end
  os.execute("kill " .. pid)
  error("spine simulate did not start: " .. read(log))
end

local function stop(process)
  if process then os.execute("kill " .. process.pid .. " 2>/dev/null") end
end

-- Polls `fn` until it returns a value (then returns it), for at most `seconds`.
local function wait_for(fn, seconds, what)
  for _ = 1, seconds * 20 do
    local v = fn()
    if v then return v end
    os.execute("sleep 0.05")
  end
  error("timed out waiting for " .. what)
end

-- What the simulator saw: {requests, effects = {{id, idempotency_key, request}...}}.
local function effects(sim)
  local code, out = sh("curl -sS " .. q(sim.url .. "/_sim/effects"))
  assert(code == 0, "cannot reach the simulator")
  return cjson.decode(out)
end

-- A copy of this adapter in a providers folder of its own, its settings (those of
-- providers/providers.json, if any) pointing at `base_url`.
local function providers_dir(base_url)
  local dir = os.tmpname()
  os.remove(dir)
  local code, _, err = sh("mkdir -p " .. q(dir) .. " && cp " ..
                          q(ROOT .. "/providers/__NAME__.lua") .. " " .. q(dir) ..
                          " && if [ -d " .. q(ROOT .. "/providers/templates") .. " ]; then cp -r " ..
                          q(ROOT .. "/providers/templates") .. " " .. q(dir) .. "; fi")
  assert(code == 0, err)
  local ok, all = pcall(cjson.decode, read(ROOT .. "/providers/providers.json"))
  local settings = ok and type(all) == "table" and all["__NAME__"] or {}
  settings.base_url = base_url
  write(dir .. "/providers.json", cjson.encode({ ["__NAME__"] = settings }))
  return dir
end

-- Runs a playbook calling __NAME__'s submit_switch through `dir`; returns the workflow.
local function call(dir, opts)
  local playbook = os.tmpname() .. ".lua"
  write(playbook, [[
return {
  name = "__NAME___check",
  input = { contract_id = "string" },
  run = function(ctx, input)
    local ok, answer = pcall(ctx.provider, "__NAME__", "submit_switch",
                             { contract_id = input.contract_id },
                             { retry = { attempts = 3, backoff = "1s" } })
    return { ok = ok, answer = answer }
  end,
}
]])
  local code, out, err = sh("cd " .. q(ROOT) .. " && SPINE_PROVIDERS=" .. q(dir) ..
                            " timeout 120 " .. q(SPINE) .. " run " .. q(playbook) ..
                            " --clock virtual --json --input " ..
                            q(cjson.encode({ contract_id = opts.contract_id })))
  os.remove(playbook)
  local ok, wf = pcall(cjson.decode, out)
  assert(ok and type(wf) == "table", "spine run printed no workflow (exit " .. tostring(code) ..
                                     "): " .. out .. err)
  return wf
end

-- Starts `spine serve` with the providers of `dir` and a webhook secret; returns {pid, url}.
local function serve(dir, secret)
  local log = os.tmpname()
  local env = "SPINE_PROVIDERS=" .. q(dir) .. " SPINE_LISTEN=127.0.0.1:0 SPINE_SECRET_" ..
              ("__NAME__"):upper() .. "_WEBHOOK_SECRET=" .. q(secret)
  local p = io.popen("cd " .. q(ROOT) .. " && " .. env .. " " .. q(SPINE) .. " serve >" ..
                     log .. " 2>&1 </dev/null & echo $!")
  local pid = tonumber(p:read("l"))
  p:close()
  local ok, port = pcall(wait_for, function()
    return read(log):match('"msg":"http listening","addr":"[^"]*:(%d+)"')
  end, 30, "spine serve to listen")
  if not ok then
    os.execute("kill " .. pid)
    error(port .. ": " .. read(log))
  end
  return { pid = pid, url = "http://127.0.0.1:" .. port }
end

-- Runs spine in the project's folder; returns its exit code and its --json answer.
local function spine_json(args)
  local cmd = "cd " .. q(ROOT) .. " && " .. q(SPINE)
  for _, a in ipairs(args) do cmd = cmd .. " " .. q(a) end
  local code, out, err = sh(cmd .. " --json")
  local ok, obj = pcall(cjson.decode, out)
  assert(ok and type(obj) == "table", "spine " .. args[1] .. " failed: " .. out .. err)
  return code, obj
end

-- POSTs `body` to url, signed as Spine checks webhooks (the HMAC of "<timestamp>.<body>");
-- returns the HTTP status.
local function post_signed(url, body, secret)
  local file, signed = os.tmpname(), os.tmpname()
  local ts = tostring(os.time())
  write(file, body)
  write(signed, ts .. "." .. body)
  local _, digest = sh("openssl dgst -sha256 -hmac " .. q(secret) .. " " .. q(signed))
  local code, status = sh("curl -sS -o /dev/null -w '%{http_code}' -X POST --data-binary @" ..
                          q(file) .. " -H 'Content-Type: application/json' -H " ..
                          q("X-Spine-Timestamp: " .. ts) .. " -H " ..
                          q("X-Spine-Signature: sha256=" .. digest:match("(%x+)%s*$")) ..
                          " " .. q(url))
  os.remove(file)
  os.remove(signed)
  assert(code == 0, "curl failed")
  return tonumber(status)
end

local function provider_step(wf)
  for _, s in ipairs(wf.steps) do
    if s.kind == "provider" then return s end
  end
end

describe("__NAME__", function()
  it("submits a switch once, with the workflow's idempotency key", function()
    local sim = simulate()
    finally(function() stop(sim) end)
    local wf = call(providers_dir(sim.url), { contract_id = "C-1" })
    local seen = effects(sim)
    assert.are.equal("completed", wf.status)
    assert.is_true(wf.result.ok, cjson.encode(wf.result))
    assert.are.equal(1, #seen.effects)
    assert.are.equal(seen.effects[1].id, wf.result.answer.reference)
    assert.are.equal(("%s:%d"):format(wf.id, provider_step(wf).seq),
                     seen.effects[1].idempotency_key)
    assert.are.equal("C-1", cjson.decode(seen.effects[1].request).contract)
  end)

  it("tries again after an outage, and the provider still makes one switch", function()
    local sim = simulate("--outage-after 0 --outage-for 1")
    finally(function() stop(sim) end)
    local wf = call(providers_dir(sim.url), { contract_id = "C-2" })
    local seen = effects(sim)
    assert.is_true(wf.result.ok, cjson.encode(wf.result))
    assert.are.equal(2, provider_step(wf).attempt)
    assert.are.equal(1, #seen.effects)
  end)

  it("reports a refusal as a rejection the playbook can catch", function()
    local sim = simulate()
    finally(function() stop(sim) end)
    -- the simulator answers 404 to a path it does not know: a refusal, not an outage
    local wf = call(providers_dir(sim.url .. "/nowhere"), { contract_id = "C-3" })
    local seen = effects(sim)
    assert.is_false(wf.result.ok)
    assert.are.equal("rejected", wf.result.answer.kind)
    assert.are.equal(0, #seen.effects)
  end)

  it("turns the provider's signed callback into the signal the workflow waits for", function()
    local sim, srv
    finally(function()
      stop(srv)
      stop(sim)
    end)
    sim = simulate()
    srv = serve(providers_dir(sim.url), "spec-secret")
    local playbook = os.tmpname() .. ".lua"
    write(playbook, [[
return {
  name = "__NAME___webhook_check",
  run = function(ctx)
    ctx.provider("__NAME__", "submit_switch", { contract_id = "C-4" })
    return ctx.wait("__NAME__.confirmed", { timeout = "1h" })
  end,
}
]])
    local code, started = spine_json({ "start", playbook })
    os.remove(playbook)
    assert.are.equal(0, code, cjson.encode(started))
    local effect = wait_for(function() return effects(sim).effects[1] end, 30, "the switch")
    local status = post_signed(srv.url .. "/v1/webhooks/__NAME__", cjson.encode({
      id = effect.id, status = "confirmed", idempotency_key = effect.idempotency_key }),
      "spec-secret")
    assert.are.equal(202, status)
    local wf = wait_for(function()
      local _, w = spine_json({ "show", started.id })
      return w.status ~= "running" and w.status ~= "waiting" and w.status ~= "pending" and w
    end, 30, "the workflow to end")
    assert.are.equal("completed", wf.status)
    assert.are.same({ reference = effect.id, status = "confirmed" }, wf.result)
  end)
end)
