-- tests/spec/playbooks/__NAME___spec.lua: runs playbooks/__NAME__.lua end to end on the
-- virtual clock, with the spine binary ($SPINE_BIN, else `spine` on the PATH) and its
-- database ($SPINE_DATABASE_URL, else spine's own under ./.spine).
-- Run it: busted tests/spec/playbooks/__NAME___spec.lua
local cjson = require("cjson")

local SPINE = os.getenv("SPINE_BIN") or "spine"
-- The project's folder: this file is <root>/tests/spec/playbooks/__NAME___spec.lua.
local ROOT = debug.getinfo(1, "S").source:sub(2):match("^(.-)/?tests/spec/playbooks/[^/]+$")
if not ROOT or ROOT == "" then ROOT = "." end

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function slurp(path)
  local f = io.open(path, "rb")
  local s = f and f:read("a") or ""
  if f then f:close() end
  os.remove(path)
  return s
end

-- Runs spine in the project's folder; returns its exit code, stdout and stderr.
local function spine(args)
  local out, err = os.tmpname(), os.tmpname()
  local cmd = "cd " .. q(ROOT) .. " && " .. q(SPINE)
  for _, a in ipairs(args) do cmd = cmd .. " " .. q(a) end
  local _, _, code = os.execute(cmd .. " >" .. out .. " 2>" .. err .. " </dev/null")
  return code, slurp(out), slurp(err)
end

-- Runs the playbook to its end; returns spine's exit code and the workflow.
local function run(input)
  local args = { "run", "playbooks/__NAME__.lua", "--clock", "virtual", "--json" }
  if input then
    args[#args + 1] = "--input"
    args[#args + 1] = cjson.encode(input)
  end
  local code, out, err = spine(args)
  local ok, wf = pcall(cjson.decode, out)
  assert(ok and type(wf) == "table", "spine run printed no workflow: " .. out .. err)
  return code, wf
end

describe("__NAME__", function()
  it("runs to completion on the virtual clock", function()
    local code, wf = run()
    assert.are.equal(0, code, cjson.encode(wf))
    assert.are.equal("completed", wf.status)
    assert.are.same({ customer = "customer-1", confirmed = false }, wf.result)
  end)

  it("works for the customer the case names", function()
    local code, wf = run({ customer_id = "c-42" })
    assert.are.equal(0, code, cjson.encode(wf))
    assert.are.equal("c-42", wf.result.customer)
  end)

  it("has a manifest that spine manifests check accepts", function()
    local _, out, err = spine({ "manifests", "check", "--json" })
    local ok, report = pcall(cjson.decode, out)
    assert(ok and type(report) == "table", "spine manifests check failed: " .. out .. err)
    for _, e in ipairs(report.errors) do
      local mine = e.where:find("manifests/__NAME__.json", 1, true) or
                   e.where:find("playbooks/__NAME__.lua", 1, true)
      assert.is_nil(mine, e.where .. ": " .. e.field .. ": " .. e.message)
    end
  end)
end)
