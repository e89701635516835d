-- Where an adapter's p.http may go (issue 12, SSRF): the host and port of its base_url, and the
-- hosts providers.json lists in its allowed_hosts; nothing else, redirects included. Two
-- simulators on 127.0.0.1: `home` is the adapter's base_url, `other` (another port, so another
-- host:port) counts every request that reaches it. Each case runs with `spine run`.
local T = require("spine_test")
local P = require("provider_test")

local PLAYBOOK = "tests/playbooks/provider_switch.lua"

-- POSTs a switch to p.config.target and answers with what came back, redirects included.
local ROAMER = [[
return {
  name = "roamer",
  channels = { "api", "email" },
  api = {
    submit_switch = function(p, args)
      local res = p.http.post(p.config.target .. "/v1/switches",
                              { json = { contract = args.contract_id } })
      return { status = res.status, location = res.headers.location,
               reference = res.json and res.json.id }
    end,
  },
  email = {
    submit_switch = function()
      return { reference = "email:fallback" }
    end,
  },
}]]

-- A providers folder whose roamer has `settings`; returns its path.
local function providers(settings)
  local dir = P.dir({ roamer = settings })
  P.add(dir, "roamer", ROAMER)
  return dir
end

local function run(url, dir, contract)
  local code, wf, err, out = T.spine_json(url, { "run", PLAYBOOK, "--input", T.json.encode({
    contract_id = contract, provider = "roamer" }) }, { SPINE_PROVIDERS = dir })
  assert(wf, "spine run answered no workflow (" .. code .. "): " .. err .. out)
  return wf, err
end

local function requests(sim)
  return T.sim_effects(sim).requests
end

describe("an adapter's p.http", function()
  local home, other
  before_each(function()
    home = T.simulate({})
    other = T.simulate({})
  end)
  after_each(function()
    T.kill(home)
    T.kill(other)
  end)

  it("is refused a host that is not its base_url's, before anything reaches it", function()
    local url = T.newdb("spec_hosts_refused")
    local dir = providers({ base_url = home.url, target = other.url })
    local wf, log = run(url, dir, "H-1")
    assert.are.equal("failed", wf.status)
    assert.are.equal("invalid_argument", wf.error.kind)
    assert.are.equal("host_not_allowed", wf.error.code)
    assert.matches("roamer may not call 127.0.0.1:" .. other.port, wf.error.message, 1, true)
    -- an adapter fault: one attempt, no other channel (email would have answered)
    local step
    for _, s in ipairs(wf.steps) do
      if s.kind == "provider" then step = s end
    end
    assert.are.equal("roamer.submit_switch", step.name)
    assert.are.equal(1, step.attempt)
    assert.are.same({ "api" }, { step.error.attempts[1].channel, step.error.attempts[2] })
    assert.are.equal(0, requests(other))
    assert.are.equal(0, requests(home))
    assert.matches('"msg":"p.http refused: not a host of the provider","provider":"roamer",' ..
                   '"host":"127.0.0.1:' .. other.port .. '"', log, 1, true)
  end)

  it("is refused its base_url's host on another port", function()
    local url = T.newdb("spec_hosts_port")
    -- `other` is 127.0.0.1 too: base_url's host, but not base_url's port
    local dir = providers({ base_url = home.url, target = "http://127.0.0.1:" .. other.port })
    local wf = run(url, dir, "H-2")
    assert.are.equal("host_not_allowed", wf.error.code)
    assert.are.equal(0, requests(other))
  end)

  it("reaches a host providers.json lists in allowed_hosts", function()
    local url = T.newdb("spec_hosts_allowed")
    local dir = providers({ base_url = home.url, target = other.url,
                            allowed_hosts = { "auth.example.test", "127.0.0.1:" .. other.port } })
    local wf = run(url, dir, "H-3")
    assert.are.equal("completed", wf.status, T.json.encode(wf.error))
    assert.are.equal(201, wf.result.status)
    assert.are.equal(1, #T.sim_effects(other).effects)
    assert.are.equal(0, requests(home))
  end)

  it("does not follow a redirect from its base_url to another host", function()
    local url = T.newdb("spec_hosts_redirect")
    local dir = providers({ base_url = home.url, target = home.url })
    local to = other.url .. "/v1/switches"
    local status = T.http("POST", home.url .. "/_sim/script", { body = T.json.encode({
      responses = { { status = 307, body = "{}", location = to } } }) })
    assert.are.equal(200, status)
    local wf = run(url, dir, "H-4")
    assert.are.equal("completed", wf.status, T.json.encode(wf.error))
    assert.are.same({ status = 307, location = to }, wf.result) -- the answer, not a hop
    assert.are.equal(1, requests(home))
    assert.are.equal(0, requests(other))
  end)

  it("calls no host at all when the provider has neither base_url nor allowed_hosts", function()
    local url = T.newdb("spec_hosts_none")
    local dir = providers({ target = home.url })
    local wf = run(url, dir, "H-5")
    assert.are.equal("host_not_allowed", wf.error.code)
    assert.are.equal(0, requests(home))
  end)

  it("stops spine from starting when allowed_hosts lists something else, naming file and field",
     function()
    local url = T.newdb("spec_hosts_bad")
    local dir = providers({ base_url = home.url, target = home.url,
                            allowed_hosts = { "127.0.0.1", "https://auth.example.test/" } })
    local code, out = T.spine_json(url, { "run", PLAYBOOK, "--input", '{"contract_id":"H-6"}' },
                                   { SPINE_PROVIDERS = dir })
    assert.are.equal(1, code)
    assert.are.equal(dir .. "/providers.json:1", out.error.where)
    assert.are.equal("roamer.allowed_hosts[1]", out.error.field)
    assert.matches('"https://auth.example.test/" is not a host name or host:port',
                   out.error.message, 1, true)
  end)
end)
