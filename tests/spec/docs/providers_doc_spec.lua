-- The guides' provider examples: every adapter in docs/*.md loads, and every playbook example
-- that calls a provider runs against the provider simulator (its API and SMTP sink) with those
-- adapters, and ends as it says.
local T = require("spine_test")
local P = require("provider_test")

local function guides()
  local list = {}
  local p = io.popen("cd " .. T.q(T.src) .. " && ls docs/*.md")
  for line in p:lines() do list[#list + 1] = line end
  p:close()
  return list
end

-- The ```lua blocks of a Markdown text, with their line numbers.
local function blocks(text)
  local found, pos = {}, 1
  while true do
    local s, e = text:find("```lua\n(.-)\n```", pos)
    if not s then break end
    local _, nl = text:sub(1, s):gsub("\n", "")
    found[#found + 1] = { line = nl + 2, body = text:sub(s + 7, e - 4) }
    pos = e + 1
  end
  return found
end

describe("the guides' provider examples", function()
  it("load as adapters and run their playbooks against the simulator", function()
    local sim = T.simulate({ "--smtp-port", "0" })
    local adapters, playbooks = {}, {}
    for _, g in ipairs(guides()) do
      for _, b in ipairs(blocks(T.source(g))) do
        b.where = g .. ":" .. b.line
        if b.body:find("channels%s*=") then
          adapters[#adapters + 1] = b
        elseif b.body:find("run%s*=%s*function") and b.body:find("ctx.provider(", 1, true) then
          playbooks[#playbooks + 1] = b
        end
      end
    end
    local settings = { smtp = { url = "smtp://127.0.0.1:" .. sim.smtp_port, from = "spine@localhost" } }
    for _, a in ipairs(adapters) do
      a.name = assert(a.body:match('name%s*=%s*"([%w_]+)"'), a.where .. ": no name")
      settings[a.name] = { base_url = sim.url, desk = "desk@example.test", rate_limit = 1000 }
    end
    local dir = P.dir(settings)
    for _, a in ipairs(adapters) do P.add(dir, a.name, a.body) end
    local url = T.newdb("spec_docs_providers")
    local ran = 0
    for _, pb in ipairs(playbooks) do
      local input = pb.body:match("%-%- input: ([^\n]+)") or "{}"
      local expect = pb.body:match("%-%- expect: (%a+)") or "completed"
      local path = os.tmpname() .. ".lua"
      local f = assert(io.open(path, "wb"))
      f:write(pb.body)
      f:close()
      local _, wf, err, out = T.spine_json(url, { "run", path, "--input", input },
                                           { SPINE_PROVIDERS = dir })
      os.remove(path)
      assert.is_table(wf, pb.where .. ": " .. err .. out)
      assert.are.equal(expect, wf.status, pb.where .. ": " .. T.json.encode(wf.error))
      ran = ran + 1
    end
    local effects = T.sim_effects(sim)
    T.kill(sim)
    assert.is_true(#adapters >= 1, "expected an adapter example in the guides")
    assert.is_true(ran >= 1, "expected a playbook example calling a provider")
    assert.is_true(#effects.effects >= ran, "the examples reached the simulator")
  end)
end)
