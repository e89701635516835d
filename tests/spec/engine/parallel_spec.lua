-- ctx.parallel (tests/playbooks/parallel.lua) on the real engine with the manual clock: the
-- modes, signals to branches in any order, a failure cancelling a waiting sibling and undoing
-- both in reverse, the timeout, nesting, the limits, a kill -9 of the worker mid-parallel, and
-- the finished histories replaying (spine replay).
local S = require("spine.testing")

local PB = "tests/playbooks/parallel.lua"

-- The n of each BenchRecord the case wrote, in commit order.
local function effects(env, case)
  local out = {}
  for _, r in ipairs(env:sql("SELECT n FROM spine.bench_effects WHERE workflow_id = " ..
                             S.literal(case.id) .. " ORDER BY seq")) do
    out[#out + 1] = math.tointeger(r.n)
  end
  return out
end

local function step(case, kind, branch)
  for _, s in ipairs(case:steps()) do
    if s.kind == kind and (branch == nil or s.branch == branch) then return s end
  end
end

describe("ctx.parallel", function()
  local env
  setup(function() env = S.new({ now = "2026-03-02T09:00:00Z" }) end)
  teardown(function() if env then env:close() end end)

  it("all: returns every branch's result, whichever signal comes first", function()
    local case = env:start(PB, { shape = "signals", mode = "all" })
    assert.are.equal("waiting", case:status())
    assert.matches('waits in ctx.parallel for its branches: wait "go.a" in branch 1.a, wait ' ..
                   '"go.b" in branch 1.b.', case:explain(), 1, true)
    case:signal("go.b", { v = "second" }) -- the second branch's signal first
    assert.are.equal("waiting", case:status())
    case:signal("go.a", { v = "first" })
    assert.are.equal("completed", case:status())
    assert.are.same({ a = "first", b = "second" }, case:result())
    assert.are.same({ 2, 1 }, effects(env, case))
    assert.are.same({ "1.a", "1.b" }, { step(case, "wait", "1.a").branch,
                                         step(case, "wait", "1.b").branch })
    local _, shown = env:spine({ "show", case.id }) -- the text view names each step's branch
    assert.matches("in branch 1.b", shown, 1, true)
    assert.is_true((case:replays()))
  end)

  it("any: the first branch to succeed wins, the other's wait is cancelled", function()
    local case = env:start(PB, { shape = "signals", mode = "any" })
    case:signal("go.b", { v = "bee" })
    assert.are.equal("completed", case:status())
    assert.are.same({ winner = "b", value = "bee" }, case:result())
    assert.are.equal("cancelled", step(case, "wait", "1.a").status)
    assert.are.same({ 2 }, effects(env, case))
    assert.is_true((case:replays()))
    -- a playbook whose winning branch has another key now does not replay the history
    local f = assert(io.open(PB))
    local changed = f:read("a"):gsub('b = branch%("b", 2%)', 'bee = branch("b", 2)')
    f:close()
    local path = os.tmpname() .. ".lua"
    f = assert(io.open(path, "w"))
    f:write(changed)
    f:close()
    local ok, rep = case:replays(path)
    os.remove(path)
    assert.is_false(ok)
    assert.is_false(rep.deterministic)
    assert.matches("no longer has", require("cjson").encode(rep.divergence), 1, true)
  end)

  it("race: the first branch to end wins", function()
    local case = env:start(PB, { shape = "signals", mode = "race", match = true })
    case:signal("go.a", { v = "ay", to = "a" })
    assert.are.same({ winner = "a", value = "ay" }, case:result())
    assert.are.same({ 1 }, effects(env, case))
    assert.is_true((case:replays()))
  end)

  it("a failing branch cancels its waiting sibling; both undos run, in reverse", function()
    local case = env:start(PB, { shape = "undo", mode = "all" })
    assert.are.same({ 10, 20 }, effects(env, case))
    env:advance("1h")
    assert.are.equal("completed", case:status())
    assert.are.same({ ok = false, kind = "business", code = "b_failed" }, case:result())
    -- b's undo, then a's (in reverse order of registration), then the main body goes on
    assert.are.same({ 10, 20, -20, -10, 99 }, effects(env, case))
    assert.are.equal("cancelled", step(case, "wait", "1.a").status)
    assert.is_true((case:replays()))
  end)

  it("any: a loser's undo runs, the winner's joins the caller's", function()
    local case = env:start(PB, { shape = "undo", mode = "any", b_succeeds = true })
    env:advance("1h")
    assert.are.same({ ok = true, winner = "b" }, case:result())
    assert.are.same({ 10, 20, -10, 99 }, effects(env, case))
    assert.is_true((case:replays()))
  end)

  it("fails with a timeout error when its deadline passes, cancelling the branches", function()
    local case = env:start(PB, { shape = "timeout" })
    env:advance("59m")
    assert.are.equal("waiting", case:status())
    env:advance("1m")
    assert.are.same({ ok = false, kind = "timeout", code = "timeout" }, case:result())
    assert.are.equal("cancelled", step(case, "sleep", "1.2").status)
    assert.is_true((case:replays()))
  end)

  it("runs a parallel inside a branch of another", function()
    local case = env:start(PB, { shape = "nested" })
    case:signal("go.x", { v = "ex" })
    assert.are.equal("waiting", case:status())
    env:advance("1h")
    assert.are.equal("completed", case:status())
    assert.are.same({ outer = "ex+y", side = 4 }, case:result())
    assert.are.same({ 1, 4, 2, 3, 5 }, effects(env, case))
    assert.are.equal("2.outer/1.x", step(case, "wait").branch)
    assert.is_true((case:replays()))
    -- a fork before its last step keeps the branches' steps as theirs and replays them
    local steps = case:steps()
    local fork = env:spine_json({ "fork", case.id, "--from-step",
                                  tostring(math.tointeger(steps[#steps].seq) - 1) })
    local forked = env:case(fork.id)
    assert.are.equal("completed", forked:wait_for_status("completed").status)
    assert.are.same(case:result(), forked:result())
    assert.are.same({ 5 }, effects(env, forked)) -- only the step after the fork ran again
  end)

  it("calls providers from two branches at once, each once", function()
    local case = env:start(PB, { shape = "providers", mp = "par-mp-1" })
    assert.are.equal("completed", case:wait_for_status("completed").status)
    assert.are.same({ switch = true, termination = true }, case:result())
    local calls = 0
    for _, e in ipairs(env:provider("gridco"):effects().effects or {}) do
      if tostring(e.request):find("par-mp-1", 1, true) then calls = calls + 1 end
    end
    assert.are.equal(2, calls)
    assert.are.equal("1.switch", step(case, "provider").branch)
    assert.is_true((case:replays()))
  end)

  it("refuses more than 64 branches and more than 8 levels, costing the workflow only",
     function()
    local wide = env:start(PB, { shape = "wide", n = 10000 })
    local r = wide:result()
    assert.are.equal("limit", r.kind)
    assert.matches("more branches than 64", r.message, 1, true)
    assert.are.same({ ok = true, n = 64 }, env:start(PB, { shape = "wide", n = 64 }):result())
    local deep = env:start(PB, { shape = "deep", depth = 100 }):result()
    assert.are.equal("limit", deep.kind)
    assert.matches("nested deeper than 8", deep.message, 1, true)
    assert.are.same({ ok = true, depth = 8 }, env:start(PB, { shape = "deep", depth = 8 }):result())
  end)

  it("contains a branch that loops forever and one that errors", function()
    local case = env:start(PB, { shape = "hostile" })
    env:advance("1m")
    local r = case:result()
    assert.are.equal("all_branches_failed", r.code)
    assert.are.equal("limit", r.a)
    assert.matches("boom", r.b, 1, true)
  end)

  it("survives a kill -9 of the worker mid-parallel: replayed, every intent applied once",
     function()
    local case = env:start(PB, { shape = "signals", mode = "all" })
    case:signal("go.b", { v = "second" })
    assert.are.same({ 2 }, effects(env, case))
    env:restart("KILL")
    assert.are.equal("waiting", case:status())
    case:signal("go.a", { v = "first" })
    assert.are.equal("completed", case:status())
    assert.are.same({ a = "first", b = "second" }, case:result())
    assert.are.same({ 2, 1 }, effects(env, case))
    local ok, rep = case:replays()
    assert.is_true(ok)
    assert.are.equal(#case:steps(), rep.replayed)
  end)

  it("survives a kill -9 after a branch failed, the undos half done", function()
    local case = env:start(PB, { shape = "undo", mode = "all", slow_undo = true })
    env:advance("1h")
    assert.are.same({ 10, 20, -20 }, effects(env, case)) -- a's undo sleeps half an hour
    assert.are.equal("waiting", case:status())
    env:restart("KILL")
    env:advance("30m")
    assert.are.same({ ok = false, kind = "business", code = "b_failed" }, case:result())
    assert.are.same({ 10, 20, -20, -10, 99 }, effects(env, case))
    assert.is_true((case:replays()))
  end)
end)

describe("ctx.parallel across evictions and cancellation", function()
  local env
  setup(function()
    env = S.new({ now = "2026-03-02T09:00:00Z",
                  env = { SPINE_EVICT_AFTER_MS = "1", SPINE_LEASE_MS = "1000" } })
  end)
  teardown(function() if env then env:close() end end)

  local function evicted(case)
    local deadline = os.time() + 30
    repeat
      if env:sql1("SELECT owner IS NULL FROM spine.workflows WHERE id = " ..
                  S.literal(case.id)) then return end
      env:settle()
    until os.time() > deadline
    error("the case did not leave memory")
  end

  it("leaves memory mid-parallel and wakes at its branches' earliest deadline", function()
    local case = env:start(PB, { shape = "undo", mode = "all" })
    evicted(case) -- a waits for a signal, b sleeps an hour: the row wakes in an hour
    assert.are.equal("waiting", case:status())
    env:advance("1h")
    assert.are.same({ ok = false, kind = "business", code = "b_failed" }, case:result())
    assert.are.same({ 10, 20, -20, -10, 99 }, effects(env, case))
    -- claimed again (each claim bumps the epoch): it replayed from the database
    assert.is_true(env:sql1("SELECT epoch FROM spine.workflows WHERE id = " ..
                            S.literal(case.id)) >= 2)
    assert.is_true((case:replays()))
  end)

  it("leaves memory mid-parallel and takes each branch's signal after", function()
    local case = env:start(PB, { shape = "signals", mode = "all" })
    evicted(case)
    case:signal("go.b", { v = "second" })
    evicted(case)
    case:signal("go.a", { v = "first" })
    assert.are.equal("completed", case:wait_for_status("completed").status)
    assert.are.same({ a = "first", b = "second" }, case:result())
    assert.are.same({ 2, 1 }, effects(env, case))
  end)

  it("an operator's cancel stops the parallel, undoes its branches, ends cancelled", function()
    local case = env:start(PB, { shape = "nested" })
    assert.are.equal(0, (env:spine({ "cancel", case.id })))
    assert.are.equal("cancelled", case:wait_for_status("cancelled").status)
    assert.are.same({ 1, 4 }, effects(env, case))
    assert.are.equal("cancelled", step(case, "wait", "2.outer/1.x").status)
    assert.are.equal("cancelled", step(case, "sleep", "2.outer/1.y").status)
    assert.is_true((case:replays()))
  end)
end)
