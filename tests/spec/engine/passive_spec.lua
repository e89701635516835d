-- Passive workflows: one that waited SPINE_PASSIVATE_AFTER_MS leaves its coroutine and keeps
-- only its claim, its deadline and its id; a signal, its deadline, a cancel or a child's end
-- loads its row again and replays it on the same worker, as a claim would.
local T = require("spine_test")

local function metrics(srv)
  local status, body = T.http("GET", "http://127.0.0.1:" .. T.http_port(srv) .. "/metrics")
  assert(status == 200, "GET /metrics answered " .. status)
  return body
end

local function metric(srv, name)
  return T.metric(metrics(srv), name)
end

local function show(url, id)
  local _, w = T.spine_json(url, { "show", id })
  return w
end

local function ended(url, id, status)
  return T.wait_until(function()
    local w = show(url, id)
    return w and w.status == status and w
  end, 60, id .. " to end " .. status)
end

-- Waits until `n` more workflows than `before` became passive; returns the new count.
local function passivated(srv, before, n)
  return T.wait_until(function()
    local now = metric(srv, "spine_workflows_passivated_total")
    return now >= before + n and now
  end, 60, n .. " workflow(s) to become passive")
end

local function owner_of(url, id)
  return T.sql(url, "SELECT status || ':' || coalesce(owner::text, 'free') FROM spine.workflows" ..
                    " WHERE id = '" .. id .. "'")
end

