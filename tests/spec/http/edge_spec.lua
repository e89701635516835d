-- The HTTP edge of `spine serve`: what every answer says about itself, no cleartext HTTP/2
-- (libh2o 2.2.5 has no defence against Rapid Reset, CVE-2023-44487), half-sent requests closed
-- at the request timeout and at stop, and the cap on connections.
local T = require("spine_test")

local function start(name, env)
  local url = T.newdb(name)
  local srv = T.serve(url, env)
  return srv, "http://127.0.0.1:" .. T.http_port(srv), T.http_port(srv)
end

-- A client (bash's /dev/tcp) that connects to `port`, sends `text` (half a request) and reads
-- until the server closes the connection: its output says "sent", then "closed".
local function half(port, text)
  local out = T.tmpfile()
  local script = 'exec 3<>/dev/tcp/127.0.0.1/' .. port .. ' || exit 1; printf "%s" "$1" >&3; ' ..
                 'echo sent; while IFS= read -r -u 3 _; do :; done; echo closed'
  local p = io.popen("setsid bash -c " .. T.q(script) .. " half " .. T.q(text) .. " >" .. out ..
                     " 2>&1 </dev/null & echo $!")
  local c = { pid = T.track(tonumber(p:read("l"))), out = out }
  p:close()
  T.wait_until(function() return T.read(out):find("sent", 1, true) end, 30, "the client to send")
  return c
end

local function closed(c)
  return T.read(c.out):find("closed", 1, true) ~= nil
end

local function hang_up(c)
  T.kill(c)
  os.remove(c.out)
end

local SECRET = "whsec-edge-2b7d"

-- Posts `n` signed GridCo webhooks, each a new delivery (`first`, `first` + 1, ...); returns
-- their statuses, and the last one's answer and headers.
local function webhooks(base, n, first)
  local statuses, answer, headers = {}, nil, nil
  for i = first, first + n - 1 do
    local body = ('{"event":"switch.confirmed","id":"sw-%d","status":"confirmed",' ..
                  '"idempotency_key":"wf-gone:%d"}'):format(i, i)
    statuses[#statuses + 1], answer, headers = T.http("POST", base .. "/v1/webhooks/gridco",
      { body = body, headers = T.webhook_headers(SECRET, body) })
  end
  return statuses, answer, headers
end

local metric = T.metric

local HALF_HEADERS = "POST /v1/webhooks/acme HTTP/1.1\r\nHost: x\r\nContent-Le"
local HALF_BODY = "POST /v1/webhooks/acme HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"a\":"

describe("spine serve's HTTP edge", function()
  it("marks every answer nosniff and no-store, errors included", function()
    local srv, base = start("spec_edge_headers")
    for _, path in ipairs({ "/healthz", "/metrics", "/no/such/route" }) do
      local status, _, headers = T.http("GET", base .. path)
      assert.is_true(status == 200 or status == 404 or status == 503, path .. " answered " .. status)
      assert.are.equal("nosniff", headers["x-content-type-options"], path)
      assert.are.equal("no-store", headers["cache-control"], path)
    end
    T.kill(srv, "TERM")
  end)

  it("speaks no HTTP/2 in cleartext: an h2c upgrade stays HTTP/1.1, prior knowledge is refused",
     function()
    local srv, base = start("spec_edge_h2c")
    local _, upgrade = T.sh("curl -sS --http2 -o /dev/null -D - --max-time 10 " ..
                            T.q(base .. "/healthz"))
    assert.matches("^HTTP/1%.1 200", upgrade)
    assert.is_nil(upgrade:find("101 Switching", 1, true))
    local _, prior = T.sh("curl -sS --http2-prior-knowledge -o /dev/null -D - --max-time 10 " ..
                         T.q(base .. "/healthz"))
    assert.is_nil(prior:find("HTTP/2", 1, true), "answered HTTP/2 with prior knowledge")
    assert.is_true(T.alive(srv), "the worker died")
    T.kill(srv, "TERM")
  end)

  it("closes a half-sent request, headers or body, after SPINE_HTTP_REQUEST_TIMEOUT_MS", function()
    local srv, base, port = start("spec_edge_req_timeout", { SPINE_HTTP_REQUEST_TIMEOUT_MS = "300" })
    local heads, body = half(port, HALF_HEADERS), half(port, HALF_BODY)
    -- a bound that only trips when nothing closes them (the default timeout is 10 s)
    T.wait_until(function() return closed(heads) and closed(body) end, 30,
                 "the server to close the half-sent requests")
    assert.are.equal(200, (T.http("GET", base .. "/healthz")))
    hang_up(heads)
    hang_up(body)
    T.kill(srv, "TERM")
  end)

  it("stops at SIGTERM at once while a half-sent request waits for a long timeout", function()
    local srv, base, port = start("spec_edge_stop", { SPINE_HTTP_REQUEST_TIMEOUT_MS = "600000" })
    local c = half(port, HALF_BODY)
    -- accepted by now: connections are accepted in order, and this one is the second open
    local status, metrics = T.http("GET", base .. "/metrics")
    assert.are.equal(200, status)
    assert.matches("\nspine_http_connections_open 2\n", metrics)
    T.kill(srv, "TERM") -- waits at most 30 s for the exit, far below the 600 s timeout
    T.wait_until(function() return closed(c) end, 30, "the half-sent request to be closed")
    hang_up(c)
  end)

  it("answers a connection over SPINE_HTTP_MAX_CONNECTIONS 503 with Retry-After and counts it",
     function()
    local srv, base, port = start("spec_edge_max_conns", { SPINE_HTTP_MAX_CONNECTIONS = "2" })
    local a, b = half(port, HALF_BODY), half(port, HALF_HEADERS)
    local status, body, headers = T.http("GET", base .. "/healthz")
    assert.are.equal(503, status)
    assert.are.equal("1", headers["retry-after"])
    assert.matches("too many connections", body)
    hang_up(a)
    local refused = 1 -- and each look below that comes before the server saw `a` go
    local metrics = T.wait_until(function()
      local st, text = T.http("GET", base .. "/metrics")
      if st ~= 200 then refused = refused + 1 end
      return st == 200 and text
    end, 30, "a connection to be free")
    assert.matches("\nspine_http_connections_refused_total " .. refused .. "\n", metrics)
    assert.is_false(closed(b), "the connection under the cap was closed")
    hang_up(b)
    T.kill(srv, "TERM")
  end)

  it("refuses to start with a setting that is not a whole number, naming it", function()
    local url = T.newdb("spec_edge_bad_setting")
    local bad = { SPINE_HTTP_MAX_CONNECTIONS = "0", SPINE_HTTP_MAX_REQUESTS = "many",
                  SPINE_HTTP_REQUEST_TIMEOUT_MS = "10s", SPINE_WEBHOOK_RATE = "10",
                  SPINE_WEBHOOK_BURST = "0", SPINE_WEBHOOK_RATE_LOOPBACK = "yes" }
    for name, value in pairs(bad) do
      local code, _, err = T.spine(url, { "serve" }, { [name] = value, SPINE_LISTEN = "127.0.0.1:0" })
      assert.are.equal(2, code, name)
      assert.matches(name, err, 1, true)
    end
  end)

  -- One token an hour: no token comes back while the test runs, however slow the machine.
  local LIMITED = { SPINE_SECRET_GRIDCO_WEBHOOK_SECRET = SECRET, SPINE_WEBHOOK_RATE = "1/h",
                    SPINE_WEBHOOK_BURST = "3" }

  it("answers 429 with Retry-After to webhooks over one address's burst, verifying and storing " ..
     "nothing of them", function()
    local url = T.newdb("spec_edge_webhook_rate")
    local srv = T.serve(url, LIMITED)
    local base = "http://127.0.0.1:" .. T.http_port(srv)
    local statuses, answer, headers = webhooks(base, 4, 1)
    -- unsigned, for an unknown provider: still 429, not 401 or 404
    local unsigned = T.http("POST", base .. "/v1/webhooks/nobody", { body = "{}" })
    local _, text = T.http("GET", base .. "/metrics")
    local stored = T.sql(url, "SELECT count(*) FROM spine.webhook_deliveries")
    T.kill(srv, "TERM")
    assert.are.same({ 202, 202, 202, 429 }, statuses)
    assert.are.equal("rate_limited", T.json.decode(answer).error.kind)
    assert.matches("^%d+$", headers["retry-after"])
    assert.is_true(tonumber(headers["retry-after"]) >= 1)
    assert.are.equal(429, unsigned)
    assert.are.equal("3", stored)
    assert.are.equal(3, metric(text, 'spine_webhooks_total{outcome="accepted"}'))
    assert.are.equal(2, metric(text, 'spine_webhooks_total{outcome="rate_limited"}'))
    assert.are.equal(0, metric(text, 'spine_webhooks_total{outcome="unknown_provider"}'))
  end)

  it("lets the same webhooks through with a burst that holds them", function()
    local url = T.newdb("spec_edge_webhook_burst")
    local env = { SPINE_WEBHOOK_BURST = "4" }
    for k, v in pairs(LIMITED) do env[k] = env[k] or v end
    local srv = T.serve(url, env)
    local base = "http://127.0.0.1:" .. T.http_port(srv)
    local statuses = webhooks(base, 5, 1)
    T.kill(srv, "TERM")
    assert.are.same({ 202, 202, 202, 202, 429 }, statuses)
  end)

  it("lets webhooks from loopback through with SPINE_WEBHOOK_RATE_LOOPBACK=exempt", function()
    local url = T.newdb("spec_edge_webhook_loopback")
    local env = { SPINE_WEBHOOK_RATE_LOOPBACK = "exempt" }
    for k, v in pairs(LIMITED) do env[k] = v end
    local srv = T.serve(url, env)
    local base = "http://127.0.0.1:" .. T.http_port(srv)
    local statuses = webhooks(base, 6, 1)
    T.kill(srv, "TERM")
    assert.are.same({ 202, 202, 202, 202, 202, 202 }, statuses)
  end)
end)
