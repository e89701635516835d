-- The router: during an API outage calls fall back to email; the breaker opens and stops
-- hammering the API; after the outage it closes again; no workflow is lost. Also the two
-- email-only and API-first adapters of providers/ against a real SMTP sink.
local T = require("spine_test")
local P = require("provider_test")

local PLAYBOOK = "tests/playbooks/provider_switch.lua"

local function setup(name, breaker)
  local sim = T.simulate({ "--smtp-port", "0" })
  local smtp = "smtp://127.0.0.1:" .. sim.smtp_port
  local dir = P.dir({
    smtp = { url = smtp, from = "spine@localhost" },
    acme_energy = { base_url = sim.url, rate_limit = 100000, breaker = breaker },
  })
  local url = T.newdb(name)
  return sim, url, { SPINE_PROVIDERS = dir, SPINE_SECRET_ACME_ENERGY_API_KEY = "acme-key-5f2b" }
end

local function metrics(srv)
  local _, text = T.http("GET", "http://127.0.0.1:" .. T.http_port(srv) .. "/metrics")
  return text
end

local function start_many(url, n, prefix)
  local ids = {}
  for i = 1, n do
    ids[i] = P.start(url, PLAYBOOK, { contract_id = prefix .. i, provider = "acme_energy",
                                      operation = "submit_activation" })
  end
  return ids
end

describe("acme_energy's fallback to email", function()
  it("falls back during an outage, opens the breaker, and closes it after recovery", function()
    -- three cases fail on the API and open the breaker; seven more, well within the cool-down,
    -- go to email without touching the API
    local sim, url, env = setup("spec_fallback_outage", { failures = 3, cooldown = "10s" })
    T.http("POST", sim.url .. "/_sim/outage", { body = '{"down": true}' })
    local srv = T.serve(url, env)
    local during = start_many(url, 3, "OUT-")
    local results = {}
    for i, id in ipairs(during) do results[i] = P.wait_status(url, id, "completed").result end
    for i, id in ipairs(start_many(url, 7, "OPEN-")) do
      results[3 + i] = P.wait_status(url, id, "completed").result
    end
    local api_hits = T.sim_effects(sim).requests
    local open = metrics(srv)
    -- the provider recovers; after the cool-down a probe goes through and closes the breaker
    T.http("POST", sim.url .. "/_sim/outage", { body = '{"down": false}' })
    local closed
    local after = {}
    T.wait_until(function()
      local id = P.start(url, PLAYBOOK, { contract_id = "AFTER-" .. (#after + 1),
                                          provider = "acme_energy", operation = "submit_activation" })
      after[#after + 1] = P.wait_status(url, id, "completed").result
      return after[#after].channel == "api"
    end, 60, "a call through the API again")
    closed = metrics(srv)
    local effects = T.sim_effects(sim)
    T.kill(srv)
    T.kill(sim)
    for _, r in ipairs(results) do
      assert.are.equal("email", r.channel)
      assert.matches("^email:", r.reference)
    end
    assert.are.equal(3, api_hits, "the breaker stopped calls to the API after 3 failures")
    -- open (1), or half-open (2) if the cool-down passed while the calls finished; the seven
    -- calls after the third failure went to email without touching the API
    assert.is_true(P.metric(open,
      'spine_provider_breaker_state{provider="acme_energy",channel="api"}') >= 1)
    assert.are.equal(7, P.metric(open,
      'spine_provider_calls_total{provider="acme_energy",channel="api",outcome="circuit_open"}'))
    assert.are.equal(0, P.metric(closed,
      'spine_provider_breaker_state{provider="acme_energy",channel="api"}'))
    assert.is_true(#effects.emails >= 10)
    assert.are.equal(#effects.emails, effects.emails_unique_keys)
    assert.are.equal(0, tonumber(T.sql(url,
      "SELECT count(*) FROM spine.workflows WHERE status <> 'completed'")))
  end)

  it("does not fall back when the API refuses", function()
    local sim, url, env = setup("spec_fallback_refusal", { failures = 3, cooldown = "1s" })
    local dir = env.SPINE_PROVIDERS
    local src = T.read(dir .. "/acme_energy.lua")
    -- point the API at a route the simulator answers 404: a refusal, not an outage
    src = src:gsub('"/v1/activations"', '"/v1/nowhere"')
    local f = assert(io.open(dir .. "/acme_energy.lua", "wb"))
    f:write(src)
    f:close()
    local srv = T.serve(url, env)
    local id = start_many(url, 1, "REF-")[1]
    local wf = P.wait_status(url, id, "failed")
    local effects = T.sim_effects(sim)
    T.kill(srv)
    T.kill(sim)
    assert.are.equal("rejected", wf.error.kind)
    assert.are.equal(0, #effects.emails)
  end)
end)

describe("nordlicht (email only)", function()
  it("sends the rendered switch request to the desk, once per key", function()
    local sim = T.simulate({ "--smtp-port", "0" })
    local dir = P.dir({ smtp = { url = "smtp://127.0.0.1:" .. sim.smtp_port, from = "spine@localhost" } })
    local url = T.newdb("spec_nordlicht")
    local srv = T.serve(url, { SPINE_PROVIDERS = dir })
    local id = P.start(url, PLAYBOOK, { contract_id = "N-1", meter_point = "DE0001", provider = "nordlicht" })
    local wf = P.wait_status(url, id, "completed")
    local effects = T.sim_effects(sim)
    T.kill(srv)
    T.kill(sim)
    assert.are.equal(1, #effects.emails)
    local mail = effects.emails[1]
    assert.are.same({ "wechsel@nordlicht-stadtwerke.example" }, mail.to)
    assert.are.equal("Lieferantenwechsel DE0001", mail.subject)
    assert.matches("Marktlokation DE0001", mail.body, 1, true)
    assert.matches(id, mail.body, 1, true)
    assert.are.equal("email:" .. mail.x_idempotency_key, wf.result.reference)
  end)
end)
