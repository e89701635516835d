-- `spine replay --process P --sample N` (a CI check of a new playbook version against recent
-- histories) and `spine prune` (retention: steps, signals and delivered outbox rows of ended
-- workflows go, in batches; the business history stays), also on `spine serve`'s schedule.
local T = require("spine_test")

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

local function count(url, query)
  return tonumber(T.sql(url, query))
end

describe("spine replay --sample", function()
  it("replays recent histories against a file and exits 1 on the first divergence, naming run" ..
     " and step", function()
    local url = T.newdb("spec_replay_sample")
    local _, dir = T.sh("mktemp -d")
    dir = dir:gsub("%s+$", "")
    write(dir .. "/v1.lua", [[return { name = "sampled", run = function(ctx, input)
  ctx.intent("BenchRecord", { n = 1 })
  ctx.sleep("1d")
  ctx.intent("BenchRecord", { n = 2 })
  return {}
end }]])
    -- the same steps, another result: compatible
    write(dir .. "/same.lua", [[return { name = "sampled", run = function(ctx, input)
  ctx.intent("BenchRecord", { n = 1 })
  ctx.sleep("1d")
  ctx.intent("BenchRecord", { n = 2 })
  return { better = true }
end }]])
    -- a wait where the history slept: step 2 diverges
    write(dir .. "/changed.lua", [[return { name = "sampled", run = function(ctx, input)
  ctx.intent("BenchRecord", { n = 1 })
  ctx.wait("go", { timeout = "1d" })
  ctx.intent("BenchRecord", { n = 2 })
  return {}
end }]])
    for _ = 1, 3 do
      assert.are.equal(0, (T.spine(url, { "run", dir .. "/v1.lua", "--clock", "virtual" })))
    end
    local newest = T.sql(url, "SELECT id FROM spine.workflows ORDER BY created_at DESC, id DESC" ..
                              " LIMIT 1")

    local code, rep = T.spine_json(url, { "replay", "--process", "sampled", "--sample", "2",
                                          "--playbook", dir .. "/same.lua" })
    assert.are.equal(0, code)
    assert.are.equal(2, rep.replayed)
    assert.is_true(rep.deterministic)

    local out, err
    code, out, err = T.spine(url, { "replay", "--process", "sampled", "--sample", "2",
                                    "--playbook", dir .. "/changed.lua" })
    assert.are.equal(1, code)
    assert.matches("workflow " .. newest .. " diverges from " .. dir .. "/changed.lua at step 2",
                   err, 1, true)
    assert.matches("non-determinism at step 2", out, 1, true)
    code, rep = T.spine_json(url, { "replay", "--process", "sampled", "--sample", "2",
                                    "--playbook", dir .. "/changed.lua" })
    assert.are.equal(1, code)
    assert.are.equal(1, #rep.replays) -- it stopped at the first
    assert.are.equal(newest, rep.replays[1].id)
    assert.are.equal(2, rep.replays[1].divergence.step)

    code, _, err = T.spine(url, { "replay", "--process", "sampled" })
    assert.are.equal(2, code)
    assert.matches("--sample", err, 1, true)
    T.sh("rm -rf " .. T.q(dir))
  end)
end)

describe("spine prune", function()
  it("removes ended workflows' steps, signals and delivered deliveries in batches, keeping the" ..
     " business history and the workflows in flight", function()
    local url = T.newdb("spec_prune")
    -- three ended workflows that wrote business history, one still waiting
    for i = 1, 3 do
      assert.are.equal(0, (T.spine(url, { "run", "tests/playbooks/deadline.lua", "--clock",
                                          "virtual", "--input",
                                          ('{"timeout": "1s", "customer_id": "cust-%d"}'):format(i)
                                        })))
    end
    local srv = T.serve(url)
    local _, waiting = T.spine_json(url, { "start", "tests/playbooks/waiter.lua" })
    T.wait_until(function()
      return count(url, "SELECT count(*) FROM spine.outbox_deliveries WHERE status <> 'delivered'")
             == 0 and count(url, "SELECT count(*) FROM spine.workflows WHERE status = 'waiting'")
             == 1
    end, 60, "the events to be delivered and the waiter to wait")
    T.kill(srv, "TERM")
    T.sql(url, "INSERT INTO spine.signals (workflow_id, name) SELECT id, 'late' FROM" ..
               " spine.workflows WHERE status = 'completed'")
    local history = T.sql(url, "SELECT count(*) FROM lifecycle.history")
    local deliveries = count(url, "SELECT count(*) FROM spine.outbox_deliveries")
    assert.is_true(deliveries > 0, "no delivery to prune")
    assert.is_true(tonumber(history) > 0, "no business history")

    local code, rep = T.spine_json(url, { "prune", "--ended-before", "0s", "--batch", "1" })
    assert.are.equal(0, code)
    assert.are.equal(3, rep.workflows)
    assert.are.equal(3, rep.signals)
    assert.are.equal(deliveries, rep.deliveries)
    assert.is_true(rep.steps >= 6, "steps: " .. rep.steps)
    assert.is_true(rep.batches > 3, "one batch a row: " .. rep.batches)
    assert.is_true(rep.bytes > 0)
    assert.are.equal(0, count(url, "SELECT count(*) FROM spine.steps s JOIN spine.workflows w" ..
                                   " ON w.id = s.workflow_id WHERE w.ended_at IS NOT NULL"))
    assert.are.equal(history, T.sql(url, "SELECT count(*) FROM lifecycle.history"))
    local _, kept = T.spine_json(url, { "show", waiting.id })
    assert.are.equal("waiting", kept.status)
    assert.is_true(#kept.steps >= 1)
    local ended = T.sql(url, "SELECT id FROM spine.workflows WHERE status = 'completed' LIMIT 1")
    local _, pruned = T.spine_json(url, { "show", ended })
    assert.is_string(pruned.pruned_at)
    assert.are.equal("completed", pruned.status)
    -- a second prune finds nothing; the text says what it reclaimed
    local out
    code, out = T.spine(url, { "prune", "--ended-before", "0s" })
    assert.are.equal(0, code)
    assert.matches("pruned 0 workflows", out, 1, true)
    assert.matches("0 bytes reclaimed", out, 1, true)
    code = T.spine(url, { "prune", "--ended-before", "someday" })
    assert.are.equal(2, code)
  end)

  it("runs on spine serve's schedule and logs the bytes reclaimed", function()
    local url = T.newdb("spec_prune_serve")
    assert.are.equal(0, (T.spine(url, { "run", "tests/playbooks/saga.lua", "--clock", "virtual",
                                        "--input", '{"fail": false}' })))
    assert.is_true(count(url, "SELECT count(*) FROM spine.steps") > 0)
    local bad = T.serve(url, { SPINE_PRUNE_ENDED_BEFORE = "soon" })
    T.wait_until(function() return not T.alive(bad) end, 30, "serve to refuse the setting")
    assert.matches("SPINE_PRUNE_ENDED_BEFORE", T.log_of(bad), 1, true)
    local srv = T.serve(url, { SPINE_PRUNE_ENDED_BEFORE = "0s", SPINE_PRUNE_EVERY = "1s" })
    local line = T.wait_until(function()
      return T.log_of(srv):match('"msg":"pruned"[^\n]*"workflows":"1"[^\n]*')
    end, 60, "the scheduled prune")
    T.kill(srv, "TERM")
    assert.are.equal(0, count(url, "SELECT count(*) FROM spine.steps"))
    assert.is_true(tonumber(line:match('"bytes":"(%d+)"')) > 0, line)
  end)
end)
