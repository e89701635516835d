-- `spine clock`: the manual clock of a running `spine serve --clock manual`, moved from a
-- terminal through serve's clock routes (serve_clock.c), so timers fire as under the test kit.
local T = require("spine_test")

describe("spine clock", function()
  local url, srv, base, file
  setup(function()
    url = T.newdb("spec_cli_clock")
    srv = T.serve(url, { SPINE_CLOCK = "manual=2026-03-01T09:00:00Z" })
    base = "http://127.0.0.1:" .. T.http_port(srv)
    file = T.tmpfile() .. ".lua"
    local f = assert(io.open(file, "wb"))
    f:write('return { name = "nap", run = function(ctx) ctx.sleep("3d") return { woke = true } end }')
    f:close()
  end)
  teardown(function()
    T.kill(srv)
    os.remove(file)
  end)

  it("says the time, and advance 3d fires the timers due and returns once idle", function()
    local code, now = T.spine_json(url, { "clock", "--url", base })
    assert.are.equal(0, code)
    assert.are.same({ "manual", "2026-03-01T09:00:00.000Z" }, { now.clock, now.now })
    local _, wf = T.spine_json(url, { "start", file })
    code = T.spine(url, { "clock", "advance", "--url", base }) -- idle: the case sleeps
    assert.are.equal(0, code)
    local out
    code, out = T.spine(url, { "clock", "advance", "2d", "--url", base })
    assert.are.equal(0, code)
    assert.matches("2026-03-03T09:00:00.000Z (manual clock), 0 timers fired", out, 1, true)
    code, out = T.spine(url, { "clock", "advance", "1d", "--url", base })
    assert.are.equal(0, code)
    assert.matches("2026-03-04T09:00:00.000Z (manual clock), 1 timer fired", out, 1, true)
    local _, shown = T.spine_json(url, { "show", wf.id })
    assert.are.equal("completed", shown.status)
  end)

  it("passes on the route's refusals, naming what is wrong once", function()
    local code, _, err = T.spine(url, { "clock", "advance", "3x", "--url", base })
    assert.are.equal(1, code)
    assert.matches('spine: by: bad duration unit in "3x"', err, 1, true)
    local ans
    code, ans = T.spine_json(url, { "clock", "advance", "--to", "2020-01-01", "--url", base })
    assert.are.equal(1, code)
    assert.matches("the clock does not go back", ans.error.message, 1, true)
  end)

  it("says where it looked when no serve answers", function()
    local code, _, err = T.spine(url, { "clock", "--url", "http://127.0.0.1:1" })
    assert.are.equal(1, code)
    assert.matches("http://127.0.0.1:1/v1/clock", err, 1, true)
    assert.matches("spine serve --clock manual", err, 1, true)
  end)
end)
