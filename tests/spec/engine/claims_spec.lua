-- Claims are fenced: a worker writes for a workflow only while the database says the claim
-- (owner and epoch) is its own; and a step the database has but the worker's log missed is not
-- taken for a takeover: the workflow is released and replayed, never stranded.
local T = require("spine_test")

local function status(url, id)
  return T.sql(url, "SELECT status FROM spine.workflows WHERE id = '" .. id .. "'")
end

local function start_waiter(url)
  local code, wf = T.spine_json(url, { "start", "tests/playbooks/waiter.lua" })
  assert.are.equal(0, code)
  return wf.id
end

-- These look at a workflow held in memory while it waits (passive ones: passive_spec.lua).
local IN_MEMORY = { SPINE_PASSIVATE_AFTER_MS = "0" }

local function wait_waiting(url, id)
  T.wait_until(function()
    return T.sql(url, "SELECT count(*) FROM spine.steps WHERE workflow_id = '" .. id ..
                      "' AND seq = 1 AND status = 'waiting'") == "1"
  end, 60, "the waiter to wait for go")
end

describe("a worker", function()
  it("writes nothing for a workflow whose claim moved on, and the new claim runs it", function()
    local url = T.newdb("spec_claims_fence")
    local srv = T.serve(url, IN_MEMORY)
    local id = start_waiter(url)
    wait_waiting(url, id)
    -- another claim, as a reaper and a new owner would make it: the worker still holds the
    -- workflow in memory with the old epoch
    T.sql(url, "UPDATE spine.workflows SET owner = NULL, epoch = epoch + 1, wake_at = now()" ..
               " WHERE id = '" .. id .. "'")
    assert.are.equal(0, (T.spine(url, { "signal", id, "go", "--data", '{"value":7}' })))
    T.wait_until(function() return status(url, id) == "completed" end, 60, "completion")
    T.kill(srv, "TERM")
    local log = T.log_of(srv)
    assert.matches("no longer this worker's; dropped here", log, 1, true)
    assert.are.equal("1", T.sql(url, "SELECT count(*) FROM spine.bench_effects WHERE" ..
                                     " workflow_id = '" .. id .. "'"))
    assert.are.equal("7", T.sql(url, "SELECT result->>'got' FROM spine.workflows WHERE id = '" ..
                                     id .. "'"))
  end)

  it("releases and replays a workflow whose next step the database already has", function()
    local url = T.newdb("spec_claims_dup")
    local srv = T.serve(url, IN_MEMORY)
    local id = start_waiter(url)
    wait_waiting(url, id)
    -- step 2 committed behind the worker's back (its log in memory ends at step 1)
    T.sql(url, "INSERT INTO spine.steps (workflow_id, seq, kind, name, status, result, attempt," ..
               " ended_at) VALUES ('" .. id .. "', 2, 'intent', 'BenchRecord', 'completed'," ..
               " '{\"recorded\": true}', 1, now())")
    assert.are.equal(0, (T.spine(url, { "signal", id, "go", "--data", '{"value":5}' })))
    T.wait_until(function() return status(url, id) == "completed" end, 60, "completion")
    T.kill(srv, "TERM")
    local log = T.log_of(srv)
    assert.matches("released to run again from its recorded steps", log, 1, true)
    assert.is_nil(log:find("dropped here", 1, true))
    -- the replay took the recorded step: the intent was not applied a second time
    assert.are.equal("0", T.sql(url, "SELECT count(*) FROM spine.bench_effects WHERE" ..
                                     " workflow_id = '" .. id .. "'"))
    assert.are.equal("1", T.sql(url, "SELECT lost_runs FROM spine.workflows WHERE id = '" ..
                                     id .. "'"))
  end)
end)
