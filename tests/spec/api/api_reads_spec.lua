-- Reads for the console (docs/api.md): GET /v1/whoami (who the bearer is and what it may do),
-- GET /v1/workflows/counts (the list's filters, counted by process, variant and status) and
-- GET /v1/providers (the breakers, rate limits and calls of this worker's router, the numbers
-- of /metrics), with their refusals; a real `spine serve` on a real database.
local T = require("spine_test")
local P = require("provider_test")
local cjson = require("cjson")

local MANIFESTS = os.tmpname()
os.remove(MANIFESTS)
os.execute("mkdir -p " .. MANIFESTS)

local function token(url, scopes)
  local code, out, err = T.spine_json(url, { "tokens", "create", "--subject",
                                             "ops:" .. scopes:gsub("[^%w]", "-"),
                                             "--scopes", scopes })
  assert(code == 0, "tokens create failed: " .. tostring(err))
  return out.token, out.id, out.subject
end

local function api(base, method, path, tok)
  local h = {}
  if tok then h[1] = "Authorization: Bearer " .. tok end
  local status, text = T.http(method, base .. path, { headers = h })
  local ok, obj = pcall(cjson.decode, text)
  return status, ok and obj or text
end

teardown(function() os.execute("rmdir " .. MANIFESTS) end)

describe("GET /v1/whoami and /v1/workflows/counts", function()
  local url, srv, base
  setup(function()
    url = T.newdb("spec_api_reads")
    srv = T.serve(url, { SPINE_PLAYBOOKS = "tests/playbooks", SPINE_MANIFESTS = MANIFESTS })
    base = "http://127.0.0.1:" .. T.http_port(srv)
  end)
  teardown(function()
    if srv then T.kill(srv, "TERM") end
  end)

  it("whoami names the token's subject, scopes and id, for any scope; 401 without one", function()
    local tok, id, subject = token(url, "tasks:resolve,cases:start")
    local s, me = api(base, "GET", "/v1/whoami", tok)
    assert.are.equal(200, s)
    assert.are.same({ subject = subject, scopes = { "tasks:resolve", "cases:start" },
                      token_id = id }, me)
    local admin = token(url, "admin")
    local _, a = api(base, "GET", "/v1/whoami", admin)
    assert.are.same({ "admin" }, a.scopes)
    local s401, e = api(base, "GET", "/v1/whoami")
    assert.are.equal(401, s401)
    assert.are.equal("unauthorized", e.error.code)
    assert.are.equal(401, (api(base, "GET", "/v1/whoami", "spn_not-a-token")))
    assert.are.equal(405, (api(base, "POST", "/v1/whoami", tok)))
  end)

  it("counts the workflows by process, variant and status, with the list's filters", function()
    local starter = token(url, "cases:start")
    for _, p in ipairs({ "waiter", "waiter", "cancellable" }) do
      local h = { "Authorization: Bearer " .. starter }
      local s = T.http("POST", base .. "/v1/cases",
                       { body = cjson.encode({ process = p }), headers = h })
      assert.are.equal(201, s)
    end
    local reader = token(url, "workflows:read")
    local function count(q)
      local s, body = api(base, "GET", "/v1/workflows/counts" .. q, reader)
      assert.are.equal(200, s, cjson.encode(body))
      return body.items
    end
    -- one GROUP BY of the table: the sum of the rows is the number of workflows
    local want = tonumber(T.sql(url, "SELECT count(*) FROM spine.workflows"))
    local total = 0
    for _, it in ipairs(count("")) do
      assert.is_string(it.process)
      assert.is_string(it.status)
      assert.is_not_nil(it.variant)
      total = total + it.count
    end
    assert.are.equal(want, total)
    local waiters = 0
    for _, it in ipairs(count("?process=waiter")) do
      assert.are.equal("waiter", it.process)
      waiters = waiters + it.count
    end
    assert.are.equal(2, waiters)
    assert.are.same({}, count("?process=no-such-process"))
    assert.are.same({}, count("?created_after=2999-01-01T00:00:00Z"))
    -- bad input names the parameter; limit and cursor are the list's alone
    for q, field in pairs({ ["?colour=red"] = "colour", ["?created_after=soon"] = "created_after",
                            ["?limit=5"] = "limit", ["?cursor=00"] = "cursor" }) do
      local s, e = api(base, "GET", "/v1/workflows/counts" .. q, reader)
      assert.are.equal(400, s, q)
      assert.are.equal(field, e.error.field, q)
    end
    assert.are.equal(401, (api(base, "GET", "/v1/workflows/counts")))
    local s403, e = api(base, "GET", "/v1/workflows/counts", starter)
    assert.are.equal(403, s403)
    assert.are.equal("forbidden", e.error.code)
  end)
end)

describe("GET /v1/providers", function()
  it("shows the breaker open while the provider is down, with the calls of /metrics", function()
    local PLAYBOOK = "tests/playbooks/provider_switch.lua"
    local sim = T.simulate({ "--smtp-port", "0" })
    local dir = P.dir({
      smtp = { url = "smtp://127.0.0.1:" .. sim.smtp_port, from = "spine@localhost" },
      acme_energy = { base_url = sim.url, rate_limit = 100000,
                      breaker = { failures = 3, cooldown = "1h" } },
    })
    local url = T.newdb("spec_api_providers")
    T.http("POST", sim.url .. "/_sim/outage", { body = '{"down": true}' })
    local srv = T.serve(url, { SPINE_PROVIDERS = dir, SPINE_SECRET_ACME_ENERGY_API_KEY = "acme-key-5f2b",
                               SPINE_MANIFESTS = MANIFESTS })
    local base = "http://127.0.0.1:" .. T.http_port(srv)
    local ok, err = pcall(function()
      local reader = token(url, "workflows:read")
      local s0, before = api(base, "GET", "/v1/providers", reader)
      assert.are.equal(200, s0)
      local function find(body, name)
        for _, p in ipairs(body.items) do if p.provider == name then return p end end
      end
      assert.are.equal("closed", find(before, "acme_energy").breaker)
      assert.are.equal(100000, find(before, "acme_energy").rate_limit.rps)
      for i = 1, 4 do
        local id = P.start(url, PLAYBOOK, { contract_id = "DOWN-" .. i, provider = "acme_energy",
                                            operation = "submit_activation" })
        P.wait_status(url, id, "completed")
      end
      local s, body = api(base, "GET", "/v1/providers", reader)
      assert.are.equal(200, s)
      local acme = find(body, "acme_energy")
      assert.are.equal("open", acme.breaker)
      local api_ch
      for _, c in ipairs(acme.channels) do if c.channel == "api" then api_ch = c end end
      assert.are.equal("open", api_ch.breaker)
      assert.are.equal(3, api_ch.calls.transient)
      assert.are.equal(1, api_ch.calls.circuit_open)
      local _, text = T.http("GET", base .. "/metrics")
      assert.are.equal(api_ch.calls.circuit_open, P.metric(text,
        'spine_provider_calls_total{provider="acme_energy",channel="api",outcome="circuit_open"}'))
      assert.are.equal("closed", find(body, "gridco").breaker)
      -- 401 without a token, 403 without workflows:read
      assert.are.equal(401, (api(base, "GET", "/v1/providers")))
      local s403, e = api(base, "GET", "/v1/providers", token(url, "cases:start"))
      assert.are.equal(403, s403)
      assert.matches("workflows:read", e.error.message, 1, true)
    end)
    T.kill(srv, "TERM")
    T.kill(sim)
    assert(ok, err)
  end)
end)
