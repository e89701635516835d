-- `spine show` prints the attributes (ctx.set) and the outcome in its text view and tells a
-- timed-out wait from a signal; `spine list --attr K=V` finds workflows by attribute, through
-- the API's list (api_ops.c), so both answer alike.
local T = require("spine_test")

local PLAYBOOK = [[
return {
  name = "attrs",
  run = function(ctx, input)
    ctx.set("contract_id", input.contract_id)
    ctx.set("region", "north")
    local got = ctx.wait("customer.meter_reading", { timeout = "3d" })
    return { read = got ~= nil }
  end,
}
]]

describe("spine show and spine list", function()
  local url, file, ids = nil, nil, {}
  setup(function()
    url = T.newdb("spec_show_list")
    file = T.tmpfile() .. ".lua"
    local f = assert(io.open(file, "wb"))
    f:write(PLAYBOOK)
    f:close()
    for _, k in ipairs({ "k-1", "k-2" }) do
      local code, wf = T.spine_json(url, { "run", file, "--clock", "virtual", "--input",
                                           T.json.encode({ contract_id = k }) })
      assert.are.equal(0, code)
      ids[k] = wf.id
    end
  end)
  teardown(function() os.remove(file) end)

  it("prints the attributes and a timed-out wait in the text view", function()
    local code, out = T.spine(url, { "show", ids["k-1"] })
    assert.are.equal(0, code)
    assert.matches('attr      contract_id = "k-1"\nattr      region = "north"\n', out, 1, true)
    assert.matches("wait%s+customer.meter_reading%s+completed%s+%(timed out: no signal%)", out)
  end)

  it("filters by attribute with --attr, in the text view and with --json", function()
    local _, page = T.spine_json(url, { "list", "--attr", "contract_id=k-2" })
    assert.are.equal(1, #page.workflows)
    assert.are.equal(ids["k-2"], page.workflows[1].id)
    local _, both = T.spine_json(url, { "list", "--attr", "region=north" })
    assert.are.equal(2, #both.workflows)
    local _, none = T.spine_json(url, { "list", "--attr", "region=north contract_id=k-3" })
    assert.are.same({}, none.workflows)
    local code, out = T.spine(url, { "list", "--attr", "contract_id=k-1" })
    assert.are.equal(0, code)
    assert.matches(ids["k-1"], out, 1, true)
    assert.not_matches(ids["k-2"], out, 1, true)
  end)

  it("refuses an --attr that is not KEY=VALUE, naming the option", function()
    local code, _, err = T.spine(url, { "list", "--attr", "contract_id" })
    assert.are.equal(2, code)
    assert.matches("attr", err, 1, true)
    assert.matches("KEY=VALUE", err, 1, true)
  end)
end)
