-- The HTTP server of `spine serve`: /healthz (degraded when the loop stalled), /metrics and the
-- webhook route's refusals, on a running server with a real database.
local T = require("spine_test")

local SECRET = "whsec-test-7c1e"

local function start(name)
  local url = T.newdb(name)
  local srv = T.serve(url, { SPINE_SECRET_GRIDCO_WEBHOOK_SECRET = SECRET })
  local base = "http://127.0.0.1:" .. T.http_port(srv)
  return url, srv, base
end

local metric = T.metric

-- `headers`: a list of "Name: value", or nil for none.
local function post_webhook(base, provider, body, headers)
  return T.http("POST", base .. "/v1/webhooks/" .. provider, { body = body, headers = headers })
end

-- Signed as SPEC §6 says: X-Spine-Timestamp and the HMAC of "<timestamp>.<body>".
local function signed(body, key, ts)
  return T.webhook_headers(key or SECRET, body, ts)
end

describe("spine serve over HTTP", function()
  it("answers /healthz with ok and its worker id", function()
    local _, srv, base = start("spec_http_healthz")
    local status, body = T.http("GET", base .. "/healthz")
    T.kill(srv, "TERM")
    assert.are.equal(200, status)
    local h = T.json.decode(body)
    assert.are.equal("ok", h.status)
    assert.is_true(h.worker >= 1)
  end)

  it("counts steps, live workflows and store batches in /metrics", function()
    local url, srv, base = start("spec_http_metrics")
    local code, started = T.spine_json(url, { "start", "tests/playbooks/waiter.lua" })
    assert.are.equal(0, code)
    T.wait_until(function()
      local _, wf = T.spine_json(url, { "show", started.id })
      return wf and wf.status == "waiting"
    end, 30, "the workflow to wait")
    local status, waiting, headers = T.http("GET", base .. "/metrics")
    assert.are.equal(0, (T.spine_json(url, { "signal", started.id, "go", "--data", '{"value":1}' })))
    T.wait_until(function()
      local _, wf = T.spine_json(url, { "show", started.id })
      return wf and wf.status == "completed"
    end, 30, "the workflow to complete")
    local _, done = T.http("GET", base .. "/metrics")
    T.kill(srv, "TERM")
    assert.are.equal(200, status)
    assert.matches("^text/plain", headers["content-type"])
    assert.matches("# TYPE spine_steps_total counter", waiting, 1, true)
    assert.are.equal(1, metric(waiting, "spine_workflows_live"))
    assert.are.equal(0, metric(done, "spine_workflows_live"))
    assert.is_true(metric(done, "spine_steps_total") > metric(waiting, "spine_steps_total"))
    assert.is_true(metric(done, "spine_store_batches_total") >= 1)
    -- requests are counted once answered: the first /metrics shows in the second
    assert.are.equal(0, metric(waiting, 'spine_http_requests_total{code="2xx"}'))
    assert.are.equal(1, metric(done, 'spine_http_requests_total{code="2xx"}'))
  end)

  it("answers 404 to a webhook for a provider it does not know", function()
    local _, srv, base = start("spec_http_webhook_404")
    local body = '{"id":"sw-1"}'
    local status = post_webhook(base, "nobody", body, signed(body))
    local bad_name = post_webhook(base, "ACME%2F..", body, signed(body))
    T.kill(srv, "TERM")
    assert.are.equal(404, status)
    assert.are.equal(404, bad_name)
  end)

  it("answers 401 to a webhook with a missing, wrong, body-only or stale signature", function()
    local _, srv, base = start("spec_http_webhook_401")
    local body = '{"id":"sw-1"}'
    local missing, answer = post_webhook(base, "gridco", body, nil)
    local wrong_key = post_webhook(base, "gridco", body, signed(body, "not-it"))
    local other_body = post_webhook(base, "gridco", body, signed(body .. " "))
    local body_only = post_webhook(base, "gridco", body,
                                   { "X-Spine-Signature: sha256=" .. T.hmac(SECRET, body) })
    local stale = post_webhook(base, "gridco", body, signed(body, SECRET, os.time() - 600))
    local _, text = T.http("GET", base .. "/metrics")
    T.kill(srv, "TERM")
    assert.are.equal(401, missing)
    assert.are.equal("unauthorized", T.json.decode(answer).error.kind)
    assert.are.equal(401, wrong_key)
    assert.are.equal(401, other_body)
    assert.are.equal(401, body_only)
    assert.are.equal(401, stale)
    assert.are.equal(5, metric(text, 'spine_webhooks_total{outcome="bad_signature"}'))
    assert.is_nil(T.log_of(srv):find(SECRET, 1, true))
  end)

  it("answers 400 to a signed webhook whose body is not JSON", function()
    local _, srv, base = start("spec_http_webhook_400")
    local body = '{"id": "sw-1",'
    local status, answer = post_webhook(base, "gridco", body, signed(body))
    T.kill(srv, "TERM")
    assert.are.equal(400, status)
    assert.matches("not JSON", T.json.decode(answer).error.message)
  end)

  it("hands a signed JSON webhook to the provider's adapter and answers 202 with what it signalled",
     function()
    local _, srv, base = start("spec_http_webhook_ok")
    -- GridCo's adapter addresses the workflow named by the key; none runs: nothing is signalled
    local body = '{"event":"switch.confirmed","id":"sw-1","status":"confirmed",' ..
                 '"idempotency_key":"wf-gone:3"}'
    local status, answer = post_webhook(base, "gridco", body, signed(body))
    local _, text = T.http("GET", base .. "/metrics")
    T.kill(srv, "TERM")
    assert.are.equal(202, status)
    assert.are.same({ signalled = {}, unmatched = 1 }, T.json.decode(answer))
    assert.are.equal(1, metric(text, 'spine_webhooks_total{outcome="accepted"}'))
    assert.matches('"msg":"webhook verified","provider":"gridco"', T.log_of(srv), 1, true)
  end)

  it("exports the event loop's lag, last and largest of the last 10 s, as gauges in /metrics",
     function()
    local _, srv, base = start("spec_http_loop_lag")
    local status, text = T.http("GET", base .. "/metrics")
    local _, health = T.http("GET", base .. "/healthz")
    T.kill(srv, "TERM")
    assert.are.equal(200, status)
    assert.matches("# TYPE spine_loop_lag_seconds gauge", text, 1, true)
    assert.matches("# TYPE spine_loop_lag_max_seconds gauge", text, 1, true)
    assert.is_true(metric(text, "spine_loop_lag_seconds") >= 0)
    assert.is_true(metric(text, "spine_loop_lag_max_seconds") >= 0)
    local h = T.json.decode(health)
    assert.is_number(h.loop_lag_seconds)
    assert.is_number(h.loop_lag_max_seconds)
  end)

  it("answers /healthz 503 degraded after one resume held the loop for over a second, then 200",
     function()
    local url = T.newdb("spec_http_loop_stall")
    -- bad_loop spins until its budget runs out, in one resume: 250M instructions hold the
    -- loop for several seconds (about 5 s here; the default 50M takes about one)
    local srv = T.serve(url, { SPINE_INSTRUCTIONS = "250000000" })
    local base = "http://127.0.0.1:" .. T.http_port(srv)
    local before = T.http("GET", base .. "/healthz")
    local code, started = T.spine_json(url, { "start", "tests/playbooks/bad_loop.lua" })
    assert.are.equal(0, code)
    -- a request sent during the stall is answered after it, when the lag is known: the
    -- degraded answer comes whether the poll falls in the stall or after it
    local degraded, text
    T.wait_until(function()
      local _, m = T.http("GET", base .. "/metrics")
      local status, body = T.http("GET", base .. "/healthz")
      if status ~= 503 or (metric(m, "spine_loop_lag_max_seconds") or 0) <= 1 then return false end
      degraded, text = T.json.decode(body), m
      return true
    end, 120, "/healthz to answer degraded")
    local wf = T.wait_until(function()
      local _, w = T.spine_json(url, { "show", started.id })
      return w and w.status ~= "running" and w.status ~= "pending" and w
    end, 30, "bad_loop to end")
    local ok = T.wait_until(function()
      local status, body = T.http("GET", base .. "/healthz")
      return status == 200 and T.json.decode(body)
    end, 60, "/healthz to answer ok again")
    T.kill(srv, "TERM")
    assert.are.equal(200, before)
    assert.are.equal("degraded", degraded.status)
    assert.is_true(degraded.loop_lag_max_seconds > 1, "max lag " .. degraded.loop_lag_max_seconds)
    assert.is_true(degraded.worker >= 1)
    assert.are.equal("failed", wf.status)
    assert.are.equal("instruction_budget", wf.error.code)
    assert.is_true(metric(text, "spine_loop_lag_max_seconds") > 1)
    assert.are.equal("ok", ok.status)
    assert.is_true(ok.loop_lag_max_seconds <= 1)
  end)

  it("refuses to start on an address already in use, naming it", function()
    local url, srv, base = start("spec_http_addr_in_use")
    local port = base:match(":(%d+)$")
    local code, _, err = T.spine(url, { "serve", "--listen", "127.0.0.1:" .. port })
    T.kill(srv, "TERM")
    assert.are.equal(1, code)
    assert.matches("127.0.0.1:" .. port, err, 1, true)
  end)
end)
