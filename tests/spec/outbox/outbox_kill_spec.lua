-- The outbox relay across `kill -9` and cut connections: workflows applying intents while their
-- events are being POSTed to a slow webhook; the server dies (or loses its database); after a
-- restart (or a reconnect) every intent is applied once, every event reaches the webhook at
-- least once, and per key the first deliveries are in order.
local T = require("spine_test")
local L = require("lifecycle_test")

local WORKFLOWS, CREDITS = 30, 10
-- The sink listens on plaintext http://127.0.0.1: allowed for the CLI and every spine serve.
local ALLOW = { SPINE_OUTBOX_ALLOW_HTTP = "127.0.0.1" }
local EVENTS = WORKFLOWS * (2 + CREDITS) -- RegisterCustomer, CreateContract, the credits

local function count(url, sql)
  return tonumber(T.sql(url, sql))
end

-- Stores the cases in one statement (from the version one `spine start` stored); with `gate`,
-- each holds its last credit until the signal of that name.
local function start_credits(url, gate)
  local code, first = T.spine_json(url, { "start", "tests/playbooks/credits.lua", "--input",
    T.json.encode({ customer_id = "kc-1", contract_id = "kk-1", n = CREDITS, pause = "400ms",
                    gate = gate }) })
  assert(code == 0, "spine start failed")
  T.sql(url, ("INSERT INTO spine.workflows (id, process, playbook, version, status, input," ..
    " trace_id, wake_at) SELECT 'kill-' || g, w.process, w.playbook, w.version, 'pending'," ..
    " jsonb_strip_nulls(jsonb_build_object('customer_id', 'kc-' || g, 'contract_id', 'kk-' || g," ..
    " 'n', %d, 'pause', '400ms', 'gate', %s)), md5(g::text), now()" ..
    " FROM generate_series(2, %d) g, spine.workflows w WHERE w.id = '%s'"):format(
    CREDITS, gate and ("'" .. gate .. "'") or "NULL::text", WORKFLOWS, first.id))
  T.sql(url, "NOTIFY spine, 'w'")
end

