-- Inbound webhooks: verified by signature, read by the provider's adapter, turned into
-- signals for the workflows they name. Refused requests change nothing.
local T = require("spine_test")
local P = require("provider_test")

local SECRET = "whsec-gridco-51d0"
local PLAYBOOK = "tests/playbooks/provider_switch.lua"

local function post(base, provider, body, signature)
  local headers = { "Content-Type: application/json" }
  if signature then headers[#headers + 1] = "X-Spine-Signature: " .. signature end
  return T.http("POST", base .. "/v1/webhooks/" .. provider, { body = body, headers = headers })
end

local function signals(url)
  return tonumber(T.sql(url, "SELECT count(*) FROM spine.signals"))
end

describe("webhooks", function()
  it("resume the waiting workflow when the provider confirms through its signed callback", function()
    local url = T.newdb("spec_webhook_callback")
    local env = { SPINE_LISTEN = "127.0.0.1:0", SPINE_SECRET_GRIDCO_API_KEY = "gridco-key-81c4",
                  SPINE_SECRET_GRIDCO_WEBHOOK_SECRET = SECRET }
    -- serve first (the simulator needs its port), then point the adapter at the simulator
    local dir = P.dir({})
    env.SPINE_PROVIDERS = dir
    local srv = T.serve(url, env)
    local port = T.http_port(srv)
    local sim = T.simulate({ "--callback", "http://127.0.0.1:" .. port .. "/v1/webhooks/gridco",
                             "--callback-secret", SECRET, "--callback-after", "200" })
    T.kill(srv, "TERM")
    local settings = T.json.decode(T.read(dir .. "/providers.json"))
    settings.gridco.base_url = sim.url
    local f = assert(io.open(dir .. "/providers.json", "wb"))
    f:write(T.json.encode(settings))
    f:close()
    env.SPINE_LISTEN = "127.0.0.1:" .. port
    srv = T.serve(url, env)
    local id = P.start(url, PLAYBOOK, { contract_id = "W-1", wait = "provider.switch_confirmed" })
    local wf = P.wait_status(url, id, "completed")
    local effects = T.sim_effects(sim)
    T.kill(srv)
    T.kill(sim)
    assert.are.equal(1, #effects.effects)
    assert.are.equal(202, effects.effects[1].callback.status)
    assert.are.equal(effects.effects[1].id, wf.result.confirmation.reference)
    assert.are.equal("confirmed", wf.result.confirmation.status)
  end)

  it("answer 401 to a bad signature and 400 to malformed JSON, storing nothing", function()
    local url = T.newdb("spec_webhook_refusals")
    local srv = T.serve(url, { SPINE_SECRET_GRIDCO_WEBHOOK_SECRET = SECRET })
    local base = "http://127.0.0.1:" .. T.http_port(srv)
    local id = P.start(url, "tests/playbooks/waiter.lua", {})
    P.wait_status(url, id, "waiting")
    local good = T.json.encode({ event = "switch.confirmed", id = "sw-9", status = "confirmed",
                                 idempotency_key = id .. ":1" })
    local bad_sig = post(base, "gridco", good, "sha256=" .. T.hmac("wrong", good))
    local no_sig = post(base, "gridco", good, nil)
    local broken = '{"event": "switch.confirmed", '
    local malformed = post(base, "gridco", broken, "sha256=" .. T.hmac(SECRET, broken))
    local unknown_event = T.json.encode({ event = "party", idempotency_key = id .. ":1" })
    local refused, refusal = post(base, "gridco", unknown_event,
                                  "sha256=" .. T.hmac(SECRET, unknown_event))
    local nobody = post(base, "nobody", good, "sha256=" .. T.hmac(SECRET, good))
    local before = signals(url)
    local ok, answer = post(base, "gridco", good, "sha256=" .. T.hmac(SECRET, good))
    local after = signals(url)
    T.kill(srv)
    assert.are.equal(401, bad_sig)
    assert.are.equal(401, no_sig)
    assert.are.equal(400, malformed)
    assert.are.equal(400, refused)
    assert.matches("unknown GridCo event party", refusal, 1, true)
    assert.are.equal(404, nobody)
    assert.are.equal(0, before)
    assert.are.equal(202, ok)
    assert.are.same({ id }, T.json.decode(answer).signalled)
    assert.are.equal(1, after)
  end)
  it("start a new case when the adapter asks for one, once per request, all or nothing", function()
    local dir = P.dir({})
    -- a provider whose webhook announces a new customer: start a case, signal another
    P.add(dir, "announcer", [[
return {
  name = "announcer",
  channels = { "api" },
  api = { ping = function() return {} end },
  webhook = function(p, request)
    local b = request.json
    return {
      { start = b.process, input = { who = b.who } },
      { signal = "go", workflow_id = b.notify, payload = { value = b.who } },
    }
  end,
}
]])
    local url = T.newdb("spec_webhook_start")
    local srv = T.serve(url, { SPINE_PROVIDERS = dir, SPINE_SECRET_ANNOUNCER_WEBHOOK_SECRET = SECRET })
    local base = "http://127.0.0.1:" .. T.http_port(srv)
    local waiting = P.start(url, "tests/playbooks/waiter.lua", {})
    P.wait_status(url, waiting, "waiting")
    local function send(tbl)
      local body = T.json.encode(tbl)
      local status, answer = post(base, "announcer", body, "sha256=" .. T.hmac(SECRET, body))
      local ok, obj = pcall(T.json.decode, answer)
      return status, ok and obj or answer
    end
    -- a start the dispatcher refuses (no such playbook): 400, and the signal is not stored either
    local refused, refusal = send({ process = "tests/playbooks/nowhere.lua", who = "x",
                                    notify = waiting })
    local signals_after_refusal = signals(url)
    local good = { process = "tests/playbooks/waiter.lua", who = "ada", notify = waiting }
    local ok, answer = send(good)
    local again, repeat_answer = send(good) -- the provider delivers the same request again
    local started = ok == 202 and answer.started[1]
    if started then P.wait_status(url, started, "waiting") end
    local first = P.wait_status(url, waiting, "completed")
    local cases = T.sql(url, "SELECT count(*) FROM spine.workflows")
    T.kill(srv)
    assert.are.equal(400, refused)
    assert.matches("nowhere.lua", refusal.error.message, 1, true)
    assert.are.equal(0, signals_after_refusal)
    assert.are.equal(202, ok)
    assert.are.same({ waiting }, answer.signalled)
    assert.are.equal(1, #answer.started)
    assert.are.equal(202, again)
    assert.are.same({ started }, repeat_answer.started)
    assert.are.equal("2", cases) -- the waiter that was signalled and the one case started
    assert.are.equal("ada", first.result.got)
  end)
end)
