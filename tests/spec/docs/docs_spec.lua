-- The guides: every playbook example runs and ends as it says, and the README leads to every
-- guide.
local T = require("spine_test")

local read = T.source

local function guides()
  local list = {}
  local p = io.popen("cd " .. T.q(T.src) .. " && ls docs/*.md")
  for line in p:lines() do list[#list + 1] = line end
  p:close()
  return list
end

-- The ```lua blocks of a Markdown text that are whole playbooks, with their line numbers.
local function examples(text)
  local found, line = {}, 1
  local pos = 1
  while true do
    local s, e = text:find("```lua\n(.-)\n```", pos)
    if not s then break end
    local _, nl = text:sub(1, s):gsub("\n", "")
    local body = text:sub(s + 7, e - 4)
    -- playbooks that call providers run in providers_doc_spec.lua, against the simulator
    if body:find("run%s*=%s*function") and not body:find("ctx.provider(", 1, true) then
      found[#found + 1] = { line = nl + 2, body = body }
    end
    pos = e + 1
    line = nl
  end
  return found
end

-- The ```lua blocks of a Markdown text that are busted specs written with the test kit.
local function kit_specs(text)
  local found, pos = {}, 1
  while true do
    local s, e = text:find("```lua\n(.-)\n```", pos)
    if not s then break end
    local body = text:sub(s + 7, e - 4)
    if body:find('require("spine.testing")', 1, true) then
      local _, nl = text:sub(1, s):gsub("\n", "")
      found[#found + 1] = { line = nl + 2, body = body }
    end
    pos = e + 1
  end
  return found
end

describe("the guides", function()
  local url
  setup(function() url = T.newdb("spec_docs") end)

  it("lead from the README, each of them", function()
    local readme = read("README.md")
    for _, g in ipairs(guides()) do
      assert.truthy(readme:find("(" .. g .. ")", 1, true), "README.md does not link " .. g)
    end
  end)

  it("have playbook examples that run and end as they say", function()
    local ran = 0
    for _, g in ipairs(guides()) do
      for _, ex in ipairs(examples(read(g))) do
        local where = g .. ":" .. ex.line
        local input = ex.body:match("%-%- input: ([^\n]+)") or "{}"
        local expect = ex.body:match("%-%- expect: (%a+)") or "completed"
        local path = os.tmpname() .. ".lua"
        local f = assert(io.open(path, "wb"))
        f:write(ex.body)
        f:close()
        local _, wf, err, out = T.spine_json(url, { "run", path, "--clock", "virtual",
                                                    "--input", input })
        os.remove(path)
        assert.is_table(wf, where .. ": " .. err .. out)
        assert.are.equal(expect, wf.status, where .. ": " .. T.json.encode(wf.error))
        ran = ran + 1
      end
    end
    assert.is_true(ran >= 2, "expected the guides to hold playbook examples, found " .. ran)
  end)

  it("have test kit examples that pass as busted specs", function()
    local ran = 0
    for _, g in ipairs(guides()) do
      for _, ex in ipairs(kit_specs(read(g))) do
        local path = os.tmpname() .. "_spec.lua"
        local f = assert(io.open(path, "wb"))
        f:write(ex.body)
        f:close()
        local code, out, err = T.sh("cd " .. T.q(T.src) .. " && busted --lpath=" ..
                                    T.q(T.src .. "/tests/lib/?.lua") .. " " .. T.q(path))
        os.remove(path)
        assert.are.equal(0, code, g .. ":" .. ex.line .. ":\n" .. out .. err)
        ran = ran + 1
      end
    end
    assert.is_true(ran >= 1, "expected a test kit example in docs/playbooks.md")
  end)
end)

-- docs/security.md proves each claim by naming its test: every name it gives is a test that
-- exists (a spec file, or a C test of tests/c/test_list.h; `c_x_*` names a family).
describe("the threat model", function()
  it("names only tests that exist", function()
    local text = read("docs/security.md")
    local specs = {}
    local p = io.popen("cd " .. T.q(T.src) .. " && find tests/spec -name '*_spec.lua'")
    for line in p:lines() do specs[line:match("([%w_]+)%.lua$")] = true end
    p:close()
    local ctests = {}
    for name in read("tests/c/test_list.h"):gmatch("XX%(([%w_]+)%)") do ctests[name] = true end
    local named = 0
    for name in text:gmatch("`([%w_%*]+)`") do
      if name:match("_spec$") then
        named = named + 1
        assert.is_true(specs[name] == true, "docs/security.md names " .. name .. ": no such spec")
      elseif name:match("^c_") then
        named = named + 1
        local want, found = name:sub(3), false
        if want:sub(-1) == "*" then
          local prefix = want:sub(1, -2)
          for t in pairs(ctests) do
            if t:sub(1, #prefix) == prefix then found = true end
          end
        else
          found = ctests[want] == true
        end
        assert.is_true(found, "docs/security.md names " .. name .. ": no such C test")
      end
    end
    assert.is_true(named >= 10, "expected docs/security.md to name its tests")
  end)
end)
