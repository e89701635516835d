-- The operations a switch needs from every adapter it may pick (submit_switch, cancel_switch,
-- submit_termination, withdraw_termination) against the provider simulator's API and SMTP
-- sink, and the confirmations their webhooks turn into signals.
local T = require("spine_test")
local P = require("provider_test")

local UNDO = "tests/playbooks/provider_undo.lua"
local KEYS = { SPINE_SECRET_GRIDCO_API_KEY = "gridco-key-1d7e",
               SPINE_SECRET_ACME_ENERGY_API_KEY = "acme-key-80c2" }

-- A simulator with an SMTP sink, every provider pointed at it, and a database.
local function setup(name)
  local sim = T.simulate({ "--smtp-port", "0" })
  local fast = { base_url = sim.url, rate_limit = 100000 }
  local smtp = { url = "smtp://127.0.0.1:" .. sim.smtp_port, from = "spine@localhost" }
  local dir = P.dir({ smtp = smtp, gridco = fast, acme_energy = fast })
  local env = { SPINE_PROVIDERS = dir }
  for k, v in pairs(KEYS) do env[k] = v end
  return sim, T.newdb(name), env
end

-- Runs provider_undo on the virtual clock; returns the workflow.
local function undo(url, env, input)
  local _, wf, err, out = T.spine_json(url, { "run", UNDO, "--clock", "virtual",
                                              "--input", T.json.encode(input) }, env)
  assert(wf, "spine run printed no workflow: " .. tostring(out) .. tostring(err))
  return wf
end

local SWITCH = { submit = "submit_switch", undo = "cancel_switch",
                 args = { contract_id = "K-1", meter_point = "DE0001",
                          requested_start = "2027-01-01" } }
local TERMINATION = { submit = "submit_termination", undo = "withdraw_termination",
                      args = { contract_id = "K-1", meter_point = "DE0001",
                               termination_date = "2026-12-31", reason = "switch" } }

local function with(provider, pair)
  return { provider = provider, submit = pair.submit, undo = pair.undo, args = pair.args }
end

