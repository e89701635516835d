-- `spine run --clock virtual`: scripted signals (--signal-at OFFSET:NAME=JSON) and virtual time
-- in what the run writes (steps, the workflow's end), which `spine show` and `explain` read.
local T = require("spine_test")

-- ask, wait 14 days, remind, wait 7 more: the meter-reading reminder of issue 15
local METER = [[
return {
  name = "meter",
  run = function(ctx, input)
    ctx.state("asked")
    local got = ctx.wait("customer.meter_reading", { timeout = "14d" })
    if not got then
      ctx.state("reminded")
      got = ctx.wait("customer.meter_reading", { timeout = "7d" })
    end
    ctx.outcome(got and "read" or "estimated")
    return { value = got and got.value }
  end,
}
]]

local function ms(iso)
  local y, mo, d, h, mi, s, frac = iso:match("^(%d+)-(%d+)-(%d+)T(%d+):(%d+):(%d+)%.(%d+)Z$")
  local days = os.time({ year = tonumber(y), month = tonumber(mo), day = tonumber(d), hour = 12 })
  return (days // 86400) * 86400000 + ((tonumber(h) * 60 + tonumber(mi)) * 60 + tonumber(s)) * 1000
         + tonumber(frac)
end

local DAY = 86400000

describe("spine run --clock virtual", function()
  local url, file
  setup(function()
    url = T.newdb("spec_virtual_run")
    file = T.tmpfile() .. ".lua"
    local f = assert(io.open(file, "wb"))
    f:write(METER)
    f:close()
  end)
  teardown(function() os.remove(file) end)

  it("delivers a scripted signal at its offset, and records virtual time", function()
    local code, wf = T.spine_json(url, { "run", file, "--clock", "virtual", "--signal-at",
                                         '16d:customer.meter_reading={"value":1234}' })
    assert.are.equal(0, code)
    assert.are.same({ value = 1234 }, wf.result)
    assert.are.equal("read", wf.outcome)
    local created = ms(wf.created_at)
    local s = wf.steps
    assert.are.same({ "wait", "wait", "outcome" }, { s[1].kind, s[2].kind, s[3].kind })
    assert.are.equal(T.json.null, s[1].result) -- the first wait timed out after 14 days
    assert.are.equal(14 * DAY, ms(s[1].ended_at) - created)
    assert.are.equal(16 * DAY, ms(s[2].ended_at) - created)
    local _, out = T.spine(url, { "explain", wf.id })
    assert.matches("completed at " .. s[3].ended_at:sub(1, 19) .. "Z", out, 1, true)
  end)

  it("takes a signal that comes during the first wait, and several of them", function()
    local code, wf = T.spine_json(url, { "run", file, "--clock", "virtual",
                                         "--signal-at", '3d:customer.meter_reading={"value":7}',
                                         "--signal-at=30d:customer.meter_reading" })
    assert.are.equal(0, code)
    assert.are.same({ value = 7 }, wf.result)
    assert.are.equal(3 * DAY, ms(wf.steps[1].ended_at) - ms(wf.created_at))
  end)

  it("refuses a scripted signal it cannot read, naming the option", function()
    local cases = {
      { { "--clock", "virtual", "--signal-at", "3d" }, "is not OFFSET:NAME[=JSON]" },
      { { "--clock", "virtual", "--signal-at", "3x:a" }, "bad duration unit" },
      { { "--clock", "virtual", "--signal-at", "3d:a={" }, "the payload is not a JSON object" },
      { { "--signal-at", "3d:a" }, "--signal-at needs --clock virtual" },
    }
    for _, c in ipairs(cases) do
      local args = { "run", file }
      for _, a in ipairs(c[1]) do args[#args + 1] = a end
      local code, _, err = T.spine(url, args)
      assert.are.equal(2, code, table.concat(c[1], " "))
      assert.matches(c[2], err, 1, true)
    end
  end)
end)
