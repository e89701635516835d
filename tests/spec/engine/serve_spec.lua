-- `spine serve`: workers sharing a database, killed with kill -9, taking over each other's work.
local T = require("spine_test")

local function count(url, where)
  return tonumber(T.sql(url, "SELECT count(*) FROM spine.workflows WHERE " .. where))
end

describe("spine serve", function()
  it("runs a started case, delivers a signal, and shows the result", function()
    local url = T.newdb("spec_serve_signal")
    local srv = T.serve(url)
    local code, started = T.spine_json(url, { "start", "tests/playbooks/waiter.lua" })
    assert.are.equal(0, code)
    T.wait_until(function()
      local _, wf = T.spine_json(url, { "show", started.id })
      return wf and wf.status == "waiting" and wf.waiting_for.name == "go"
    end, 30, "the workflow to wait for go")
    code = T.spine_json(url, { "signal", started.id, "go", "--data", '{"value": 42}' })
    assert.are.equal(0, code)
    local wf = T.wait_until(function()
      local _, w = T.spine_json(url, { "show", started.id })
      return w and w.status == "completed" and w
    end, 30, "the workflow to complete")
    assert.are.same({ got = 42 }, wf.result)
    T.kill(srv, "TERM")
  end)

  it("keeps a signal sent before the wait until the workflow asks for it", function()
    local url = T.newdb("spec_serve_early_signal")
    local code, started = T.spine_json(url, { "start", "tests/playbooks/waiter.lua" })
    assert.are.equal(0, code)
    assert.are.equal(0, (T.spine_json(url, { "signal", started.id, "go", "--data", '{"value":1}' })))
    assert.are.equal(0, (T.spine_json(url, { "signal", started.id, "go", "--data", '{"value":2}' })))
    local srv = T.serve(url)
    local wf = T.wait_until(function()
      local _, w = T.spine_json(url, { "show", started.id })
      return w and w.status == "completed" and w
    end, 30, "the workflow to complete")
    assert.are.same({ got = 1 }, wf.result) -- the first signal, in arrival order
    T.kill(srv, "TERM")
  end)

  it("applies every intent exactly once across a kill -9 with 1,000 workflows in flight", function()
    -- The kill must land while work remains: on a starved test machine the worker can finish
    -- all 10000 steps between two looks, so a late kill is tried again on a fresh database.
    local url, done_at_kill
    for try = 1, 3 do
      url = T.newdb("spec_serve_kill_" .. try)
      T.start_many(url, "tests/playbooks/intents10.lua", 1000)
      local srv = T.serve(url)
      T.wait_until(function()
        return tonumber(T.sql(url, "SELECT count(*) FROM spine.bench_effects")) >= 2000
      end, 120, "a fifth of the steps")
      T.kill(srv, "KILL")
      done_at_kill = tonumber(T.sql(url, "SELECT count(*) FROM spine.bench_effects"))
      if done_at_kill < 10000 then break end
    end
    assert.is_true(done_at_kill < 10000, "the kill came too late to test anything, three times")
    local srv2 = T.serve(url)
    T.wait_until(function() return count(url, "status = 'completed'") == 1000 end, 300,
                 "all 1000 workflows to complete")
    T.kill(srv2, "TERM")
    assert.are.equal("10000", T.sql(url, "SELECT count(*) FROM spine.bench_effects"))
    -- none twice: every (workflow, step) once, and every workflow has exactly 10
    assert.are.equal("10000", T.sql(url,
      "SELECT count(DISTINCT (workflow_id, seq)) FROM spine.bench_effects"))
    assert.are.equal("0", T.sql(url, "SELECT count(*) FROM (SELECT workflow_id FROM " ..
      "spine.bench_effects GROUP BY workflow_id HAVING count(*) <> 10) x"))
  end)

  it("lets a second worker finish the work of a killed one", function()
    local url = T.newdb("spec_serve_two")
    local a = T.serve(url, { SPINE_LEASE_MS = "3000" })
    local b = T.serve(url, { SPINE_LEASE_MS = "3000" })
    T.start_many(url, "tests/playbooks/waiter.lua", 200)
    T.wait_until(function() return count(url, "status = 'waiting'") == 200 end, 60,
                 "200 workflows waiting")
    -- kill the worker that holds the most of them (so at least half): the other takes over
    local busiest = tonumber(T.sql(url, "SELECT owner FROM spine.workflows GROUP BY owner " ..
                                        "ORDER BY count(*) DESC LIMIT 1"))
    local pid_of = tonumber(T.sql(url, "SELECT pid FROM spine.workers WHERE id = " .. busiest))
    local victim, survivor = a, b
    if pid_of == b.pid then victim, survivor = b, a end
    T.kill(victim, "KILL")
    -- signal every workflow; the survivor must finish all of them, the dead one's included
    T.sql(url, "WITH i AS (INSERT INTO spine.signals (workflow_id, name, payload) " ..
      "SELECT id, 'go', '{\"value\":5}' FROM spine.workflows RETURNING workflow_id), " ..
      "u AS (UPDATE spine.workflows SET wake_at = now() WHERE owner IS NULL " ..
      "AND status = 'waiting') SELECT count(pg_notify('spine', 's:' || workflow_id)) FROM i")
    T.wait_until(function() return count(url, "status = 'completed'") == 200 end, 120,
                 "the survivor to finish all 200")
    T.kill(survivor, "TERM")
    assert.are.equal("200", T.sql(url, "SELECT count(*) FROM spine.bench_effects"))
  end)

  it("pins waiting runs to their source while new runs take the edited playbook", function()
    local url = T.newdb("spec_serve_versions")
    local dir = os.tmpname() .. ".d"
    os.execute("mkdir -p " .. dir)
    local path = dir .. "/versioned.lua"
    local function write(body)
      local f = assert(io.open(path, "w"))
      f:write(body)
      f:close()
    end
    write([[return { name = "versioned", run = function(ctx, input)
      local got = ctx.wait("go")
      ctx.intent("BenchRecord", { n = 1 })
      return { version = 1 }
    end }]])
    local srv = T.serve(url)
    local _, old = T.spine_json(url, { "start", path })
    T.wait_until(function()
      local _, w = T.spine_json(url, { "show", old.id })
      return w and w.status == "waiting"
    end, 30, "the old run to wait")
    write([[return { name = "versioned", run = function(ctx, input)
      ctx.intent("BenchRecord", { n = 2 })
      local got = ctx.wait("go")
      return { version = 2 }
    end }]])
    local _, new = T.spine_json(url, { "start", path })
    assert.are_not.equal(old.version, new.version)
    -- the edit changes the step order: replaying the old history against it must say so
    local code, rep = T.spine_json(url, { "replay", old.id, "--playbook", path })
    assert.are.equal(1, code)
    assert.is_false(rep.deterministic)
    assert.matches("non%-determinism at step 1", rep.divergence.message)
    code, rep = T.spine_json(url, { "replay", old.id })
    assert.are.equal(0, code)
    assert.is_true(rep.deterministic)
    for _, id in ipairs({ old.id, new.id }) do
      T.wait_until(function()
        local _, w = T.spine_json(url, { "show", id })
        return w and w.status == "waiting"
      end, 30, "both runs to wait")
      T.spine_json(url, { "signal", id, "go" })
    end
    for id, version in pairs({ [old.id] = 1, [new.id] = 2 }) do
      local wf = T.wait_until(function()
        local _, w = T.spine_json(url, { "show", id })
        return w and w.status == "completed" and w
      end, 30, "the run to complete")
      assert.are.equal(version, wf.result.version)
    end
    T.kill(srv, "TERM")
    os.execute("rm -rf " .. dir)
  end)

  it("cancels a waiting workflow: its compensation runs and it ends cancelled", function()
    local url = T.newdb("spec_serve_cancel")
    local srv = T.serve(url)
    local _, started = T.spine_json(url, { "start", "tests/playbooks/cancellable.lua" })
    T.wait_until(function()
      local _, w = T.spine_json(url, { "show", started.id })
      return w and w.status == "waiting"
    end, 30, "the workflow to wait")
    local code, out = T.spine_json(url, { "cancel", started.id })
    assert.are.equal(0, code)
    assert.are.equal(started.id, out.id)
    local wf = T.wait_until(function()
      local _, w = T.spine_json(url, { "show", started.id })
      return w and w.status == "cancelled" and w
    end, 30, "the workflow to end cancelled")
    assert.are.equal("cancelled", wf.error.kind)
    assert.are.equal("1,-1", T.sql(url, "SELECT string_agg(n::text, ',' ORDER BY seq) FROM " ..
                                        "spine.bench_effects"))
    -- a second cancel is refused: the workflow has ended
    code, out = T.spine_json(url, { "cancel", started.id })
    assert.are.equal(1, code)
    assert.are.equal("invalid_transition", out.error.code)
    T.kill(srv, "TERM")
  end)

  it("evicts an idle waiting workflow and replays it when its signal comes", function()
    local url = T.newdb("spec_serve_evict")
    local srv = T.serve(url, { SPINE_EVICT_AFTER_MS = "1", SPINE_LEASE_MS = "1000" })
    local _, started = T.spine_json(url, { "start", "tests/playbooks/waiter.lua" })
    T.wait_until(function()
      return T.sql(url, "SELECT status || ':' || coalesce(owner::text, 'free') FROM " ..
                        "spine.workflows WHERE id = '" .. started.id .. "'") == "waiting:free"
    end, 30, "the waiting workflow to leave memory")
    assert.are.equal(0, (T.spine_json(url, { "signal", started.id, "go", "--data",
                                              '{"value": 9}' })))
    local wf = T.wait_until(function()
      local _, w = T.spine_json(url, { "show", started.id })
      return w and w.status == "completed" and w
    end, 30, "the evicted workflow to complete")
    assert.are.same({ got = 9 }, wf.result)
    assert.are.equal(2, #wf.steps) -- the wait and the intent, each once
    T.kill(srv, "TERM")
  end)
end)

