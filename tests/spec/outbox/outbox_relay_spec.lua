-- The outbox relay of `spine serve`: signals to the workflows of a contract, webhooks (signed,
-- retried with backoff, dead letters an operator re-queues; plaintext http:// only where the
-- operator allows it), order per key, and cases started by manifests' on_events, exactly once.
-- Webhooks go to `spine simulate`'s event sink.
local T = require("spine_test")
local L = require("lifecycle_test")

-- The sink listens on plaintext http://127.0.0.1: allowed for the CLI and spine serve.
local ALLOW = { SPINE_OUTBOX_ALLOW_HTTP = "127.0.0.1" }

-- An empty manifests folder: the repository's own manifests must not start cases here.
local function manifests(files)
  local dir = os.tmpname() .. ".manifests"
  os.execute("mkdir -p " .. T.q(dir))
  for name, body in pairs(files or {}) do
    local f = assert(io.open(dir .. "/" .. name, "w"))
    f:write(body)
    f:close()
  end
  return dir
end

-- Servers and simulators a test started and has not stopped: killed after it, pass or fail.
local running = {}

local function started(h)
  running[#running + 1] = h
  return h
end

local function serve(url, env)
  env = env or {}
  env.SPINE_MANIFESTS = env.SPINE_MANIFESTS or manifests()
  env.SPINE_OUTBOX_BACKOFF_MS = env.SPINE_OUTBOX_BACKOFF_MS or "50"
  env.SPINE_OUTBOX_BACKOFF_MAX_MS = env.SPINE_OUTBOX_BACKOFF_MAX_MS or "200"
  env.SPINE_OUTBOX_ALLOW_HTTP = env.SPINE_OUTBOX_ALLOW_HTTP or ALLOW.SPINE_OUTBOX_ALLOW_HTTP
  return started(T.serve(url, env))
end

local function simulate(args)
  return started(T.simulate(args))
end

-- Every POST the sink received, in arrival order, bodies decoded.
local function received(sim)
  local status, body = T.http("GET", sim.url .. "/_sim/events")
  assert(status == 200, "GET /_sim/events answered " .. status)
  local list = T.json.decode(body).events
  for _, e in ipairs(list) do e.event = T.json.decode(e.body) end
  return list
end

local function accepted(sim)
  local out = {}
  for _, e in ipairs(received(sim)) do
    if e.status == 204 then out[#out + 1] = e end
  end
  return out
end

local function summary(url, name)
  local code, obj = T.spine_json(url, { "outbox" })
  assert(code == 0, "spine outbox failed")
  for _, s in ipairs(obj.subscribers) do
    if s.name == name then return s end
  end
end

-- Stops servers and simulators; none of them logged an error.
local function stop(...)
  for _, h in ipairs({ ... }) do
    T.kill(h, "TERM")
    h.stopped = true
    local line = T.log_of(h):match('[^\n]*"level":"error"[^\n]*')
    assert.is_nil(line, line)
  end
end

describe("the outbox relay", function()
  after_each(function()
    for _, h in ipairs(running) do
      if not h.stopped and T.alive(h) then T.kill(h, "KILL") end
    end
    running = {}
  end)

  it("signals an event to the waiting workflow of its contract, once", function()
    local url = T.newdb("spec_outbox_signal")
    local ids = L.contract(url, "sg")
    local srv = serve(url)
    local _, wf = T.spine_json(url, { "start", "tests/playbooks/event_waiter.lua", "--input",
                                      T.json.encode({ contract_id = ids.contract }) })
    T.wait_until(function()
      local _, w = T.spine_json(url, { "show", wf.id })
      return w and w.status == "waiting"
    end, 30, "the workflow to wait")
    L.ok(url, "RequestActivation", { contract_id = ids.contract })
    L.ok(url, "ConfirmActivation", { contract_id = ids.contract, activation_date = "2026-12-01" })
    local done = T.wait_until(function()
      local _, w = T.spine_json(url, { "show", wf.id })
      return w and w.status == "completed" and w
    end, 30, "the workflow to get its signal")
    assert.are.same({ activated = true, state = "active", version = 3,
                      activation_date = "2026-12-01" }, done.result)
    stop(srv)
    assert.are.equal("1", T.sql(url, "SELECT count(*) FROM spine.signals WHERE workflow_id = '" ..
                                     wf.id .. "' AND name = 'event.ContractActivated'"))
    -- every event of the database went to the signals subscriber and is delivered
    assert.are.equal("0", T.sql(url, "SELECT count(*) FROM lifecycle.outbox WHERE status <> " ..
                                     "'delivered'"))
    assert.are.equal(tonumber(T.sql(url, "SELECT count(*) FROM lifecycle.outbox")),
                     summary(url, "signals").delivered)
  end)

  it("POSTs each event as JSON with its id, signed with a timestamp, to a webhook subscriber",
     function()
    local url = T.newdb("spec_outbox_http")
    local sim = simulate({ "--events-secret", "s3cret" })
    local code, sub = T.spine_json(url, { "outbox", "subscribe", "crm", "--url",
                                          sim.url .. "/v1/events", "--events",
                                          "CustomerRegistered,ContractCreated",
                                          "--secret-env", "SPINE_OUTBOX_SECRET_CRM" }, ALLOW)
    assert.are.equal(0, code)
    assert.are.same({ "CustomerRegistered", "ContractCreated" }, sub.events)
    local srv = serve(url, { SPINE_OUTBOX_SECRET_CRM = "s3cret" })
    local ids = L.contract(url, "hp")
    local got = T.wait_until(function()
      local a = accepted(sim)
      return #a == 2 and a
    end, 30, "two deliveries")
    local cu, k = got[1], got[2]
    assert.are.equal("CustomerRegistered", cu.event.type)
    assert.are.same({ customer_id = ids.customer }, cu.event.payload)
    assert.are.equal(ids.customer, cu.event.ordering_key)
    assert.are.equal(ids.customer, cu.event.customer_id)
    assert.are.equal(("%d"):format(cu.event.event_id), cu.event_id)
    assert.is_string(cu.event.created_at)
    assert.are.equal("ContractCreated", k.event.type)
    assert.are.equal(ids.contract, k.event.ordering_key)
    assert.are.equal(ids.contract, k.event.payload.contract_id)
    for _, e in ipairs(got) do
      -- SPEC section 6: the HMAC of "<X-Spine-Timestamp>.<body>", the timestamp now
      assert.is_true(e.signature_ok)
      assert.is_true(math.abs(os.time() - tonumber(e.timestamp)) < 120,
                     "X-Spine-Timestamp is not now: " .. e.timestamp)
      assert.are.equal("sha256=" .. T.hmac("s3cret", e.timestamp .. "." .. e.body), e.signature)
      assert.are_not.equal("sha256=" .. T.hmac("s3cret", e.body), e.signature)
      assert.are.equal("1", e.attempt)
    end
    -- the other event types (MeterPointRegistered, the provider's none) were not sent
    assert.are.equal(2, #received(sim))
    T.wait_until(function() return summary(url, "crm").delivered == 2 end, 30, "delivered 2")
    stop(srv, sim)
  end)

  it("signs only with SPINE_OUTBOX_SECRET_* variables, never with another secret", function()
    local url = T.newdb("spec_outbox_oracle")
    local sim = simulate({})
    -- the CLI refuses a subscriber that names an inbound webhook's secret
    local code, out = T.spine_json(url, { "outbox", "subscribe", "crm", "--url",
                                          sim.url .. "/v1/events", "--secret-env",
                                          "SPINE_SECRET_GRIDCO_WEBHOOK_SECRET" }, ALLOW)
    assert.are.equal(1, code)
    assert.are.equal("secret_env", out.error.field)
    assert.matches("SPINE_OUTBOX_SECRET_", out.error.message, 1, true)
    -- a row written past the CLI: the relay signs nothing with it, and sends nothing
    T.sql(url, "INSERT INTO spine.outbox_subscribers (name, kind, url, secret_env, max_attempts)" ..
               " VALUES ('oracle', 'http', '" .. sim.url .. "/v1/events'," ..
               " 'SPINE_SECRET_GRIDCO_WEBHOOK_SECRET', 1)")
    local srv = serve(url, { SPINE_SECRET_GRIDCO_WEBHOOK_SECRET = "inbound-secret-123" })
    L.ok(url, "RegisterCustomer", { customer_id = "or-cu", name = "Ada", email = "a@example.org" })
    T.wait_until(function() return summary(url, "oracle").dead == 1 end, 30,
                 "the delivery to be refused")
    assert.matches("not an outbox secret", T.sql(url, "SELECT last_error FROM" ..
                   " spine.outbox_deliveries WHERE subscriber = 'oracle'"), 1, true)
    assert.are.equal(0, #received(sim))
    stop(srv, sim)
  end)

  it("refuses a plaintext http:// subscriber unless SPINE_OUTBOX_ALLOW_HTTP lists its host",
     function()
    local url = T.newdb("spec_outbox_plain")
    local args = { "outbox", "subscribe", "crm", "--url", "http://127.0.0.1:9/v1/events" }
    local code, out = T.spine_json(url, args)
    assert.are.equal(1, code)
    assert.are.equal("url", out.error.field)
    assert.matches("http://127.0.0.1:9/v1/events is plaintext http://, refused unless " ..
                   "SPINE_OUTBOX_ALLOW_HTTP lists 127.0.0.1", out.error.message, 1, true)
    -- another host, or the host on another port, is not it
    code = T.spine_json(url, args, { SPINE_OUTBOX_ALLOW_HTTP = "crm.internal, 127.0.0.1:10" })
    assert.are.equal(1, code)
    code, out = T.spine_json(url, args, { SPINE_OUTBOX_ALLOW_HTTP = "crm.internal,127.0.0.1:9" })
    assert.are.equal(0, code)
    assert.are.equal("http://127.0.0.1:9/v1/events", out.url)
    -- https:// needs nothing; any other scheme is refused whatever the variable says
    assert.are.equal(0, (T.spine_json(url, { "outbox", "subscribe", "crm2", "--url",
                                             "https://crm.example.org/events" })))
    for _, bad in ipairs({ "ftp://127.0.0.1/e", "file:///etc/passwd", "gopher://127.0.0.1:70/" }) do
      code, out = T.spine_json(url, { "outbox", "subscribe", "crm3", "--url", bad }, ALLOW)
      assert.are.equal(1, code, bad)
      assert.matches("is not an http:// or https:// URL", out.error.message, 1, true)
    end
    -- a variable that lists something else than hosts is an error, not an empty list
    code, out = T.spine_json(url, args, { SPINE_OUTBOX_ALLOW_HTTP = "http://127.0.0.1/" })
    assert.are.equal(1, code)
    assert.matches("is not a host name or host:port", out.error.message, 1, true)
  end)

  it("makes a delivery spine serve does not allow dead at once, naming why, and sends nothing",
     function()
    local url = T.newdb("spec_outbox_plain_dead")
    local sim = simulate({})
    assert.are.equal(0, (T.spine(url, { "db", "migrate" })))
    -- rows written past the CLI: a plaintext URL, and a scheme the relay never speaks
    T.sql(url, "INSERT INTO spine.outbox_subscribers (name, kind, url) VALUES" ..
               " ('plain', 'http', '" .. sim.url .. "/v1/events')," ..
               " ('gopher', 'http', 'gopher://127.0.0.1:" .. sim.port .. "/')")
    local srv = serve(url, { SPINE_OUTBOX_ALLOW_HTTP = "" })
    L.ok(url, "RegisterCustomer", { customer_id = "pl-cu", name = "Ada", email = "a@example.org" })
    T.wait_until(function()
      return summary(url, "plain").dead == 1 and summary(url, "gopher").dead == 1
    end, 30, "both deliveries to be refused")
    local _, dead = T.spine_json(url, { "outbox", "--dead" })
    local by = {}
    for _, d in ipairs(dead.dead) do by[d.subscriber] = d end
    assert.are.equal(1, by.plain.attempts) -- dead at once, not after its 8 attempts
    assert.matches("subscriber plain not sent: " .. sim.url .. "/v1/events is plaintext " ..
                   "http://, refused unless SPINE_OUTBOX_ALLOW_HTTP lists 127.0.0.1",
                   by.plain.last_error, 1, true)
    assert.matches("subscriber gopher not sent: ", by.gopher.last_error, 1, true)
    assert.matches("is not an http:// or https:// URL", by.gopher.last_error, 1, true)
    assert.are.equal(0, #received(sim))
    assert.matches('"msg":"dead letter: delivery refused', T.log_of(srv), 1, true)
    stop(srv)
    -- once spine serve allows the host, the re-queued delivery goes
    srv = serve(url)
    assert.are.equal(0, (T.spine_json(url, { "outbox", "retry", "--all-dead", "--subscriber",
                                             "plain" })))
    T.wait_until(function() return #accepted(sim) == 1 end, 30, "the re-queued delivery")
    stop(srv, sim)
  end)

  it("retries a failing webhook with backoff until it answers", function()
    local url = T.newdb("spec_outbox_retry")
    local sim = simulate({ "--outage-after", "0", "--outage-for", "3" })
    assert.are.equal(0, (T.spine_json(url, { "outbox", "subscribe", "crm", "--url",
                                             sim.url .. "/v1/events" }, ALLOW)))
    local srv = serve(url)
    L.ok(url, "RegisterProvider", { provider = "acme_energy" })
    L.ok(url, "RegisterCustomer", { customer_id = "rt-cu", name = "Ada", email = "a@example.org" })
    T.wait_until(function() return #accepted(sim) == 1 end, 30, "the delivery to succeed")
    local all = received(sim)
    assert.are.same({ 503, 503, 503, 204 }, { all[1].status, all[2].status, all[3].status,
                                              all[4].status })
    assert.are.same({ "1", "2", "3", "4" }, { all[1].attempt, all[2].attempt, all[3].attempt,
                                              all[4].attempt })
    local s = T.wait_until(function()
      local x = summary(url, "crm")
      return x.delivered == 1 and x
    end, 30, "the outcome to be recorded")
    assert.are.equal(0, s.dead)
    assert.are.equal("4", T.sql(url, "SELECT attempts FROM spine.outbox_deliveries" ..
                                     " WHERE subscriber = 'crm'"))
    -- the waits between attempts were real, and /metrics counts the retries
    local port = T.http_port(srv)
    local _, metrics = T.http("GET", "http://127.0.0.1:" .. port .. "/metrics")
    assert.matches('spine_outbox_retries_total{kind="http"} 3', metrics, 1, true)
    assert.matches('spine_outbox_delivered_total{kind="http"} 1', metrics, 1, true)
    assert.matches("spine_outbox_lag_seconds", metrics, 1, true)
    stop(srv, sim)
  end)

  it("makes a delivery dead after its attempts, goes on with the key, and re-queues it", function()
    local url = T.newdb("spec_outbox_dead")
    local sim = simulate({ "--outage-after", "0", "--outage-for", "2" })
    assert.are.equal(0, (T.spine_json(url, { "outbox", "subscribe", "crm", "--url",
                                             sim.url .. "/v1/events", "--max-attempts", "2" }, ALLOW)))
    local srv = serve(url)
    L.ok(url, "RegisterProvider", { provider = "acme_energy" })
    L.ok(url, "RegisterCustomer", { customer_id = "dd-cu", name = "Ada", email = "a@example.org" })
    local first = T.sql(url, "SELECT max(event_id) FROM lifecycle.outbox")
    L.ok(url, "RegisterMeterPoint", { customer_id = "dd-cu", meter_id = "dd-m",
                                      commodity = "gas", meter_point_id = "dd-mp" })
    -- the second event (same key) is not held back by the dead first one
    T.wait_until(function() return #accepted(sim) == 1 end, 30, "the second event")
    assert.are.equal("MeterPointRegistered", accepted(sim)[1].event.type)
    local code, dead = T.spine_json(url, { "outbox", "--dead" })
    assert.are.equal(0, code)
    assert.are.equal(1, #dead.dead)
    local d = dead.dead[1]
    assert.are.equal(tonumber(first), d.event_id)
    assert.are.equal("crm", d.subscriber)
    assert.are.equal("CustomerRegistered", d.type)
    assert.are.equal(2, d.attempts)
    assert.matches("HTTP 503", d.last_error)
    local _, text = T.spine(url, { "outbox", "--dead" })
    assert.matches("event " .. first .. " %(CustomerRegistered, key dd%-cu", text)
    assert.matches("to crm: dead after 2 attempts\n  last error: [^\n]*HTTP 503", text)
    local _, rows = T.spine(url, { "outbox" })
    assert.matches("\ncrm +http +%d+ +%d+ +1  " .. sim.url:gsub("%p", "%%%0") .. "/v1/events", rows)
    assert.are.equal("dead", T.sql(url, "SELECT status FROM lifecycle.outbox WHERE event_id = " ..
                                        first))
    local _, requeued = T.spine_json(url, { "outbox", "retry", first })
    assert.are.same({ requeued = 1 }, requeued)
    T.wait_until(function() return #accepted(sim) == 2 end, 30, "the re-queued event")
    assert.are.equal(tonumber(first), accepted(sim)[2].event.event_id)
    T.wait_until(function() return summary(url, "crm").dead == 0 end, 30, "no dead letter")
    T.wait_until(function()
      return T.sql(url, "SELECT status FROM lifecycle.outbox WHERE event_id = " .. first) ==
             "delivered"
    end, 30, "the event to be delivered")
    code = T.spine_json(url, { "outbox", "retry", first })
    assert.are.equal(1, code) -- nothing dead any more
    stop(srv, sim)
  end)

  it("holds a paused subscriber's deliveries until it is resumed", function()
    local url = T.newdb("spec_outbox_pause")
    local sim = simulate()
    assert.are.equal(0, (T.spine_json(url, { "outbox", "subscribe", "crm", "--url",
                                             sim.url .. "/v1/events" }, ALLOW)))
    local _, paused = T.spine_json(url, { "outbox", "pause", "crm" })
    assert.are.same({ name = "crm", status = "paused" }, paused)
    local srv = serve(url)
    L.ok(url, "RegisterProvider", { provider = "acme_energy" })
    L.ok(url, "RegisterCustomer", { customer_id = "pz-cu", name = "Ada", email = "a@example.org" })
    -- the relay has seen the event: its signals delivery is made, the paused one is not
    T.wait_until(function() return summary(url, "signals").delivered == 1 end, 30, "signals")
    local crm = summary(url, "crm")
    assert.are.same({ false, 1, 0 }, { crm.enabled, crm.pending, crm.delivered })
    assert.matches("\ncrm +http +1 +0 +0  [^\n]*%[paused%]", select(2, T.spine(url, { "outbox" })))
    assert.are.equal(0, #received(sim))
    assert.are.equal(0, (T.spine_json(url, { "outbox", "resume", "crm" })))
    T.wait_until(function() return #accepted(sim) == 1 end, 30, "the held delivery")
    assert.are.equal("CustomerRegistered", accepted(sim)[1].event.type)
    stop(srv, sim)
  end)

  it("delivers many events of several keys in order per key, through failures, with two workers",
     function()
    local url = T.newdb("spec_outbox_order")
    local sim = simulate({ "--error-rate", "0.3", "--seed", "7" })
    assert.are.equal(0, (T.spine_json(url, { "outbox", "subscribe", "crm", "--url",
                                             sim.url .. "/v1/events" }, ALLOW)))
    L.ok(url, "RegisterProvider", { provider = "acme_energy" })
    local srv, srv2 = serve(url), serve(url)
    for i = 1, 4 do
      local code = T.spine_json(url, { "start", "tests/playbooks/credits.lua", "--input",
        T.json.encode({ customer_id = "or-cu" .. i, contract_id = "or-k" .. i, n = 15 }) })
      assert.are.equal(0, code)
    end
    local total = 4 * 17
    T.wait_until(function()
      return tonumber(T.sql(url, "SELECT count(*) FROM spine.outbox_deliveries" ..
                                 " WHERE subscriber = 'crm' AND status = 'delivered'")) == total
    end, 120, "every event to be delivered")
    local last, seen, firsts = {}, {}, 0
    for _, e in ipairs(accepted(sim)) do
      local id, key = e.event.event_id, e.event.ordering_key
      if not seen[id] then
        seen[id] = true
        firsts = firsts + 1
        assert.is_true((last[key] or 0) < id, "event " .. id .. " of " .. key .. " came after " ..
                                              tostring(last[key]))
        last[key] = id
      end
    end
    assert.are.equal(total, firsts)
    assert.is_true(#received(sim) > total, "the sink refused nothing: no retry was tested")
    stop(srv, srv2, sim)
  end)

  it("starts the processes of manifests' on_events once per event, also when redelivered",
     function()
    local url = T.newdb("spec_outbox_starts")
    local dir = manifests({ ["welcome.json"] = [[{
      "process": "welcome",
      "input": { "customer_id": "string", "event": "table" },
      "subject": "customer_id",
      "variants": [ { "name": "only", "playbook": "tests/playbooks/welcome.lua", "weight": 100 } ],
      "on_events": [ "CustomerRegistered" ]
    }]] })
    local env = { SPINE_MANIFESTS = dir }
    assert.are.equal(0, (T.spine_json(url, { "manifests", "reload" }, env)))
    local srv = serve(url, env)
    L.ok(url, "RegisterProvider", { provider = "acme_energy" })
    for i = 1, 3 do
      L.ok(url, "RegisterCustomer", { customer_id = "st-" .. i, name = "Ada",
                                      email = "a" .. i .. "@example.org" })
    end
    L.ok(url, "RegisterMeterPoint", { customer_id = "st-1", meter_id = "st-m",
                                      commodity = "gas", meter_point_id = "st-mp" })
    local function welcomed()
      return tonumber(T.sql(url, "SELECT count(*) FROM spine.workflows WHERE process = " ..
                                 "'welcome' AND status = 'completed'"))
    end
    T.wait_until(function() return welcomed() == 3 end, 60, "three welcome cases")
    local _, list = T.spine_json(url, { "list", "--process", "welcome" })
    local got = {}
    for _, w in ipairs(list.workflows) do
      assert.are.equal("only", w.variant)
      assert.are.equal("CustomerRegistered", w.result.event_type)
      got[#got + 1] = w.result.customer_id
    end
    table.sort(got)
    assert.are.same({ "st-1", "st-2", "st-3" }, got)
    -- only CustomerRegistered events went to `starts`
    assert.are.equal("3", T.sql(url, "SELECT count(*) FROM spine.outbox_deliveries" ..
                                     " WHERE subscriber = 'starts'"))
    -- deliver them all again, as after a crash between the start and its record
    T.sql(url, "WITH u AS (UPDATE spine.outbox_deliveries SET status = 'pending'" ..
               " WHERE subscriber = 'starts' RETURNING 1)" ..
               " SELECT count(*), pg_notify('spine_outbox', '') FROM u")
    T.wait_until(function()
      return T.sql(url, "SELECT count(*) FROM spine.outbox_deliveries WHERE subscriber =" ..
                        " 'starts' AND status = 'delivered' AND attempts = 2") == "3"
    end, 60, "the redeliveries")
    assert.are.equal(3, welcomed())
    assert.are.equal("3", T.sql(url, "SELECT count(*) FROM spine.workflows" ..
                                     " WHERE process = 'welcome'"))
    stop(srv)
  end)
end)
