-- ctx.provider end to end: a real `spine serve`, a real PostgreSQL and the provider simulator.
-- The call is at least once with one idempotency key; retries wait on durable timers; when
-- they run out the workflow pauses with an incident an operator resolves.
local T = require("spine_test")
local P = require("provider_test")

local API_KEY = "sk-live-6f1b2c9e-do-not-print"
local PLAYBOOK = "tests/playbooks/provider_switch.lua"

local function setup(name, sim_args, env_extra)
  local sim = T.simulate(sim_args)
  local dir = P.dir({ gridco = { base_url = sim.url, rate_limit = 100000,
                                 breaker = { failures = 1000, cooldown = "1s" } } })
  local url = T.newdb(name)
  local env = { SPINE_PROVIDERS = dir, SPINE_SECRET_GRIDCO_API_KEY = API_KEY }
  for k, v in pairs(env_extra or {}) do env[k] = v end
  return sim, url, env, dir
end

local function step_of(wf, kind)
  for _, s in ipairs(wf.steps) do
    if s.kind == kind then return s end
  end
end

describe("ctx.provider", function()
  it("calls the operation once with the key <workflow id>:<step> and records its answer", function()
    local sim, url, env = setup("spec_provider_ok")
    local srv = T.serve(url, env)
    local id = P.start(url, PLAYBOOK, { contract_id = "C-1" })
    local wf = P.wait_status(url, id, "completed")
    local effects = T.sim_effects(sim)
    T.kill(srv)
    T.kill(sim)
    assert.are.equal(1, #effects.effects)
    local step = step_of(wf, "provider")
    assert.are.equal("gridco.submit_switch", step.name)
    assert.are.equal(id .. ":" .. math.tointeger(step.seq), effects.effects[1].idempotency_key)
    assert.are.equal(effects.effects[1].id, wf.result.reference)
    assert.are.equal("C-1", T.json.decode(effects.effects[1].request).contract)
    assert.are.equal(1, step.attempt)
  end)

  it("retries a call cut by kill -9 with the same key: the provider sees one effect", function()
    local sim, url, env = setup("spec_provider_kill", { "--latency", "1500" })
    local srv = T.serve(url, env)
    local id = P.start(url, PLAYBOOK, { contract_id = "C-2" })
    -- the request reached the provider (its effect is made); its answer is 1.5 s away
    T.wait_until(function() return T.sim_effects(sim).requests >= 1 end, 30, "the call")
    local running = P.show(url, id)
    T.kill(srv)
    local again = T.serve(url, env)
    local wf = P.wait_status(url, id, "completed")
    local effects = T.sim_effects(sim)
    T.kill(again)
    T.kill(sim)
    assert.are.equal("running", step_of(running, "provider").status)
    assert.are.equal(1, #effects.effects)
    assert.is_true(effects.requests >= 2, "the call was made again after the restart")
    assert.are.equal(effects.effects[1].id, wf.result.reference)
  end)

  it("pauses with an incident when retries run out; spine retry resumes it to completion", function()
    local sim, url, env = setup("spec_provider_pause")
    T.http("POST", sim.url .. "/_sim/outage", { body = '{"down": true}' })
    local srv = T.serve(url, env)
    local id = P.start(url, PLAYBOOK, { contract_id = "C-3",
      opts = { retry = { attempts = 3, backoff = "50ms", max = "100ms" } } })
    local paused = P.wait_status(url, id, "paused")
    local _, incidents = T.spine_json(url, { "incidents" })
    local _, text = T.spine(url, { "incidents" })
    assert.matches("^#%d+ " .. id:gsub("%p", "%%%0") .. "  [^\n]+ %(3 attempts%) open since ", text)
    assert.are.equal(3, T.sim_effects(sim).requests)
    assert.are.equal(0, #T.sim_effects(sim).effects)
    -- the provider comes back; the operator retries
    T.http("POST", sim.url .. "/_sim/outage", { body = '{"down": false}' })
    local code = T.spine(url, { "retry", id })
    local wf = P.wait_status(url, id, "completed")
    local _, after = T.spine_json(url, { "incidents", "--all" })
    assert.matches("no open incidents", select(2, T.spine(url, { "incidents" })), 1, true)
    assert.matches(" retried since ", select(2, T.spine(url, { "incidents", "--all" })), 1, true)
    local effects = T.sim_effects(sim)
    T.kill(srv)
    T.kill(sim)
    assert.are.equal("paused", step_of(paused, "provider").status)
    assert.are.equal(3, step_of(paused, "provider").attempt)
    assert.are.equal("transient", step_of(paused, "provider").error.kind)
    assert.are.equal(1, #incidents.incidents)
    assert.are.equal(id, incidents.incidents[1].workflow_id)
    assert.are.equal("gridco.submit_switch", incidents.incidents[1].step)
    assert.are.equal(0, code)
    assert.are.equal(1, #effects.effects)
    assert.are.equal(effects.effects[1].id, wf.result.reference)
    assert.are.equal("retried", after.incidents[1].resolution)
  end)

  it("lets an operator skip a paused step with a result, or cancel the workflow", function()
    local sim, url, env = setup("spec_provider_skip")
    T.http("POST", sim.url .. "/_sim/outage", { body = '{"down": true}' })
    local srv = T.serve(url, env)
    local opts = { retry = { attempts = 1 } }
    local a = P.start(url, PLAYBOOK, { contract_id = "C-4", opts = opts })
    local b = P.start(url, PLAYBOOK, { contract_id = "C-5", opts = opts })
    P.wait_status(url, a, "paused")
    P.wait_status(url, b, "paused")
    local bad = T.spine(url, { "skip", a, "--result", "{not json" })
    local skip = T.spine(url, { "skip", a, "--result", '{"reference":"manual-77"}' })
    local cancel = T.spine(url, { "cancel", b })
    local done = P.wait_status(url, a, "completed")
    local cancelled = P.wait_status(url, b, "cancelled")
    local twice = T.spine(url, { "skip", a })
    local _, open = T.spine_json(url, { "incidents" })
    T.kill(srv)
    T.kill(sim)
    assert.are_not.equal(0, bad)
    assert.are.equal(0, skip)
    assert.are.equal(0, cancel)
    assert.are.equal("manual-77", done.result.reference)
    assert.are.equal("cancelled", cancelled.status)
    assert.are_not.equal(0, twice)
    assert.are.equal(0, #open.incidents)
  end)

  it("raises a rejection at the call site without retrying it", function()
    local sim, url, env = setup("spec_provider_reject")
    local srv = T.serve(url, env)
    local id = P.start(url, PLAYBOOK, { contract_id = "C-6", operation = "get_switch", reference = "sw-404",
      opts = { retry = { attempts = 5, backoff = "10ms" } } })
    local wf = P.wait_status(url, id, "failed")
    local requests = T.sim_effects(sim).requests
    T.kill(srv)
    T.kill(sim)
    assert.are.equal("rejected", wf.error.kind)
    assert.are.equal(1, requests)
    assert.are.equal(1, step_of(wf, "provider").attempt)
  end)

  it("refuses an unknown provider at the call site", function()
    local sim, url, env = setup("spec_provider_unknown")
    local srv = T.serve(url, env)
    local id = P.start(url, PLAYBOOK, { contract_id = "C-7", provider = "nobody" })
    local wf = P.wait_status(url, id, "failed")
    T.kill(srv)
    T.kill(sim)
    assert.are.equal("unknown_provider", wf.error.code)
    assert.matches("providers/nobody.lua", wf.error.message, 1, true)
  end)

  it("keeps timers and other workflows moving while 500 calls wait on a slow provider", function()
    local sim, url, env = setup("spec_provider_500", { "--latency", "8000" },
                                { SPINE_LEASE_MS = "30000" })
    local srv = T.serve(url, env)
    -- 500 cases, stored in one statement, each calling the slow provider
    local first = P.start(url, PLAYBOOK, { contract_id = "slow-0" })
    T.sql(url, ("INSERT INTO spine.workflows (id, process, playbook, version, status, input," ..
      " trace_id, wake_at) SELECT 'slow-' || g, w.process, w.playbook, w.version, 'pending'," ..
      " jsonb_build_object('contract_id', 'slow-' || g), md5(g::text), now()" ..
      " FROM generate_series(1, 499) g, spine.workflows w WHERE w.id = '%s'"):format(first))
    T.sql(url, "NOTIFY spine, 'w'")
    T.wait_until(function() return T.sim_effects(sim).requests >= 500 end, 60, "500 calls")
    -- every call is in flight now: a ticker sleeps 10 times meanwhile
    local ticker = P.start(url, "tests/playbooks/ticker.lua", { ticks = 10, every = "50ms" })
    P.wait_status(url, ticker, "completed", 30)
    local done_when_ticked = tonumber(T.sql(url,
      "SELECT count(*) FROM spine.workflows WHERE status = 'completed' AND id <> '" .. ticker .. "'"))
    T.wait_until(function()
      return T.sql(url, "SELECT count(*) FROM spine.workflows WHERE status = 'completed'") == "501"
    end, 120, "the 500 calls to end")
    local effects = T.sim_effects(sim)
    T.kill(srv)
    T.kill(sim)
    assert.are.equal(0, done_when_ticked, "the ticker finished while the calls were in flight")
    assert.are.equal(500, #effects.effects)
  end)

  it("never writes a secret to the log, the steps, the database or the CLI's output", function()
    local sim, url, env = setup("spec_provider_secret")
    local dir = env.SPINE_PROVIDERS
    P.add(dir, "leaky", [[
return {
  name = "leaky",
  channels = { "api" },
  api = {
    echo = function(p, args)
      local key = p.secret("api_key")
      p.log("info", "calling with " .. key, { key = key })
      local res = p.http.post(p.config.base_url .. "/v1/switches", {
        json = { contract = args.contract_id, token = key },
        headers = { Authorization = "Bearer " .. key } })
      if args.fail then error(p.rejected("refused for key " .. key, { key = key })) end
      return { reference = res.json.id, key = key }
    end,
  },
}]])
    local settings = T.json.decode(T.read(dir .. "/providers.json"))
    settings.leaky = { base_url = sim.url }
    local f = assert(io.open(dir .. "/providers.json", "wb"))
    f:write(T.json.encode(settings))
    f:close()
    env.SPINE_SECRET_LEAKY_API_KEY = API_KEY
    local srv = T.serve(url, env)
    local ok = P.start(url, PLAYBOOK, { contract_id = "S-1", provider = "leaky", operation = "echo" })
    P.wait_status(url, ok, "completed")
    local _, show_out = T.spine(url, { "show", ok, "--json" })
    T.kill(srv)
    local _, dump = T.sh("pg_dump --data-only " .. T.q(url))
    local log = T.log_of(srv)
    T.kill(sim)
    assert.is_truthy(log:find("calling with", 1, true), "the adapter's log line is there")
    assert.is_nil(log:find(API_KEY, 1, true), "secret in the log")
    assert.is_nil(dump:find(API_KEY, 1, true), "secret in the database")
    assert.is_nil(show_out:find(API_KEY, 1, true), "secret in spine show")
    assert.is_truthy(show_out:find("[secret]", 1, true), "the secret was replaced")
  end)
end)
