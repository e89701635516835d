-- `spine simulate`: the provider simulator the provider tests run against: idempotency keys,
-- outages, injected errors, latency, and signed callbacks to a running `spine serve`.
local T = require("spine_test")

local function post_switch(sim, key, body)
  local headers = { "Content-Type: application/json" }
  if key then headers[#headers + 1] = "Idempotency-Key: " .. key end
  local status, answer, h = T.http("POST", sim.url .. "/v1/switches",
                                   { body = body or '{"contract_id":"c-1"}', headers = headers })
  local ok, obj = pcall(T.json.decode, answer)
  return status, ok and obj or answer, h
end

describe("spine simulate", function()
  it("makes one effect when the same Idempotency-Key comes twice", function()
    local sim = T.simulate({})
    local s1, first = post_switch(sim, "wf-1:3")
    local s2, second, h2 = post_switch(sim, "wf-1:3")
    local s3, other = post_switch(sim, "wf-2:3")
    local effects = T.sim_effects(sim)
    local got_status, got = T.http("GET", sim.url .. "/v1/switches/" .. first.id)
    T.kill(sim, "TERM")
    assert.are.equal(201, s1)
    assert.are.equal(201, s2)
    assert.are.same(first, second)
    assert.are.equal("true", h2["idempotent-replayed"])
    assert.are.equal(201, s3)
    assert.are_not.equal(first.id, other.id)
    assert.are.equal(2, #effects.effects)
    assert.are.equal("wf-1:3", effects.effects[1].idempotency_key)
    assert.are.equal('{"contract_id":"c-1"}', effects.effects[1].request)
    assert.are.equal(200, got_status)
    assert.are.equal(first.id, T.json.decode(got).id)
  end)

  it("answers 503 without an effect during an outage, then recovers", function()
    local sim = T.simulate({ "--outage-after", "1", "--outage-for", "2" })
    local statuses = {}
    for i = 1, 4 do statuses[i] = (post_switch(sim, "k-" .. i)) end
    local effects = T.sim_effects(sim)
    T.kill(sim, "TERM")
    assert.are.same({ 201, 503, 503, 201 }, statuses)
    assert.are.equal(2, #effects.effects)
    assert.are.same({ "k-1", "k-4" },
                    { effects.effects[1].idempotency_key, effects.effects[2].idempotency_key })
    assert.are.equal(4, effects.requests)
  end)

  it("answers 500 without an effect to every call at --error-rate 1", function()
    local sim = T.simulate({ "--error-rate", "1" })
    local s1 = post_switch(sim, "a")
    local s2 = post_switch(sim, "a")
    local effects = T.sim_effects(sim)
    T.kill(sim, "TERM")
    assert.are.same({ 500, 500 }, { s1, s2 })
    assert.are.equal(0, #effects.effects)
  end)

  it("records the effect at once and holds the answer for --latency", function()
    local sim = T.simulate({ "--latency", "600000" })
    local out = os.tmpname()
    local p = io.popen("curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Idempotency-Key: slow'" ..
                       " --data-binary '{}' " .. sim.url .. "/v1/switches >" .. out ..
                       " 2>/dev/null & echo $!")
    local curl = { pid = tonumber(p:read("l")) }
    p:close()
    local effects = T.wait_until(function()
      local e = T.sim_effects(sim)
      return #e.effects == 1 and e
    end, 30, "the effect")
    local f = io.open(out, "rb")
    local answered = f:read("a")
    f:close()
    T.kill(curl, "KILL")
    T.kill(sim, "TERM")
    os.remove(out)
    assert.are.equal("slow", effects.effects[1].idempotency_key)
    assert.are.equal("", answered) -- the caller still waits for its answer
  end)

  it("calls back spine serve's webhook with a body signed by the callback secret", function()
    local url = T.newdb("spec_sim_callback")
    local srv = T.serve(url, { SPINE_SECRET_GRIDCO_WEBHOOK_SECRET = "cb-secret" })
    local hook = "http://127.0.0.1:" .. T.http_port(srv) .. "/v1/webhooks/gridco"
    local good = T.simulate({ "--callback", hook, "--callback-secret", "cb-secret",
                              "--callback-after", "10" })
    local bad = T.simulate({ "--callback", hook, "--callback-secret", "wrong",
                             "--callback-after", "10" })
    post_switch(good, "wf-good:1")
    post_switch(bad, "wf-bad:1")
    local function answered(sim)
      return T.wait_until(function()
        local e = T.sim_effects(sim).effects[1]
        return e.callback.status ~= 0 and e.callback
      end, 30, "the callback to be answered")
    end
    local g, b = answered(good), answered(bad)
    T.kill(good, "TERM")
    T.kill(bad, "TERM")
    T.kill(srv, "TERM")
    -- verified by serve and read by GridCo's adapter (no workflow wf-good runs: 202, unmatched)
    assert.are.equal(202, g.status)
    assert.are.equal(1, g.attempts)
    assert.matches('"msg":"webhook verified","provider":"gridco"', T.log_of(srv), 1, true)
    -- ... while the same callback signed with another secret is refused
    assert.are.equal(401, b.status)
  end)

  it("goes down and comes back on POST /_sim/outage, refusing a body that is not an object",
     function()
    local sim = T.simulate()
    local down = T.http("POST", sim.url .. "/_sim/outage", { body = '{"down": true}' })
    local during = post_switch(sim, "k-down")
    local state = T.sim_effects(sim)
    local bad = T.http("POST", sim.url .. "/_sim/outage", { body = '[true]' })
    local bad_latency = T.http("POST", sim.url .. "/_sim/latency", { body = '{"ms": -1}' })
    T.http("POST", sim.url .. "/_sim/outage", { body = '{"down": false}' })
    local after = post_switch(sim, "k-down")
    local effects = T.sim_effects(sim)
    T.kill(sim, "TERM")
    assert.are.equal(200, down)
    assert.are.equal(503, during)
    assert.is_true(state.down)
    assert.are.equal(0, #state.effects)
    assert.are.equal(400, bad)
    assert.are.equal(400, bad_latency)
    assert.are.equal(201, after)
    assert.is_false(effects.down)
    assert.are.equal(1, #effects.effects)
  end)

  it("records the mail its SMTP sink accepts and refuses all of it at --smtp-reject-rate 1",
     function()
    local sim = T.simulate({ "--smtp-port", "0" })
    local refusing = T.simulate({ "--smtp-port", "0", "--smtp-reject-rate", "1" })
    local msg = os.tmpname()
    local f = assert(io.open(msg, "wb"))
    f:write("From: spine@localhost\r\nTo: desk@provider.example\r\nSubject: Wechsel\r\n" ..
            " DE0001\r\nX-Idempotency-Key: wf-1:2\r\n\r\nHello\r\n.leading dot\r\n")
    f:close()
    local function send(s)
      return T.sh("curl -sS --max-time 30 smtp://127.0.0.1:" .. s.smtp_port ..
                  " --mail-from spine@localhost --mail-rcpt desk@provider.example" ..
                  " --mail-rcpt copy@provider.example -T " .. msg)
    end
    local ok = send(sim)
    local refused = send(refusing)
    os.remove(msg)
    local got, none = T.sim_effects(sim), T.sim_effects(refusing)
    T.kill(sim, "TERM")
    T.kill(refusing, "TERM")
    assert.are.equal(0, ok)
    assert.are_not.equal(0, refused)
    assert.are.equal(1, #got.emails)
    local m = got.emails[1]
    assert.are.equal("spine@localhost", m.from)
    assert.are.same({ "desk@provider.example", "copy@provider.example" }, m.to)
    assert.are.equal("Wechsel DE0001", m.subject)
    assert.are.equal("wf-1:2", m.x_idempotency_key)
    assert.are.equal("Hello\r\n.leading dot\r\n", m.body)
    assert.are.equal(1, got.emails_unique_keys)
    assert.are.equal(0, #none.emails)
    assert.are.equal(1, none.emails_rejected)
  end)

  it("takes terminations like switches, cancels either, and refuses on POST /_sim/refuse",
     function()
    local sim = T.simulate({})
    local function post(path, key)
      local status, body = T.http("POST", sim.url .. path, { body = '{"contract":"k-1"}',
        headers = { "Content-Type: application/json", "Idempotency-Key: " .. key } })
      local ok, obj = pcall(T.json.decode, body)
      return status, ok and obj or body
    end
    local s1, sw = post("/v1/switches", "wf-1:2")
    local s2, tm = post("/v1/terminations", "wf-1:3")
    local c1, cancelled = post("/v1/terminations/" .. tm.id .. "/cancel", "wf-1:9")
    local c2, again = post("/v1/terminations/" .. tm.id .. "/cancel", "wf-1:10")
    local wrong_kind = post("/v1/switches/" .. tm.id .. "/cancel", "wf-1:11")
    local refusing = T.http("POST", sim.url .. "/_sim/refuse",
                            { body = '{"kind": "termination", "status": 409}' })
    local refused = post("/v1/terminations", "wf-2:3")
    local replayed = post("/v1/terminations", "wf-1:3") -- a key seen before: its first answer
    local switch_ok = post("/v1/switches", "wf-2:2")
    local bad = T.http("POST", sim.url .. "/_sim/refuse", { body = '{"kind": "x", "status": 409}' })
    T.http("POST", sim.url .. "/_sim/refuse", { body = '{"kind": "termination", "status": 0}' })
    local accepted = post("/v1/terminations", "wf-3:3")
    local got_status, got = T.http("GET", sim.url .. "/v1/terminations/" .. tm.id)
    local effects = T.sim_effects(sim)
    T.kill(sim, "TERM")
    assert.are.same({ 201, 201 }, { s1, s2 })
    assert.matches("^sw%-", sw.id)
    assert.matches("^tm%-", tm.id)
    assert.are.same({ 200, 200 }, { c1, c2 })
    assert.are.same({ id = tm.id, status = "cancelled" }, cancelled)
    assert.are.same(cancelled, again)
    assert.are.equal(404, wrong_kind)
    assert.are.equal(200, refusing)
    assert.are.equal(409, refused)
    assert.are.equal(201, replayed)
    assert.are.equal(201, switch_ok)
    assert.are.equal(400, bad)
    assert.are.equal(201, accepted)
    assert.are.equal(200, got_status)
    assert.are.equal("cancelled", T.json.decode(got).status)
    assert.are.equal(4, #effects.effects)
    assert.are.same({ "switch", "termination", "switch", "termination" },
                    { effects.effects[1].kind, effects.effects[2].kind, effects.effects[3].kind,
                      effects.effects[4].kind })
    assert.is_false(effects.effects[1].cancelled)
    assert.is_true(effects.effects[2].cancelled)
  end)

  it("calls back termination.confirmed, and nothing for an effect cancelled before", function()
    local url = T.newdb("spec_sim_termination_callback")
    local srv = T.serve(url, { SPINE_SECRET_GRIDCO_WEBHOOK_SECRET = "cb-secret" })
    local hook = "http://127.0.0.1:" .. T.http_port(srv) .. "/v1/webhooks/gridco"
    local sim = T.simulate({ "--callback", hook, "--callback-secret", "cb-secret",
                             "--callback-after", "300" })
    local function post(path, key)
      local _, body = T.http("POST", sim.url .. path, { body = "{}",
        headers = { "Idempotency-Key: " .. key } })
      return T.json.decode(body)
    end
    post("/v1/terminations", "wf-t:1")
    local dropped = post("/v1/switches", "wf-s:1")
    T.http("POST", sim.url .. "/v1/switches/" .. dropped.id .. "/cancel")
    local effects = T.wait_until(function()
      local e = T.sim_effects(sim)
      return e.effects[1].callback.status ~= 0 and e
    end, 30, "the termination's callback")
    os.execute("sleep 0.5") -- the cancelled switch's callback time has passed too
    local later = T.sim_effects(sim)
    T.kill(sim, "TERM")
    T.kill(srv, "TERM")
    assert.are.equal(202, effects.effects[1].callback.status)
    assert.matches('"msg":"webhook verified","provider":"gridco"', T.log_of(srv), 1, true)
    assert.are.equal(0, later.effects[2].callback.attempts)
    assert.is_false(later.effects[2].confirmed)
  end)

  it("answers scripted requests in order without effect, a matching one only to its request",
     function()
    local sim = T.simulate({})
    local script = T.json.encode({ responses = {
      { status = 422, body = '{"error":"for c-9 only"}', match = "c-9" },
      { status = 503, ["repeat"] = 2 },
    } })
    local queued, left = T.http("POST", sim.url .. "/_sim/script", { body = script })
    local s1 = post_switch(sim, "k-1", '{"contract_id":"c-1"}')
    local s2, a2 = post_switch(sim, "k-9", '{"contract_id":"c-9"}')
    local s3 = post_switch(sim, "k-2", '{"contract_id":"c-2"}')
    local s4 = post_switch(sim, "k-3", '{"contract_id":"c-3"}')
    local bad = T.http("POST", sim.url .. "/_sim/script",
                       { body = '{"responses":[{"status":99}]}' })
    local effects = T.sim_effects(sim)
    T.kill(sim, "TERM")
    assert.are.equal(200, queued)
    assert.are.equal(3, T.json.decode(left).scripted_left)
    assert.are.same({ 503, 422, 503, 201 }, { s1, s2, s3, s4 })
    assert.are.same({ error = "for c-9 only" }, a2)
    assert.are.equal(400, bad)
    assert.are.equal(1, #effects.effects)
    assert.are.equal("k-3", effects.effects[1].idempotency_key)
    assert.are.equal(3, effects.scripted_served)
    assert.are.equal(0, effects.scripted_left)
  end)

  it("defers mail (451) while its SMTP sink is down, and accepts it again after", function()
    local sim = T.simulate({ "--smtp-port", "0" })
    local down = T.http("POST", sim.url .. "/_sim/smtp", { body = '{"down":true}' })
    local effects = T.sim_effects(sim)
    local up = T.http("POST", sim.url .. "/_sim/smtp", { body = '{"down":false}' })
    local bad = T.http("POST", sim.url .. "/_sim/smtp", { body = '{"down":"yes"}' })
    T.kill(sim, "TERM")
    assert.are.equal(200, down)
    assert.is_true(effects.smtp_down)
    assert.are.equal(200, up)
    assert.are.equal(400, bad)
  end)

  it("refuses a bad option value, naming the option", function()
    local code, _, err = T.sh(T.q(T.bin) .. " simulate --error-rate 2")
    assert.are.equal(2, code)
    assert.matches("--error-rate", err, 1, true)
    local code2, out = T.sh(T.q(T.bin) .. " simulate --help")
    assert.are.equal(0, code2)
    assert.matches("Idempotency-Key", out, 1, true)
  end)
end)
