-- Helpers for the provider specs: a copy of providers/ whose settings point at this test's
-- simulator and SMTP sink, and waiting on workflows.
local T = require("spine_test")

local P = {}

-- Copies the repository's adapters and templates into a fresh directory and writes its
-- providers.json: the repository's settings with `overrides` merged in per provider.
function P.dir(overrides)
  local dir = os.tmpname()
  os.remove(dir)
  local code, _, err = T.sh("mkdir -p " .. T.q(dir) .. " && cp -r " .. T.q(T.src .. "/providers") ..
                           "/. " .. T.q(dir))
  assert(code == 0, "cannot copy providers/: " .. err)
  local settings = T.json.decode(T.source("providers/providers.json"))
  settings.environments = nil
  for name, o in pairs(overrides or {}) do
    settings[name] = settings[name] or {}
    for k, v in pairs(o) do settings[name][k] = v end
  end
  local f = assert(io.open(dir .. "/providers.json", "wb"))
  f:write(T.json.encode(settings))
  f:close()
  return dir
end

-- Adds an adapter file to a providers directory made by P.dir.
function P.add(dir, name, source)
  local f = assert(io.open(dir .. "/" .. name .. ".lua", "wb"))
  f:write(source)
  f:close()
end

function P.show(url, id)
  local _, wf = T.spine_json(url, { "show", id })
  return wf
end

-- Waits until workflow `id` has status `status`; returns it.
function P.wait_status(url, id, status, seconds)
  local last
  local ok, got = pcall(T.wait_until, function()
    last = P.show(url, id)
    return last and last.status == status and last
  end, seconds or 60, "workflow " .. id .. " to be " .. status)
  if ok then return got end
  local _, text = T.spine(url, { "show", id })
  error(tostring(got) .. "; it is:\n" .. tostring(text), 2)
end

-- Starts a case of a playbook with input (a table); returns its id.
function P.start(url, playbook, input, env)
  local code, wf, err = T.spine_json(url, { "start", playbook, "--input", T.json.encode(input) },
                                     env)
  assert(code == 0, "spine start failed: " .. tostring(err))
  return wf.id
end

-- The value of a Prometheus sample in /metrics text (nil if absent).
function P.metric(text, name)
  local pattern = "\n" .. name:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?{}]", "%%%0") .. " ([%d%.e%+%-]+)\n"
  return tonumber(("\n" .. text):match(pattern))
end

return P
