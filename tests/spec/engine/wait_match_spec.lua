-- ctx.wait(name, {match = {...}}): a wait takes only a signal whose payload holds its match;
-- the others stay queued, in arrival order, for the waits they match, across a worker's crash
-- and replay, and each signal is taken once (tests/playbooks/two_tasks.lua).
local S = require("spine.testing")

local TWO = "tests/playbooks/two_tasks.lua"

-- The case's signals in arrival order: {task_id, consumed_seq (false: still queued)}.
local function signals(env, case)
  local out = {}
  for _, r in ipairs(env:sql("SELECT payload ->> 'task_id' AS task_id, consumed_seq" ..
                             " FROM spine.signals WHERE workflow_id = " .. S.literal(case.id) ..
                             " ORDER BY id")) do
    out[#out + 1] = { r.task_id or "-", r.consumed_seq or false }
  end
  return out
end

describe("ctx.wait with a match", function()
  local env
  setup(function() env = S.new({ now = "2026-03-02T09:00:00Z" }) end)
  teardown(function() if env then env:close() end end)

  it("leaves a signal about the second task queued while the first wait goes on", function()
    local case = env:start(TWO, { first = "A-1", second = "B-1" })
    assert.are.equal("waiting_first", case:state())
    case:signal("task.resolved", { task_id = "B-1", outcome = "second" })
    case:signal("task.resolved", { outcome = "no task at all" })
    assert.are.equal("waiting_first", case:state())
    assert.are.equal("waiting", case:status())
    assert.are.same({ { "B-1", false }, { "-", false } }, signals(env, case))
    local why = case:explain()
    assert.matches('waits for signal "task.resolved" whose payload holds {"task_id": "A-1"}', why,
                   1, true)
    assert.matches("signals kept for later waits: task.resolved", why, 1, true)
    case:signal("task.resolved", { task_id = "A-1", outcome = "first" })
    assert.are.equal("completed", case:status())
    assert.are.same({ first = "first", second = "second" }, case:result())
    -- each taken once, by its own wait (steps 1 and 2); the stray one is still there
    assert.are.same({ { "B-1", 2 }, { "-", false }, { "A-1", 1 } }, signals(env, case))
    assert.is_true((case:replays()))
  end)

  it("keeps what it queued across a crash of the worker, and replays exactly", function()
    local case = env:start(TWO, { first = "A-2", second = "B-2" })
    case:signal("task.resolved", { task_id = "B-2", outcome = "second" })
    env:restart("KILL")
    assert.are.equal("waiting_first", case:state())
    case:signal("task.resolved", { task_id = "A-2", outcome = "first" })
    assert.are.equal("completed", case:status())
    assert.are.same({ first = "first", second = "second" }, case:result())
    assert.are.same({ { "B-2", 2 }, { "A-2", 1 } }, signals(env, case))
    assert.is_true((case:replays()))
  end)

  it("takes the first task's signal, crashes, and then the second's", function()
    local case = env:start(TWO, { first = "A-3", second = "B-3" })
    case:signal("task.resolved", { task_id = "A-3", outcome = "first" })
    assert.are.equal("waiting_second", case:state())
    env:restart("KILL")
    case:signal("task.resolved", { task_id = "A-3", outcome = "again" }) -- a duplicate
    assert.are.equal("waiting_second", case:state())
    case:signal("task.resolved", { task_id = "B-3", outcome = "second" })
    assert.are.same({ first = "first", second = "second" }, case:result())
    assert.are.same({ { "A-3", 1 }, { "A-3", false }, { "B-3", 2 } }, signals(env, case))
  end)

  it("times out when only other tasks' signals come", function()
    local case = env:start(TWO, { first = "A-4", second = "B-4", timeout = "1h30m" })
    case:signal("task.resolved", { task_id = "B-4", outcome = "second" })
    env:advance("1h29m")
    assert.are.equal("waiting_first", case:state())
    env:advance("1m")
    assert.are.equal("completed", case:status())
    assert.are.same({ first = "timed_out", second = "second" }, case:result())
    assert.is_true((case:replays()))
  end)

  it("refuses a match whose value is not a string, number or boolean, naming the key", function()
    local case = env:start(TWO, { first = "A-5", second = "B-5", bad_match = true })
    assert.are.equal("failed", case:status())
    assert.matches("ctx.wait: match.task_id: not a string, number or boolean",
                   case:error().message, 1, true)
    assert.matches("two_tasks.lua:8", case:error().message, 1, true)
  end)
end)
