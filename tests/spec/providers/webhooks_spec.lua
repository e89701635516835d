-- Inbound webhooks: verified by signature (SPEC §6: a timestamped HMAC, or the adapter's own
-- scheme), read by the provider's adapter, turned into signals for the workflows they name, once
-- per delivery. Refused requests change nothing.
local T = require("spine_test")
local P = require("provider_test")

local SECRET = "whsec-gridco-51d0"
local PLAYBOOK = "tests/playbooks/provider_switch.lua"

-- `headers`: a list of "Name: value" (T.webhook_headers signs), or nil for none.
local function post(base, provider, body, headers)
  return T.http("POST", base .. "/v1/webhooks/" .. provider, { body = body, headers = headers })
end

local function signed(body, ts)
  return T.webhook_headers(SECRET, body, ts)
end

-- Only the signature header (the scheme before the timestamp), or none.
local function legacy(signature)
  local headers = { "Content-Type: application/json" }
  if signature then headers[#headers + 1] = "X-Spine-Signature: " .. signature end
  return headers
end

local function signals(url)
  return tonumber(T.sql(url, "SELECT count(*) FROM spine.signals"))
end

local function deliveries(url)
  return tonumber(T.sql(url, "SELECT count(*) FROM spine.webhook_deliveries"))
end

-- A waiting workflow and the body of the GridCo confirmation that resumes it.
local function waiting_for_gridco(url)
  local id = P.start(url, "tests/playbooks/waiter.lua", {})
  P.wait_status(url, id, "waiting")
  return id, T.json.encode({ event = "switch.confirmed", id = "sw-9", status = "confirmed",
                             idempotency_key = id .. ":1" })
end

-- POSTs `body` with `headers` to every base URL at once (one curl each, started together);
-- returns their statuses and answers, in order.
local function post_at_once(bases, provider, body, headers)
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. T.q(dir)))
  local f = assert(io.open(dir .. "/body", "wb"))
  f:write(body)
  f:close()
  local cmd = ""
  for i, base in ipairs(bases) do
    cmd = cmd .. "curl -sS -o " .. dir .. "/out" .. i .. " -w '%{http_code}' --max-time 60"
    for _, h in ipairs(headers) do cmd = cmd .. " -H " .. T.q(h) end
    cmd = cmd .. " --data-binary @" .. dir .. "/body " ..
          T.q(base .. "/v1/webhooks/" .. provider) .. " >" .. dir .. "/code" .. i .. " & "
  end
  T.sh(cmd .. "wait")
  local statuses, answers = {}, {}
  for i = 1, #bases do
    statuses[i] = tonumber(T.read(dir .. "/code" .. i))
    answers[i] = T.read(dir .. "/out" .. i)
  end
  os.execute("rm -rf " .. T.q(dir))
  return statuses, answers
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
    local bad_sig = post(base, "gridco", good, T.webhook_headers("wrong-secret", good))
    local no_sig = post(base, "gridco", good, nil)
    local broken = '{"event": "switch.confirmed", '
    local malformed = post(base, "gridco", broken, signed(broken))
    local unknown_event = T.json.encode({ event = "party", idempotency_key = id .. ":1" })
    local refused, refusal = post(base, "gridco", unknown_event, signed(unknown_event))
    local nobody = post(base, "nobody", good, signed(good))
    local before = signals(url)
    local ok, answer = post(base, "gridco", good, signed(good))
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
    local function send(tbl, ts)
      local body = T.json.encode(tbl)
      local status, answer = post(base, "announcer", body, signed(body, ts))
      local ok, obj = pcall(T.json.decode, answer)
      return status, ok and obj or answer
    end
    -- a start the dispatcher refuses (no such playbook): 400, and the signal is not stored either
    local refused, refusal = send({ process = "tests/playbooks/nowhere.lua", who = "x",
                                    notify = waiting })
    local signals_after_refusal = signals(url)
    local good = { process = "tests/playbooks/waiter.lua", who = "ada", notify = waiting }
    local now = os.time()
    local ok, answer = send(good, now)
    -- the provider delivers the same request again, signed anew (a later timestamp): a new
    -- delivery to Spine, but the start's idempotency key starts nothing new
    local again, repeat_answer = send(good, now + 1)
    local replay, replay_answer = send(good, now) -- the first request, replayed as it was
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
    assert.are.equal(200, replay)
    assert.are.same({ duplicate = true }, replay_answer)
    assert.are.equal("2", cases) -- the waiter that was signalled and the one case started
    assert.are.equal("ada", first.result.got)
  end)

  it("deliver a replayed request once, answering the replay 200 {\"duplicate\": true}", function()
    local url = T.newdb("spec_webhook_replay")
    local srv = T.serve(url, { SPINE_SECRET_GRIDCO_WEBHOOK_SECRET = SECRET })
    local base = "http://127.0.0.1:" .. T.http_port(srv)
    local id, body = waiting_for_gridco(url)
    local headers = signed(body)
    local first, first_answer = post(base, "gridco", body, headers)
    local second, second_answer = post(base, "gridco", body, headers)
    -- the same signature in upper-case hex is the same delivery
    local upper = {}
    for i, h in ipairs(headers) do
      upper[i] = h:match("^X%-Spine%-Signature") and h:gsub("sha256=(%x+)", function(x)
        return "sha256=" .. x:upper()
      end) or h
    end
    local third, third_answer = post(base, "gridco", body, upper)
    local stored = signals(url)
    T.kill(srv)
    assert.are.equal(202, first)
    assert.are.same({ id }, T.json.decode(first_answer).signalled)
    assert.are.equal(200, second)
    assert.are.same({ duplicate = true }, T.json.decode(second_answer))
    assert.are.equal(200, third)
    assert.are.same({ duplicate = true }, T.json.decode(third_answer))
    assert.are.equal(1, stored)
    assert.are.equal(1, deliveries(url))
  end)

  it("answer 401 to a timestamp over 300 s old or ahead, and to the old body-only signature",
     function()
    local url = T.newdb("spec_webhook_stale")
    local srv = T.serve(url, { SPINE_SECRET_GRIDCO_WEBHOOK_SECRET = SECRET })
    local base = "http://127.0.0.1:" .. T.http_port(srv)
    local _, body = waiting_for_gridco(url)
    local now = os.time()
    local old, old_answer = post(base, "gridco", body, signed(body, now - 310))
    local ahead = post(base, "gridco", body, signed(body, now + 310))
    local body_only = post(base, "gridco", body, legacy("sha256=" .. T.hmac(SECRET, body)))
    -- the body-only signature next to a valid timestamp does not verify either
    local mixed = legacy("sha256=" .. T.hmac(SECRET, body))
    mixed[#mixed + 1] = "X-Spine-Timestamp: " .. now
    local body_only_ts = post(base, "gridco", body, mixed)
    local bad_ts = post(base, "gridco", body, signed(body, "12abc"))
    local stored, delivered = signals(url), deliveries(url)
    T.kill(srv)
    assert.are.equal(401, old)
    assert.matches("300 s", T.json.decode(old_answer).error.message, 1, true)
    assert.are.equal(401, ahead)
    assert.are.equal(401, body_only)
    assert.are.equal(401, body_only_ts)
    assert.are.equal(401, bad_ts)
    assert.are.equal(0, stored)
    assert.are.equal(0, delivered)
  end)

  it("store and deliver once the same request POSTed at once to two workers", function()
    local url = T.newdb("spec_webhook_race")
    local env = { SPINE_SECRET_GRIDCO_WEBHOOK_SECRET = SECRET }
    local a, b = T.serve(url, env), T.serve(url, env)
    local bases = { "http://127.0.0.1:" .. T.http_port(a), "http://127.0.0.1:" .. T.http_port(b) }
    local id, body = waiting_for_gridco(url)
    local statuses, answers = post_at_once(bases, "gridco", body, signed(body))
    local stored, delivered = signals(url), deliveries(url)
    T.kill(a)
    T.kill(b)
    table.sort(statuses)
    assert.are.same({ 200, 202 }, statuses)
    local dup = 0
    for _, answer in ipairs(answers) do
      if T.json.decode(answer).duplicate then dup = dup + 1 end
    end
    assert.are.equal(1, dup)
    assert.are.equal(1, stored)
    assert.are.equal(1, delivered)
    assert.are.equal(id, T.sql(url, "SELECT workflow_id FROM spine.signals"))
  end)

  it("prune expired deliveries as new ones are claimed, keeping the ones still useful", function()
    local url = T.newdb("spec_webhook_prune")
    assert.are.equal(0, (T.spine(url, { "db", "migrate" })))
    T.sql(url, "INSERT INTO spine.webhook_deliveries (provider, delivery_id, expires_at)"
               .. " SELECT 'gridco', 'sig:old' || g, clock_timestamp() - interval '1 minute'"
               .. " FROM generate_series(1, 100) g")
    -- about one claim in 50 prunes: a thousand leave a chance of none below 1e-8
    local fresh = T.sql(url, "SELECT count(*) FILTER (WHERE spine.webhook_claim('gridco',"
                             .. " 'sig:new' || g, '15 minutes')) FROM generate_series(1, 1000) g")
    local again = T.sql(url, "SELECT spine.webhook_claim('gridco', 'sig:new1', '15 minutes')")
    local left = T.sql(url, "SELECT count(*) FILTER (WHERE delivery_id LIKE 'sig:old%'),"
                            .. " count(*) FILTER (WHERE delivery_id LIKE 'sig:new%')"
                            .. " FROM spine.webhook_deliveries")
    assert.are.equal("1000", fresh)
    assert.are.equal("f", again)
    assert.are.equal("0|1000", left)
  end)

  describe("with the adapter's own verify", function()
    -- A provider that signs with its own header, names each delivery in another, and knows
    -- nothing of X-Spine-Timestamp.
    local ADAPTER = [[
return {
  name = "hooked",
  channels = { "api" },
  api = { ping = function() return {} end },
  webhook = {
    verify = function(p, request)
      local want = p.hmac_sha256(p.secret("webhook_secret"), request.body)
      local got = request.headers["x-hooked-signature"] or ""
      if not p.equal(got, want) then error(p.rejected("bad X-Hooked-Signature")) end
      local delivery = request.headers["x-hooked-delivery"]
      if not delivery then error(p.rejected("no X-Hooked-Delivery")) end
      return delivery
    end,
    handle = function(p, request)
      return { signal = "go", workflow_id = request.json.workflow,
               payload = { value = request.json.value } }
    end,
  },
}
]]

    local function hooked(base, body, delivery, key)
      return post(base, "hooked", body, { "Content-Type: application/json",
        "X-Hooked-Signature: " .. T.hmac(key or SECRET, body), "X-Hooked-Delivery: " .. delivery })
    end

    it("accepts its valid request, refuses a forged one and dedups on the id it names",
       function()
      local dir = P.dir({})
      P.add(dir, "hooked", ADAPTER)
      local url = T.newdb("spec_webhook_own_verify")
      local srv = T.serve(url, { SPINE_PROVIDERS = dir, SPINE_SECRET_HOOKED_WEBHOOK_SECRET = SECRET })
      local base = "http://127.0.0.1:" .. T.http_port(srv)
      local id = P.start(url, "tests/playbooks/waiter.lua", {})
      P.wait_status(url, id, "waiting")
      local body = T.json.encode({ workflow = id, value = "first" })
      local forged = hooked(base, body, "d-1", "not-the-secret")
      local spine_scheme = post(base, "hooked", body, signed(body))
      local none_stored = signals(url)
      local ok, answer = hooked(base, body, "d-1")
      -- the same delivery id with another, validly signed body: a redelivery, not a new one
      local other = T.json.encode({ workflow = id, value = "second" })
      local again, again_answer = hooked(base, other, "d-1")
      local wf = P.wait_status(url, id, "completed")
      local stored = T.sql(url, "SELECT count(*) || ' ' || string_agg(delivery_id, ',')"
                                .. " FROM spine.webhook_deliveries")
      T.kill(srv)
      assert.are.equal(401, forged)
      assert.are.equal(401, spine_scheme)
      assert.are.equal(0, none_stored)
      assert.are.equal(202, ok)
      assert.are.same({ id }, T.json.decode(answer).signalled)
      assert.are.equal(200, again)
      assert.are.same({ duplicate = true }, T.json.decode(again_answer))
      assert.are.equal("first", wf.result.got)
      assert.are.equal("1 id:d-1", stored)
    end)
  end)
end)