local function received(sim)
  local status, body = T.http("GET", sim.url .. "/_sim/events")
  assert(status == 200, "GET /_sim/events answered " .. status)
  local out = {}
  for _, e in ipairs(T.json.decode(body).events) do
    if e.status == 204 then
      e.event = T.json.decode(e.body)
      out[#out + 1] = e
    end
  end
  return out
end

-- Checks the POSTs the sink accepted: per key, the first of each event in event order; every
-- event of the database among them. Returns how many were accepted.
local function check_deliveries(url, sim)
  local got = received(sim)
  local seen, last, ids = {}, {}, {}
  for _, e in ipairs(got) do
    local id, key = e.event.event_id, e.event.ordering_key
    if not seen[id] then
      seen[id] = true
      ids[#ids + 1] = ("%d"):format(id)
      assert.is_true((last[key] or 0) < id, ("event %d of %s came after %s"):format(id, key,
                                                                         tostring(last[key])))
      last[key] = id
    end
  end
  assert.are.equal(count(url, "SELECT count(*) FROM lifecycle.outbox"), #ids)
  assert.are.equal(0, count(url, "SELECT count(*) FROM lifecycle.outbox WHERE event_id" ..
                                 " <> ALL ('{" .. table.concat(ids, ",") .. "}'::int8[])"))
  return #got
end

local running = {}

describe("the outbox relay across kill -9", function()
  after_each(function() -- pass or fail, nothing keeps running
    for _, h in ipairs(running) do
      if T.alive(h) then T.kill(h, "KILL") end
    end
    running = {}
  end)

  it("applies every intent once and delivers every event at least once, in order per key",
     function()
    local url = T.newdb("spec_outbox_kill")
    local sim = T.simulate({ "--latency", "500" })
    running[#running + 1] = sim
    L.ok(url, "RegisterProvider", { provider = "acme_energy" })
    assert.are.equal(0, (T.spine_json(url, { "outbox", "subscribe", "crm", "--url",
                                             sim.url .. "/v1/events" }, ALLOW)))
    local manifests = os.tmpname() .. ".manifests"
    os.execute("mkdir -p " .. T.q(manifests))
    local env = { SPINE_MANIFESTS = manifests, SPINE_OUTBOX_MAX_IN_FLIGHT = "8",
                  SPINE_OUTBOX_BACKOFF_MS = "50", SPINE_OUTBOX_BACKOFF_MAX_MS = "200",
                  SPINE_OUTBOX_ALLOW_HTTP = ALLOW.SPINE_OUTBOX_ALLOW_HTTP }
    local srv = T.serve(url, env)
    running[#running + 1] = srv
    -- the last credit of each case waits for "go", sent after the kill: intents are surely
    -- still to come when it falls
    start_credits(url, "go")
    -- each POST takes half a second at the sink; once some went through, the sink holds the
    -- next ones for good, so that POSTs are surely under way at the kill (on a busy machine the
    -- half-second ones could all end between a look and the kill)
    T.wait_until(function()
      return count(url, "SELECT count(*) FROM lifecycle.credits") >= 60 and
             #received(sim) >= 16
    end, 120, "intents and deliveries under way")
    assert.are.equal(200, (T.http("POST", sim.url .. "/_sim/latency",
                                  { body = '{"ms": 600000}' })))
    -- a claim made from now on is a POST sent after the switch: held at the sink. Its lease
    -- (the same for every claim of the subscriber) ends after every lease taken before; a
    -- claim of before (a half-second POST) could end between a look and the kill
    local before = T.sql(url, "SELECT coalesce(max(claimed_until), '-infinity')" ..
                              " FROM spine.outbox_deliveries")
    T.wait_until(function()
      return count(url, "SELECT count(*) FROM spine.outbox_deliveries" ..
                        " WHERE status = 'pending' AND claimed_by IS NOT NULL" ..
                        " AND claimed_until > '" .. before .. "'") > 0
    end, 120, "a POST held at the sink")
    T.kill(srv, "KILL")
    assert.are.equal(200, (T.http("POST", sim.url .. "/_sim/latency", { body = '{"ms": 50}' })))
    local credits_at_kill = count(url, "SELECT count(*) FROM lifecycle.credits")
    local delivered_at_kill = #received(sim)
    assert.is_true(credits_at_kill < WORKFLOWS * CREDITS, "the kill came after every intent")
    assert.is_true(delivered_at_kill < EVENTS, "the kill came after every delivery")
    -- POSTs were in flight: claimed by the dead worker, not yet recorded
    local claimed = count(url, "SELECT count(*) FROM spine.outbox_deliveries" ..
                               " WHERE status = 'pending' AND claimed_by IS NOT NULL")
    assert.is_true(claimed > 0, "no POST was under way at the kill")

    local srv2 = T.serve(url, { SPINE_MANIFESTS = manifests, SPINE_OUTBOX_BACKOFF_MS = "50",
                                SPINE_OUTBOX_BACKOFF_MAX_MS = "200",
                                SPINE_OUTBOX_ALLOW_HTTP = ALLOW.SPINE_OUTBOX_ALLOW_HTTP })
    running[#running + 1] = srv2
    assert.are.equal(WORKFLOWS, count(url, "SELECT count(spine.signal_workflow(id, 'go', '{}'))" ..
                                           " FROM spine.workflows"))
    T.wait_until(function()
      return count(url, "SELECT count(*) FROM spine.workflows WHERE status = 'completed'") ==
             WORKFLOWS
    end, 300, "every workflow to complete")
    T.wait_until(function()
      return count(url, "SELECT count(*) FROM lifecycle.outbox WHERE status = 'delivered'") ==
             EVENTS
    end, 300, "every event to be delivered to every subscriber")
    T.kill(srv2, "TERM")

    -- every intent applied once
    assert.are.equal(WORKFLOWS * CREDITS, count(url, "SELECT count(*) FROM lifecycle.credits"))
    assert.are.equal(EVENTS, count(url, "SELECT count(*) FROM lifecycle.outbox"))
    assert.are.equal(0, count(url, "SELECT count(*) FROM (SELECT workflow_id FROM" ..
      " lifecycle.history GROUP BY workflow_id HAVING count(*) <> " .. (2 + CREDITS) .. ") x"))
    assert.are.equal(WORKFLOWS, count(url, "SELECT count(DISTINCT workflow_id)" ..
                                           " FROM lifecycle.history"))
    assert.are.equal(0, count(url, "SELECT count(*) FROM spine.outbox_deliveries" ..
                                   " WHERE status <> 'delivered'"))
    -- every event reached the webhook, the first time of each in order per key
    local accepted = check_deliveries(url, sim)
    print(("\n  kill -9 at %d/%d credits, %d/%d events POSTed, %d claims in flight; " ..
           "%d POSTs accepted in all"):format(credits_at_kill, WORKFLOWS * CREDITS,
                                              delivered_at_kill, EVENTS, claimed, accepted))
    T.kill(sim, "TERM")
  end)

  it("reconnects after its database connections are cut and still delivers every event",
     function()
    local url = T.newdb("spec_outbox_cut")
    local sim = T.simulate({ "--latency", "300" })
    running[#running + 1] = sim
    L.ok(url, "RegisterProvider", { provider = "acme_energy" })
    assert.are.equal(0, (T.spine_json(url, { "outbox", "subscribe", "crm", "--url",
                                             sim.url .. "/v1/events" }, ALLOW)))
    local manifests = os.tmpname() .. ".manifests"
    os.execute("mkdir -p " .. T.q(manifests))
    local srv = T.serve(url, { SPINE_MANIFESTS = manifests, SPINE_OUTBOX_MAX_IN_FLIGHT = "8",
                               SPINE_OUTBOX_BACKOFF_MS = "50",
                               SPINE_OUTBOX_BACKOFF_MAX_MS = "200",
                               SPINE_OUTBOX_ALLOW_HTTP = ALLOW.SPINE_OUTBOX_ALLOW_HTTP })
    running[#running + 1] = srv
    start_credits(url)
    T.wait_until(function()
      return #received(sim) >= 16 and
             count(url, "SELECT count(*) FROM spine.outbox_deliveries" ..
                        " WHERE status = 'pending' AND claimed_by IS NOT NULL") > 0
    end, 120, "deliveries under way")
    assert.is_true(count(url, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity" ..
      " WHERE datname = current_database() AND pid <> pg_backend_pid()") >= 2,
      "expected the worker's connections to be cut")
    T.wait_until(function()
      return count(url, "SELECT count(*) FROM spine.workflows WHERE status = 'completed'") ==
             WORKFLOWS and
             count(url, "SELECT count(*) FROM lifecycle.outbox WHERE status = 'delivered'") ==
             EVENTS
    end, 300, "every workflow to complete and every event to be delivered")
    assert.is_true(T.alive(srv), "the worker exited instead of reconnecting")
    T.kill(srv, "TERM")
    assert.matches('"reconnected"', T.log_of(srv))
    assert.are.equal(WORKFLOWS * CREDITS, count(url, "SELECT count(*) FROM lifecycle.credits"))
    check_deliveries(url, sim)
    T.kill(sim, "TERM")
  end)
end)
