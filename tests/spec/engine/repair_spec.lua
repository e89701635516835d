-- Repairing runs in flight (issue 15 §4), against a real database and real `spine serve`
-- workers: a process's max_duration fails a run past it (durably, across a restart), `spine
-- migrate` moves waiting runs across a ctx.patched change and refuses the others, `spine fork`
-- carries a run on from one of its steps on a fixed playbook. The SQL functions behind them
-- are runtime/sql/0013_repair.sql.
local T = require("spine_test")
local S = require("spine.testing")

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

local function tmpdir()
  local _, dir = T.sh("mktemp -d")
  return (dir:gsub("%s+$", ""))
end

local function show(url, id)
  local _, wf = T.spine_json(url, { "show", id })
  return wf
end

local function wait_status(url, id, status)
  return T.wait_until(function()
    local w = show(url, id)
    return w and w.status == status and w
  end, 60, "workflow " .. id .. " to be " .. status, nil, 3)
end

local function effects(url)
  return T.sql(url, "SELECT coalesce(string_agg(n::text, ',' ORDER BY seq), '') FROM" ..
                    " spine.bench_effects")
end

describe("a process's max_duration", function()
  local dir, env
  before_each(function()
    dir = tmpdir()
    write(dir .. "/cancellable.json", [[{
  "process": "cancellable",
  "input": { "customer": "string" },
  "subject": "customer",
  "max_duration": "20d",
  "variants": [ { "name": "control", "playbook": "tests/playbooks/cancellable.lua", "weight": 100 } ]
}]])
  end)
  after_each(function()
    if env then env:close() end
    env = nil
    T.sh("rm -rf " .. T.q(dir))
  end)

  it("fails a run past it with its compensations, across a restart, and explain says so",
     function()
    env = S.new({ manifests = dir, now = "2026-03-01T00:00:00Z", simulate = {} })
    local case = env:start("cancellable", { customer = "c-1" })
    case:wait_for_status("waiting")
    assert.are.equal("20d", case:show().max_duration)
    assert.are.equal("2026-03-21T00:00:00.000Z", case:show().deadline_at)
    env:restart("KILL") -- the deadline is a column, not a timer in memory
    env:advance("19d")
    assert.are.equal("waiting", case:status())
    env:advance("2d")
    local wf = case:wait_for_status("failed")
    assert.are.equal("max_duration", wf.error.code)
    assert.are.equal("1,-1", effects(env.url)) -- the booking and its undo
    local text = case:explain()
    assert.matches("ran past the max_duration of its process (20d", text, 1, true)
    assert.matches("its compensations ran", text, 1, true)
    -- a fork of it carries the case on with a full max_duration again, not expiring at once
    local fork = env:spine_json({ "fork", case.id, "--from-step", "1" })
    local forked = env:case(fork.id)
    forked:wait_for_status("waiting")
    assert.are.equal("2026-04-11T00:00:00.000Z", forked:show().deadline_at)
  end)

  it("is refused in a manifest when it is not a duration, naming file, line and field",
     function()
    write(dir .. "/cancellable.json", [[{
  "process": "cancellable",
  "input": { "customer": "string" },
  "subject": "customer",
  "max_duration": "soon",
  "variants": [ { "name": "control", "playbook": "tests/playbooks/cancellable.lua", "weight": 100 } ]
}]])
    local url = T.newdb("spec_repair_manifest")
    local code, out, err = T.spine(url, { "manifests", "check" }, { SPINE_MANIFESTS = dir })
    assert.are.equal(1, code)
    assert.matches(dir .. "/cancellable.json:5: max_duration:", out .. err, 1, true)
  end)
end)

describe("spine migrate", function()
  local v1 = [[return { name = "mig", run = function(ctx, input)
  ctx.intent("BenchRecord", { n = 1 })
  local got = ctx.wait("go")
  ctx.intent("BenchRecord", { n = 2 })
  return { version = 1, got = got.value }
end }]]
  -- a new step before the wait, for new runs only: runs in flight replay without it
  local patched = [[return { name = "mig", run = function(ctx, input)
  if ctx.patched("audit-first") then ctx.intent("BenchRecord", { n = 10 }) end
  ctx.intent("BenchRecord", { n = 1 })
  local got = ctx.wait("go")
  ctx.intent("BenchRecord", { n = 20 })
  return { version = 2, got = got.value }
end }]]
  -- the same change without the patch: runs in flight would replay another step
  local unpatched = [[return { name = "mig", run = function(ctx, input)
  ctx.intent("BenchRecord", { n = 10 })
  ctx.wait("audit")
  ctx.intent("BenchRecord", { n = 1 })
  local got = ctx.wait("go")
  return { version = 3 }
end }]]

  it("moves waiting runs across a ctx.patched change after a dry run, refusing an unpatched one",
     function()
    local url = T.newdb("spec_repair_migrate")
    local dir = tmpdir()
    write(dir .. "/v1.lua", v1)
    write(dir .. "/v2.lua", patched)
    write(dir .. "/v3.lua", unpatched)
    local srv = T.serve(url)
    local ids = {}
    for i = 1, 2 do
      local _, wf = T.spine_json(url, { "start", dir .. "/v1.lua" })
      ids[i] = wf.id
      wait_status(url, wf.id, "waiting")
    end
    local v1_version = show(url, ids[1]).version

    -- the unpatched change: refused, naming the run and its first divergence; nothing moves
    local code, rep = T.spine_json(url, { "migrate", "--process", "mig", "--to", dir .. "/v3.lua",
                                          "--apply" })
    assert.are.equal(1, code)
    assert.are.equal(2, rep.refused)
    assert.are.equal("refused", rep.workflows[1].result)
    assert.matches("non%-determinism at step 2", rep.workflows[1].divergence)
    assert.are.equal(v1_version, show(url, ids[1]).version)

    -- the patched one: a dry run first, changing nothing
    code, rep = T.spine_json(url, { "migrate", "--process", "mig", "--to", dir .. "/v2.lua" })
    assert.are.equal(0, code)
    assert.is_true(rep.dry_run)
    assert.are.same({ "would move", "would move" },
                    { rep.workflows[1].result, rep.workflows[2].result })
    assert.are.equal(v1_version, show(url, ids[1]).version)

    -- --where narrows it to one run; --apply moves it
    T.sql(url, "UPDATE spine.workflows SET attributes = '{\"batch\": \"a\"}' WHERE id = '" ..
               ids[1] .. "'")
    code, rep = T.spine_json(url, { "migrate", "--process", "mig", "--to", dir .. "/v2.lua",
                                    "--where", "attribute.batch=a", "--apply" })
    assert.are.equal(0, code)
    assert.are.equal(1, #rep.workflows)
    assert.are.equal(ids[1], rep.workflows[1].id)
    assert.are.equal("moved", rep.workflows[1].result)
    local moved = show(url, ids[1])
    assert.are.equal(rep.to, moved.version)
    assert.are.equal(v1_version, moved.migrated_from)

    -- the moved run goes on with the new version's code, without the patched step; the other
    -- keeps its own; a new run takes the patched branch
    wait_status(url, ids[1], "waiting")
    for _, id in ipairs(ids) do T.spine(url, { "signal", id, "go", "--data", '{"value": 7}' }) end
    local done = wait_status(url, ids[1], "completed")
    local other = wait_status(url, ids[2], "completed")
    assert.are.same({ version = 2, got = 7 }, done.result)
    assert.are.same({ version = 1, got = 7 }, other.result)
    local _, fresh = T.spine_json(url, { "start", dir .. "/v2.lua" })
    wait_status(url, fresh.id, "waiting")
    T.kill(srv, "TERM")
    local kinds = {}
    for _, s in ipairs(show(url, fresh.id).steps) do kinds[#kinds + 1] = s.kind end
    assert.are.same({ "patch", "intent", "intent", "wait" }, kinds)
    -- v1's run: 1 then 2; the moved run: 1 then v2's 20; the new run: v2's 10 then 1
    assert.are.equal("1,1,1,2,10,20", T.sql(url, "SELECT string_agg(n::text, ',' ORDER BY n)" ..
                                                 " FROM spine.bench_effects"))
    T.sh("rm -rf " .. T.q(dir))
  end)
end)

describe("spine fork", function()
  local buggy = [[return { name = "forked", run = function(ctx, input)
  ctx.intent("BenchRecord", { n = 1 })
  local got = ctx.wait("go")
  if got.value > 5 then error("values above 5 are not handled") end
  return { got = got.value }
end }]]
  local fixed = [[return { name = "forked", run = function(ctx, input)
  ctx.intent("BenchRecord", { n = 1 })
  local got = ctx.wait("go")
  return { got = got.value, fixed = true }
end }]]
  local other = [[return { name = "forked", run = function(ctx, input)
  ctx.wait("go")
  return {}
end }]]

  it("carries a failed run on from a step on a fixed playbook, with the signals it took after",
     function()
    local url = T.newdb("spec_repair_fork")
    local dir = tmpdir()
    write(dir .. "/buggy.lua", buggy)
    write(dir .. "/fixed.lua", fixed)
    write(dir .. "/other.lua", other)
    local srv = T.serve(url)
    local _, wf = T.spine_json(url, { "start", dir .. "/buggy.lua" })
    wait_status(url, wf.id, "waiting")
    T.spine(url, { "signal", wf.id, "go", "--data", '{"value": 7}' })
    wait_status(url, wf.id, "failed")

    -- refused: a step past the history, a playbook that diverges from steps 1 to N
    local code, err = T.spine_json(url, { "fork", wf.id, "--from-step", "9" })
    assert.are.equal(1, code)
    assert.are.equal("from_step", err.error.field)
    code, err = T.spine_json(url, { "fork", wf.id, "--from-step", "1", "--playbook",
                                    dir .. "/other.lua" })
    assert.are.equal(1, code)
    assert.are.equal("playbook", err.error.field)
    assert.matches("diverges from the history at non%-determinism at step 1", err.error.message)
    assert.are.equal("0", T.sql(url, "SELECT count(*) FROM spine.workflows WHERE forked_from" ..
                                     " IS NOT NULL"))

    local fork
    code, fork = T.spine_json(url, { "fork", wf.id, "--from-step", "1", "--playbook",
                                     dir .. "/fixed.lua" })
    assert.are.equal(0, code)
    assert.are.same({ id = wf.id, status = "failed" }, fork.original) -- ended: left as it is
    local done = wait_status(url, fork.id, "completed")
    T.kill(srv, "TERM")
    assert.are.same({ got = 7, fixed = true }, done.result) -- the signal it took again
    assert.are.equal("1", effects(url)) -- step 1 replayed from the history, not applied again
    assert.are.equal(wf.id, done.forked_from)
    assert.are.equal(1, done.forked_at_step)
    assert.are.same({ { id = fork.id, from_step = 1 } }, show(url, wf.id).forks)
    local _, text = T.spine(url, { "show", wf.id })
    assert.matches("fork      " .. fork.id .. " (from step 1)", text, 1, true)
    T.sh("rm -rf " .. T.q(dir))
  end)

  it("supersedes a waiting original without its compensations, or keeps it with --keep",
     function()
    local url = T.newdb("spec_repair_fork_waiting")
    local srv = T.serve(url)
    local ids = {}
    for i = 1, 2 do
      local _, wf = T.spine_json(url, { "start", "tests/playbooks/cancellable.lua" })
      ids[i] = wf.id
      wait_status(url, wf.id, "waiting")
    end
    local _, superseding = T.spine_json(url, { "fork", ids[1], "--from-step", "1" })
    local _, keeping = T.spine_json(url, { "fork", ids[2], "--from-step", "1", "--keep" })
    assert.are.same({ id = ids[1], status = "cancelled" }, superseding.original)
    assert.are.same({ id = ids[2], status = "waiting" }, keeping.original)
    wait_status(url, superseding.id, "waiting")
    wait_status(url, keeping.id, "waiting")
    local original = show(url, ids[1])
    assert.are.equal("superseded", original.error.code)
    assert.are.equal("waiting", show(url, ids[2]).status)
    -- the original's worker dropped it: a cancel of the fork compensates once, the original never
    T.spine(url, { "cancel", superseding.id })
    wait_status(url, superseding.id, "cancelled")
    T.kill(srv, "TERM")
    assert.are.equal("1,1,-1", effects(url))
  end)

  it("forks over HTTP with workflows:operate, on the workflow's own version", function()
    local url = T.newdb("spec_repair_fork_http")
    local srv = T.serve(url)
    local base = "http://127.0.0.1:" .. T.http_port(srv)
    local _, tok = T.spine_json(url, { "tokens", "create", "--subject", "ops:alice", "--scopes",
                                       "workflows:operate" })
    local _, reader = T.spine_json(url, { "tokens", "create", "--subject", "ops:bob", "--scopes",
                                          "workflows:read" })
    local _, wf = T.spine_json(url, { "start", "tests/playbooks/cancellable.lua" })
    wait_status(url, wf.id, "waiting")
    local function post(token, body)
      local status, text = T.http("POST", base .. "/v1/workflows/" .. wf.id .. "/fork",
                                  { body = body, headers = { "Authorization: Bearer " .. token } })
      return status, T.json.decode(text)
    end
    assert.are.equal(403, (post(reader.token, '{"from_step": 1}')))
    local status, bad = post(tok.token, '{"from_step": "one"}')
    assert.are.equal(400, status)
    assert.are.equal("from_step", bad.error.field)
    status, bad = post(tok.token, '{"from_step": 2}') -- the wait has not completed
    assert.are.equal(400, status)
    assert.matches("step 2 %(wait%) is waiting", bad.error.message)
    local fork
    status, fork = post(tok.token, '{"from_step": 1}')
    assert.are.equal(201, status)
    wait_status(url, fork.id, "waiting")
    T.kill(srv, "TERM")
    local original = show(url, wf.id)
    assert.are.equal("cancelled", original.status)
    assert.are.equal("ops:alice", original.cancelled_by)
    assert.are.equal(wf.id, show(url, fork.id).forked_from)
  end)
end)
