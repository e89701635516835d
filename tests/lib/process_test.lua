-- Helpers for the specs of the platform's processes (tests/spec/playbooks): run a playbook on
-- the virtual clock, or start a case of a process for a `spine serve` and talk to it as an
-- operator would; read what it did. Small on purpose: these specs move to the designer's test
-- kit (tests/lib/spine/testing.lua) once it has a manual clock for serve.
local T = require("spine_test")
local P = require("provider_test")
local L = require("lifecycle_test")
local assert = require("luassert")

local R = {}

-- Runs playbooks/<name>.lua to its end on the virtual clock; returns the workflow (with its
-- steps). Every run is also replayed from its history: the playbook must take the same steps.
function R.run(url, name, input, env)
  local _, wf, err, out = T.spine_json(url, { "run", "playbooks/" .. name .. ".lua",
                                              "--clock", "virtual",
                                              "--input", T.json.encode(input) }, env)
  assert(type(wf) == "table" and wf.id, "spine run printed no workflow: " .. tostring(out) ..
                                        tostring(err))
  R.replays(url, wf.id)
  return wf
end

-- Replays workflow `id` against its playbook's file as it is now: no non-determinism.
function R.replays(url, id)
  local code, report, err = T.spine_json(url, { "replay", id })
  assert(code == 0 and report and report.deterministic,
         "workflow " .. id .. " does not replay: " .. T.json.encode(report) .. tostring(err))
end

-- Starts a case of `process` through its manifest; returns the workflow id.
function R.start(url, process, input, env)
  return P.start(url, process, input, env)
end

-- Waits until workflow `id` is `status` (and, if given, in business state `state`).
function R.wait(url, id, status, state, seconds)
  if not state then return P.wait_status(url, id, status, seconds) end
  return T.wait_until(function()
    local wf = P.show(url, id)
    return wf and wf.status == status and wf.state == state and wf
  end, seconds or 60, "workflow " .. id .. " to be " .. status .. " in state " .. state)
end

function R.show(url, id)
  return P.show(url, id)
end

-- Delivers signal `name` with `data` as an operator: spine signal ID NAME --data JSON.
function R.signal(url, id, name, data)
  local code, _, err = T.spine(url, { "signal", id, name, "--data", T.json.encode(data or {}) })
  assert(code == 0, "spine signal failed: " .. err)
end

-- The steps of a workflow as "kind:name" strings, in order.
function R.steps(wf)
  local list = {}
  for _, s in ipairs(wf.steps) do list[#list + 1] = s.kind .. ":" .. s.name end
  return list
end

-- The first step of `kind` and `name`, or nil.
function R.step(wf, kind, name)
  for _, s in ipairs(wf.steps) do
    if s.kind == kind and s.name == name then return s end
  end
end

-- Rows of a query as tables, through psql's JSON.
function R.rows(url, query)
  local json = T.sql(url, "SELECT coalesce(json_agg(q), '[]') FROM (" .. query .. ") q")
  return T.json.decode(json)
end

-- The tasks of a subject, oldest first.
function R.tasks(url, subject)
  return R.rows(url, "SELECT task_id, kind, status, outcome, resolved_by, data FROM" ..
                     " lifecycle.tasks WHERE subject = '" .. subject .. "' ORDER BY created_at")
end

-- Asserts that `spine manifests check` reports no error about `process`'s manifest or playbook;
-- returns whether it found the manifest.
function R.manifest_ok(url, process)
  local _, report, err, out = T.spine_json(url, { "manifests", "check" })
  assert(type(report) == "table", "spine manifests check failed: " .. tostring(out) .. err)
  for _, e in ipairs(report.errors) do
    local mine = e.where:find("manifests/" .. process .. ".json", 1, true) or
                 e.where:find("playbooks/" .. process .. ".lua", 1, true)
    assert(not mine, e.where .. ": " .. tostring(e.field) .. ": " .. e.message)
  end
  local found = false
  for _, m in ipairs(report.manifests or {}) do
    if m.process == process then found = true end
  end
  return found
end

-- The secrets of the adapters the processes call (API keys, webhook secrets).
local SECRETS = { SPINE_SECRET_GRIDCO_API_KEY = "gridco-key-5e0a",
                  SPINE_SECRET_ACME_ENERGY_API_KEY = "acme-key-c41d",
                  SPINE_SECRET_GRIDCO_WEBHOOK_SECRET = "whsec-gridco-77f2",
                  SPINE_SECRET_ACME_ENERGY_WEBHOOK_SECRET = "whsec-acme-0b9e" }

-- Simulators for gridco and ACME, and the env that points the adapters at them. Those named in
-- `confirming` ("gridco", "acme_energy") call back the webhooks of a `spine serve` on `port`.
function R.providers(port, confirming)
  local function sim(provider)
    for _, name in ipairs(confirming or {}) do
      if name == provider then
        return T.simulate({ "--callback",
          ("http://127.0.0.1:%d/v1/webhooks/%s"):format(port, provider), "--callback-secret",
          SECRETS["SPINE_SECRET_" .. provider:upper() .. "_WEBHOOK_SECRET"] })
      end
    end
    return T.simulate({})
  end
  local gridco, acme = sim("gridco"), sim("acme_energy")
  local dir = P.dir({ gridco = { base_url = gridco.url, rate_limit = 100000 },
                      acme_energy = { base_url = acme.url, rate_limit = 100000 } })
  local env = { SPINE_PROVIDERS = dir }
  for k, v in pairs(SECRETS) do env[k] = v end
  return { gridco = gridco, acme = acme }, env
end

-- Starts `spine serve` with the providers' simulators (R.providers), those in `confirming`
-- calling back its webhooks; returns the server and the simulators.
function R.serve(url, confirming)
  local probe = T.serve(url) -- the simulators need serve's port, serve their URLs: pick one
  local port = T.http_port(probe)
  T.kill(probe)
  local sims, env = R.providers(port, confirming)
  env.SPINE_LISTEN = "127.0.0.1:" .. port
  return T.serve(url, env), sims
end

R.T, R.P, R.L = T, P, L
return R