describe("gridco's switch operations", function()
  it("request a switch and a termination through the API and cancel both", function()
    local sim, url, env = setup("spec_ops_gridco")
    local a = undo(url, env, with("gridco", SWITCH))
    local b = undo(url, env, with("gridco", TERMINATION))
    local effects = T.sim_effects(sim).effects
    T.kill(sim)
    assert.are.equal("completed", a.status, T.json.encode(a.error))
    assert.are.equal("completed", b.status, T.json.encode(b.error))
    assert.are.same({ "switch", "termination" }, { effects[1].kind, effects[2].kind })
    assert.are.same({ true, true }, { effects[1].cancelled, effects[2].cancelled })
    assert.are.equal(a.id .. ":1", effects[1].idempotency_key)
    assert.are.same({ reference = effects[2].id, status = "cancelled" }, b.result.undone)
    local asked = T.json.decode(effects[2].request)
    assert.are.same({ contract = "K-1", meter_point = "DE0001", date = "2026-12-31",
                      reason = "switch" }, asked)
  end)

  it("raise GridCo's refusal of a termination as rejected, without retrying it", function()
    local sim, url, env = setup("spec_ops_gridco_refused")
    T.http("POST", sim.url .. "/_sim/refuse", { body = '{"kind": "termination", "status": 409}' })
    local wf = undo(url, env, with("gridco", TERMINATION))
    local effects = T.sim_effects(sim)
    T.kill(sim)
    assert.are.equal("failed", wf.status)
    assert.are.equal("rejected", wf.error.kind)
    assert.matches("GridCo refused the termination", wf.error.message, 1, true)
    assert.are.equal(1, effects.requests)
    assert.are.equal(0, #effects.effects)
  end)
end)

describe("acme_energy's switch operations", function()
  it("go through the API while it is up", function()
    local sim, url, env = setup("spec_ops_acme_api")
    local wf = undo(url, env, with("acme_energy", TERMINATION))
    local effects = T.sim_effects(sim)
    T.kill(sim)
    assert.are.equal("completed", wf.status, T.json.encode(wf.error))
    assert.are.equal("api", wf.result.done.channel)
    assert.are.equal(1, #effects.effects)
    assert.is_true(effects.effects[1].cancelled)
    assert.are.equal(0, #effects.emails)
  end)

  it("fall back to the desk's mailbox in an outage, and withdraw an emailed one by email",
     function()
    local sim, url, env = setup("spec_ops_acme_email")
    T.http("POST", sim.url .. "/_sim/outage", { body = '{"down": true}' })
    local sw = undo(url, env, with("acme_energy", SWITCH))
    T.http("POST", sim.url .. "/_sim/outage", { body = '{"down": false}' })
    local tm_input = with("acme_energy", TERMINATION)
    local effects_before = T.sim_effects(sim)
    local tm = undo(url, env, tm_input)
    local effects = T.sim_effects(sim)
    T.kill(sim)
    assert.are.equal("completed", sw.status, T.json.encode(sw.error))
    assert.are.same({ "email", "email" }, { sw.result.done.channel, sw.result.undone.channel })
    assert.are.equal(2, #effects_before.emails)
    assert.are.equal("Switch request K-1", effects_before.emails[1].subject)
    assert.matches("meter point DE0001", effects_before.emails[1].body, 1, true)
    assert.are.equal("Cancel switch " .. sw.result.done.reference, effects_before.emails[2].subject)
    assert.are.same({ "activations@acme-energy.example" }, effects_before.emails[2].to)
    -- the API is back: the next termination and its withdrawal go through it
    assert.are.equal("api", tm.result.done.channel)
    assert.are.equal(1, #effects.effects)
    assert.are.equal(2, #effects.emails)
  end)
end)

describe("nordlicht's switch operations", function()
  it("send the termination and its withdrawal to the desk in German, once per key", function()
    local sim, url, env = setup("spec_ops_nordlicht")
    local wf = undo(url, env, with("nordlicht", TERMINATION))
    local sw = undo(url, env, with("nordlicht", SWITCH))
    local effects = T.sim_effects(sim)
    T.kill(sim)
    assert.are.equal("completed", wf.status, T.json.encode(wf.error))
    assert.are.equal("completed", sw.status, T.json.encode(sw.error))
    assert.are.equal(4, #effects.emails)
    assert.are.equal(4, effects.emails_unique_keys)
    local m = effects.emails
    assert.are.same({ "wechsel@nordlicht-stadtwerke.example" }, m[1].to)
    assert.are.equal("Kuendigung K-1", m[1].subject)
    assert.matches("kündigen wir im Auftrag des Kunden den Vertrag K-1", m[1].body, 1, true)
    assert.matches("zum 2026-12-31", m[1].body, 1, true)
    assert.are.equal("Ruecknahme der Kuendigung " .. wf.result.done.reference, m[2].subject)
    assert.are.equal("email:" .. m[1].x_idempotency_key, wf.result.done.reference)
    assert.are.equal("Lieferantenwechsel DE0001", m[3].subject)
    assert.matches("Storno", m[4].subject, 1, true)
  end)
end)

describe("the confirmation webhooks", function()
  local SECRET = "whsec-acme-7a10"

  it("turn ACME's termination.confirmed into provider.termination_confirmed", function()
    local url = T.newdb("spec_ops_acme_webhook")
    local srv = T.serve(url, { SPINE_SECRET_ACME_ENERGY_WEBHOOK_SECRET = SECRET })
    local base = "http://127.0.0.1:" .. T.http_port(srv)
    local id = P.start(url, "tests/playbooks/waiter.lua", {})
    P.wait_status(url, id, "waiting")
    local function post(body)
      return T.http("POST", base .. "/v1/webhooks/acme_energy", { body = body,
        headers = T.webhook_headers(SECRET, body) })
    end
    local good = post(T.json.encode({ event = "termination.confirmed", id = "tm-4",
                                      status = "confirmed", idempotency_key = id .. ":3" }))
    local unknown = post(T.json.encode({ event = "party", idempotency_key = id .. ":3" }))
    local stored = T.sql(url, "SELECT name || ' ' || payload::text FROM spine.signals")
    T.kill(srv)
    assert.are.equal(202, good)
    assert.are.equal(400, unknown)
    assert.are.equal('provider.termination_confirmed {"status": "confirmed", "reference": "tm-4"}',
                     stored)
  end)
end)
