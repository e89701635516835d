-- tests/spec/playbooks/__NAME___spec.lua: drives playbooks/__NAME__.lua through its manifest on
-- the real engine with spine.testing (tests/lib/spine/testing.lua): a fresh database, `spine
-- serve` on a manual clock, signals, days that pass at once.
-- Run it from the project's root: busted tests/spec/playbooks/__NAME___spec.lua
-- (.busted finds spine.testing; the kit runs $SPINE_BIN, else build/spine, else spine on the
-- PATH, on Spine's own database: build/spine db start, once).
local S = require("spine.testing")

-- The project's folder: this file is <root>/tests/spec/playbooks/__NAME___spec.lua.
local ROOT = debug.getinfo(1, "S").source:sub(2):match("^(.-)/?tests/spec/playbooks/[^/]+$")
if not ROOT or ROOT == "" then ROOT = "." end

describe("__NAME__", function()
  local env
  setup(function() env = S.new({ root = ROOT }) end)
  teardown(function() env:close() end)

  it("completes confirmed when the signal comes", function()
    local case = env:start("__NAME__", { customer_id = "c-1" })
    assert.are.equal("waiting", case:state())
    case:signal("__NAME__.confirmed", { by = "phone" })
    assert.are.equal("completed", case:status())
    assert.are.same({ customer = "c-1", confirmed = true }, case:result())
  end)

  it("stops waiting after 3 days", function()
    local case = env:start("__NAME__", { customer_id = "c-2" })
    env:advance("2d")
    assert.are.equal("waiting", case:state())
    env:advance("1d")
    assert.are.equal("completed", case:status())
    assert.are.same({ customer = "c-2", confirmed = false }, case:result())
  end)

  it("has a manifest that spine manifests check accepts", function()
    local report = env:spine_json({ "manifests", "check" })
    for _, e in ipairs(report.errors) do
      local mine = e.where:find("manifests/__NAME__.json", 1, true) or
                   e.where:find("playbooks/__NAME__.lua", 1, true)
      assert.is_nil(mine, e.where .. ": " .. e.field .. ": " .. e.message)
    end
  end)
end)
