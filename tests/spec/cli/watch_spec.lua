-- `spine watch`: the live view of cases per process and variant, on a running worker.
local T = require("spine_test")

local function frames(path)
  local list = {}
  for line in T.read(path):gmatch("[^\n]+") do list[#list + 1] = T.json.decode(line) end
  return list
end

describe("spine watch", function()
  it("follows cases from waiting to completed and returns once none is under way", function()
    local url = T.newdb("spec_watch")
    local srv = T.serve(url)
    local ids = {}
    for i = 1, 3 do
      local code, wf = T.spine_json(url, { "start", "tests/playbooks/waiter.lua" })
      assert.are.equal(0, code)
      ids[i] = wf.id
    end
    for _, id in ipairs(ids) do
      T.wait_until(function()
        local _, w = T.spine_json(url, { "show", id })
        return w and w.status == "waiting"
      end, 30, "case " .. id .. " to wait")
    end
    -- watch in the background (a frame per change), then let the cases finish
    local out, done = os.tmpname(), os.tmpname()
    local p = io.popen("cd " .. T.q(T.src) .. " && (SPINE_DATABASE_URL=" .. T.q(url) .. " " ..
      T.q(T.bin) .. " watch --json --until-done --every 20ms --timeout 120s >" .. out ..
      " 2>&1 </dev/null; echo $? >" .. done .. ") & echo $!")
    local pid = T.track(tonumber(p:read("l")))
    p:close()
    T.wait_until(function() return #T.read(out) > 0 end, 30, "the first frame")
    for _, id in ipairs(ids) do
      assert.are.equal(0, (T.spine(url, { "signal", id, "go", "--data", '{"value": 1}' })))
    end
    T.wait_until(function() return T.read(done):match("%d") end, 60, "spine watch to return")
    local text_code, text = T.spine(url, { "watch", "--process", "waiter", "--until-done" })
    T.kill(srv, "TERM")
    assert.is_truthy(pid)
    assert.are.equal("0", T.read(done):match("%d+"))
    local f = frames(out)
    local first, last = f[1], f[#f]
    assert.are.equal(3, first.active)
    assert.are.equal("waiter", first.groups[1].process)
    assert.are.same({ waiting = 3 }, first.groups[1].statuses)
    assert.are.same({ waiting_for_go = 3 }, first.groups[1].states)
    assert.are.equal(0, last.active)
    assert.are.same({ completed = 3 }, last.groups[1].statuses)
    assert.are.equal(3, last.groups[1].ended)
    -- without a terminal, one text frame: the bar's counts and the statuses
    assert.are.equal(0, text_code)
    assert.matches("waiter", text, 1, true)
    assert.matches("3/3 ended (completed 3)", text, 1, true)
    os.remove(out)
    os.remove(done)
  end)

  it("gives up after --timeout while cases are under way, and refuses bad options", function()
    local url = T.newdb("spec_watch_timeout")
    local code = T.spine_json(url, { "start", "tests/playbooks/waiter.lua" })
    assert.are.equal(0, code)
    local late, _, err = T.spine(url, { "watch", "--until-done", "--every", "10ms",
                                        "--timeout", "50ms" })
    local bad, _, bad_err = T.spine(url, { "watch", "--every", "soon" })
    assert.are.equal(1, late)
    assert.matches("still under way after 50ms", err, 1, true)
    assert.are.equal(2, bad)
    assert.matches("--every", bad_err, 1, true)
  end)
end)