describe("passive workflows", function()
  local url, srv, dir
  setup(function()
    url = T.newdb("spec_passive")
    srv = T.serve(url, { SPINE_PASSIVATE_AFTER_MS = "1" })
    dir = T.tmpfile()
    os.execute("mkdir -p " .. dir)
  end)
  teardown(function()
    T.kill(srv, "TERM")
    os.execute("rm -rf " .. dir)
  end)

  it("keep their claim without a coroutine, and a signal replays them here", function()
    local before = metric(srv, "spine_workflows_passivated_total")
    local woken = metric(srv, "spine_workflows_activated_total")
    local _, started = T.spine_json(url, { "start", "tests/playbooks/waiter.lua" })
    passivated(srv, before, 1)
    assert.are.equal(1, metric(srv, "spine_workflows_passive"))
    assert.are.equal(1, metric(srv, "spine_workflows_live")) -- held, passive ones included
    local worker = T.sql(url, "SELECT id FROM spine.workers")
    assert.are.equal("waiting:" .. worker, owner_of(url, started.id)) -- still this worker's
    assert.are.equal(0, (T.spine_json(url, { "signal", started.id, "go", "--data",
                                              '{"value": 7}' })))
    local wf = ended(url, started.id, "completed")
    assert.are.same({ got = 7 }, wf.result)
    assert.are.equal(2, #wf.steps) -- the wait and the intent, each once
    assert.is_true(metric(srv, "spine_workflows_activated_total") > woken)
    assert.are.equal(0, metric(srv, "spine_workflows_passive"))
  end)

  it("wake at their deadline: each sleep of a ticker replays it once more", function()
    local woken = metric(srv, "spine_workflows_activated_total")
    local _, started = T.spine_json(url, { "start", "tests/playbooks/ticker.lua", "--input",
                                           '{"ticks": 3, "every": "1s"}' })
    local wf = ended(url, started.id, "completed")
    assert.are.same({ ticks = 3 }, wf.result)
    assert.are.equal(3, #wf.steps)
    -- each sleep passivated it: woken by its timer, it replayed the sleeps before
    assert.is_true(metric(srv, "spine_workflows_activated_total") >= woken + 3)
  end)

  it("are cancelled: the replay raises the cancel where it waits, and the undo runs", function()
    local before = metric(srv, "spine_workflows_passivated_total")
    local _, started = T.spine_json(url, { "start", "tests/playbooks/cancellable.lua" })
    passivated(srv, before, 1)
    assert.are.equal(0, (T.spine_json(url, { "cancel", started.id })))
    local wf = ended(url, started.id, "cancelled")
    assert.are.equal("cancelled", wf.error.kind)
    assert.are.equal("1,-1", T.sql(url, "SELECT string_agg(n::text, ',' ORDER BY seq) FROM" ..
                                        " spine.bench_effects WHERE workflow_id = '" ..
                                        started.id .. "'"))
  end)

  it("hear their child's end: parent and child both passive, the child's signal wakes both",
     function()
    local parent = dir .. "/parent_of_waiter.lua"
    T.write(parent, [[return { name = "parent_of_waiter", run = function(ctx)
      local r = ctx.child("tests/playbooks/waiter.lua", {})
      return { child_got = r.got }
    end }]])
    local before = metric(srv, "spine_workflows_passivated_total")
    local _, started = T.spine_json(url, { "start", parent })
    passivated(srv, before, 2)
    local child = T.sql(url, "SELECT id FROM spine.workflows WHERE parent_id = '" ..
                             started.id .. "'")
    assert.are.equal(0, (T.spine_json(url, { "signal", child, "go", "--data", '{"value": 5}' })))
    local wf = ended(url, started.id, "completed")
    assert.are.same({ child_got = 5 }, wf.result)
    assert.are.equal("completed", show(url, child).status)
  end)

  it("many at once: fifty passive workflows signalled together each take their own signal",
     function()
    local before = metric(srv, "spine_workflows_passivated_total")
    local first = T.start_many(url, "tests/playbooks/waiter.lua", 50)
    passivated(srv, before, 50)
    T.sql(url, "SELECT spine.signal_workflow(id, 'go', jsonb_build_object('value', length(id)))" ..
               " FROM spine.workflows WHERE id LIKE 'bulk-%' OR id = '" .. first .. "'")
    T.wait_until(function()
      return T.sql(url, "SELECT count(*) FROM spine.workflows WHERE (id LIKE 'bulk-%' OR id = '" ..
                        first .. "') AND status = 'completed'") == "50"
    end, 60, "the fifty workflows to complete")
    assert.are.equal("0", T.sql(url, "SELECT count(*) FROM spine.workflows WHERE (id LIKE" ..
                                     " 'bulk-%' OR id = '" .. first .. "') AND" ..
                                     " (result->>'got')::int <> length(id)"))
    assert.are.equal(0, metric(srv, "spine_workflows_passive"))
  end)
end)

describe("SPINE_PASSIVATE_AFTER_MS", function()
  it("refuses what is not a whole number of milliseconds, naming the variable", function()
    local url = T.newdb("spec_passive_env")
    local code, _, err = T.spine(url, { "serve" }, { SPINE_PASSIVATE_AFTER_MS = "1s",
                                                     SPINE_LISTEN = "127.0.0.1:0" })
    assert.are.equal(2, code)
    assert.matches('SPINE_PASSIVATE_AFTER_MS must be a whole number of milliseconds, at least 0' ..
                   ' (got "1s")', err, 1, true)
  end)
end)

describe("a passive workflow whose claim moved on", function()
  it("is dropped when it wakes, writing nothing, and the new claim runs it once", function()
    local url = T.newdb("spec_passive_fence")
    local srv = T.serve(url, { SPINE_PASSIVATE_AFTER_MS = "1" })
    local _, started = T.spine_json(url, { "start", "tests/playbooks/waiter.lua" })
    passivated(srv, 0, 1)
    -- another claim, as a reaper and a new owner would make it, without telling the worker
    T.sql(url, "UPDATE spine.workflows SET owner = NULL, epoch = epoch + 1, wake_at = now()" ..
               " WHERE id = '" .. started.id .. "'")
    assert.are.equal(0, (T.spine_json(url, { "signal", started.id, "go", "--data",
                                              '{"value": 4}' })))
    local wf = ended(url, started.id, "completed")
    assert.are.same({ got = 4 }, wf.result)
    T.kill(srv, "TERM")
    assert.matches("passive: its row has another claim", T.log_of(srv), 1, true)
    assert.are.equal("1", T.sql(url, "SELECT count(*) FROM spine.bench_effects WHERE" ..
                                     " workflow_id = '" .. started.id .. "'"))
  end)
end)

describe("a passive workflow idle past SPINE_EVICT_AFTER_MS", function()
  it("leaves memory with its claim handed back, and a claim replays it when its signal comes",
     function()
    local url = T.newdb("spec_passive_evict")
    local srv = T.serve(url, { SPINE_PASSIVATE_AFTER_MS = "1", SPINE_EVICT_AFTER_MS = "1",
                               SPINE_LEASE_MS = "1000" })
    local _, started = T.spine_json(url, { "start", "tests/playbooks/waiter.lua" })
    passivated(srv, 0, 1)
    T.wait_until(function() return owner_of(url, started.id) == "waiting:free" end, 30,
                 "the passive workflow's claim to be handed back")
    T.wait_until(function() return metric(srv, "spine_workflows_passive") == 0 end, 30,
                 "the passive record to go")
    assert.are.equal(0, (T.spine_json(url, { "signal", started.id, "go", "--data",
                                              '{"value": 6}' })))
    local wf = ended(url, started.id, "completed")
    assert.are.same({ got = 6 }, wf.result)
    assert.are.equal(2, #wf.steps)
    T.kill(srv, "TERM")
  end)
end)

describe("a worker killed while it holds passive workflows", function()
  it("leaves them to the next worker, which replays them when their signal comes", function()
    local url = T.newdb("spec_passive_kill")
    local env = { SPINE_PASSIVATE_AFTER_MS = "1", SPINE_LEASE_MS = "1000" }
    local srv = T.serve(url, env)
    local _, started = T.spine_json(url, { "start", "tests/playbooks/waiter.lua" })
    passivated(srv, 0, 1)
    T.kill(srv, "KILL")
    local srv2 = T.serve(url, env)
    assert.are.equal(0, (T.spine_json(url, { "signal", started.id, "go", "--data",
                                              '{"value": 3}' })))
    local wf = ended(url, started.id, "completed")
    assert.are.same({ got = 3 }, wf.result)
    assert.are.equal("1", T.sql(url, "SELECT count(*) FROM spine.bench_effects")) -- once
    T.kill(srv2, "TERM")
  end)
end)
