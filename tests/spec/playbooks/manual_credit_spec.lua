-- manual_credit (playbooks/manual_credit.lua): an operator's credit, applied at once up to
-- 100.00 EUR, above it only with a second person's approval. On the real engine with the manual
-- clock (spine.testing): the approval deadlines pass with env:advance, and approvers answer as
-- operators do, with ResolveTask (which signals task.resolved to the case that opened the task).
-- Each case's history replays against its playbook.
local S = require("spine.testing")

local HOUR, DAY = 3600, 86400

-- Customer <p>-cu, with its account.
local function customer(env, p)
  env:intent("RegisterCustomer", { customer_id = p .. "-cu", name = "Erika Mustermann",
                                   email = "erika@example.org" })
  return p .. "-cu"
end

local function credit(cu, amount, extra)
  local input = { customer_id = cu, amount_cents = amount, reason = "billing error 2026-10",
                  requested_by = "ops:jane" }
  for k, v in pairs(extra or {}) do input[k] = v end
  return input
end

local function credits(env, cu)
  return env:sql("SELECT credit_id, amount_cents, approved_by, actor FROM lifecycle.credits" ..
                 " WHERE customer_id = " .. S.literal(cu))
end

-- The tasks of a subject, oldest first.
local function tasks(env, subject)
  return env:sql("SELECT task_id, kind, status, outcome, resolved_by, data, workflow_id," ..
                 " extract(epoch from due)::float8 AS due FROM lifecycle.tasks" ..
                 " WHERE subject = " .. S.literal(subject) ..
                 " ORDER BY created_at, resolved_at NULLS LAST, task_id")
end

-- The first step of `kind` and `name`, or nil.
local function step(case, kind, name)
  for _, s in ipairs(case:steps()) do
    if s.kind == kind and s.name == name then return s end
  end
end

-- "intent entity before>after" of each history row the case wrote (status of a task).
local function history(case)
  local list = {}
  for _, h in ipairs(case:intents()) do
    local function st(v) return v and (v.status or "-") or "-" end
    list[#list + 1] = h.intent .. " " .. h.entity .. " " .. st(h.before) .. ">" .. st(h.after)
  end
  return list
end

-- Starts a case above the threshold; returns it and its first task, once it waits.
local function start_approval(env, cu, amount, extra)
  local case = env:start("manual_credit", credit(cu, amount, extra))
  assert.are.equal("awaiting_approval", case:state())
  return case, tasks(env, cu)[1]
end

describe("manual_credit", function()
  local env
  setup(function()
    env = S.new({ now = "2026-10-05T09:00:00Z" })
  end)
  teardown(function()
    if env then env:close() end
  end)

  it("credits up to 100.00 EUR at once, without asking anyone", function()
    local cu = customer(env, "small")
    local case = env:start("manual_credit", credit(cu, 10000))
    assert.are.equal("completed", case:status())
    assert.are.equal("credited", case:state())
    assert.are.same({ "intent ApplyManualCredit" }, case:step_names())
    assert.are.same({ credit_id = case.id, balance_cents = 10000, currency = "EUR" },
                    case:result())
    assert.are.same({ { credit_id = case.id, amount_cents = 10000,
                        actor = "workflow:" .. case.id } }, credits(env, cu))
    assert.are.same({}, tasks(env, cu))
    assert.are.same({ "ApplyManualCredit credit ->-" }, history(case))
    assert.is_true((case:replays()))
  end)

  it("escalates an unanswered approval to the team leads once, then expires crediting nothing",
     function()
    local cu = customer(env, "expiry")
    local case, first = start_approval(env, cu, 25000)
    local asked = env:now()
    assert.are.equal(asked + 2 * DAY, first.due)
    env:advance(2 * DAY - 60)
    assert.are.equal("awaiting_approval", case:state())
    assert.are.equal(1, #tasks(env, cu))
    env:advance("60s")
    assert.are.equal("escalated", case:state())
    assert.are.equal(2, #tasks(env, cu))
    env:advance("2d")
    assert.are.equal("failed", case:status())
    local err = case:error()
    assert.are.same({ kind = "business", code = "approval_expired" },
                    { kind = err.kind, code = err.code })
    assert.are.equal("expired", case:state())
    local t = tasks(env, cu)
    assert.are.same({ "credit_approval", "credit_approval_escalated" }, { t[1].kind, t[2].kind })
    assert.are.same({ "escalated", "expired" }, { t[1].outcome, t[2].outcome })
    assert.are.same({ "workflow:" .. case.id, "workflow:" .. case.id },
                    { t[1].resolved_by, t[2].resolved_by })
    assert.are.equal(t[1].task_id, t[2].data.escalated_from)
    assert.are.equal(25000, t[1].data.amount_cents)
    assert.are.same({ case.id, case.id }, { t[1].workflow_id, t[2].workflow_id })
    assert.are.equal(asked + 4 * DAY, t[2].due)
    -- closing its own tasks, the case got no task.resolved about them
    assert.are.equal(0, env:sql1("SELECT count(*) FROM spine.signals WHERE workflow_id = " ..
                                 S.literal(case.id)))
    assert.are.same({}, credits(env, cu))
    assert.are.same({ "CreateTask task ->open", "ResolveTask task open>resolved",
                      "CreateTask task ->open", "ResolveTask task open>resolved" },
                    history(case))
    assert.is_true((case:replays()))
  end)

  it("takes the threshold and the approval timeout from the case", function()
    local cu = customer(env, "threshold")
    local case = start_approval(env, cu, 2000, { approval_threshold_cents = 1000,
                                                 approval_timeout = "3h" })
    local asked = step(case, "now", "now").result
    assert.are.equal(math.floor(asked) + 3 * HOUR, math.floor(tasks(env, cu)[1].due))
    env:advance("3h")
    assert.are.equal("escalated", case:state())
    env:advance("3h")
    assert.are.equal("approval_expired", case:error().code)
    assert.are.same({}, credits(env, cu))
    assert.is_true((case:replays()))
  end)

  it("credits above 100.00 EUR once a second person approves", function()
    local cu = customer(env, "approved")
    local case, task = start_approval(env, cu, 25000)
    assert.are.equal("credit_approval", task.kind)
    assert.are.equal(cu, task.data.customer_id)
    env:advance("1d")
    env:resolve_task(task.task_id, "approved", nil, "ops:bob")
    assert.are.equal("completed", case:status())
    local result = case:result()
    assert.are.equal("ops:bob", result.approved_by)
    assert.are.equal(25000, result.balance_cents)
    assert.are.same({ { credit_id = case.id, amount_cents = 25000, approved_by = "ops:bob",
                        actor = "workflow:" .. case.id } }, credits(env, cu))
    local steps = {}
    for _, n in ipairs(case:step_names()) do
      if not n:match("^now ") then steps[#steps + 1] = n end
    end
    assert.are.same({ "intent CreateTask", "wait task.resolved", "intent GetTask",
                      "intent ApplyManualCredit" }, steps)
    assert.are.same({ "CreateTask task ->open", "ApplyManualCredit credit ->-" }, history(case))
    assert.is_true((case:replays()))
  end)

  it("does not count an approval by the requester and asks again", function()
    local cu = customer(env, "self")
    local case, task = start_approval(env, cu, 25000)
    env:resolve_task(task.task_id, "approved", nil, "ops:jane")
    assert.are.equal("awaiting_approval", case:state())
    local t = tasks(env, cu)
    assert.are.equal(2, #t)
    assert.are.same({ "resolved", "open" }, { t[1].status, t[2].status })
    assert.are.equal("credit_approval", t[2].kind)
    assert.are.same({}, credits(env, cu))
    env:resolve_task(t[2].task_id, "approved", nil, "ops:bob")
    assert.are.equal("completed", case:status())
    assert.are.equal("ops:bob", case:result().approved_by)
    assert.are.equal(1, #credits(env, cu))
    assert.is_true((case:replays()))
  end)

  it("ends as a business failure crediting nothing when the approver rejects", function()
    local cu = customer(env, "rejected")
    local case, task = start_approval(env, cu, 25000)
    env:resolve_task(task.task_id, "rejected", nil, "ops:bob")
    assert.are.equal("failed", case:status())
    local err = case:error()
    assert.are.same({ kind = "business", code = "credit_rejected", state = "rejected" },
                    { kind = err.kind, code = err.code, state = case:state() })
    assert.matches("ops:bob did not approve the credit (rejected)", err.message, 1, true)
    assert.are.same({}, credits(env, cu))
    assert.is_true((case:replays()))
  end)

  it("ignores a forged task.resolved signal: the answer is read from the task", function()
    local cu = customer(env, "forged")
    local case, task = start_approval(env, cu, 25000)
    case:signal("task.resolved", { task_id = task.task_id, outcome = "approved",
                                   resolved_by = "ops:bob" })
    case:signal("task.resolved", { task_id = "another-task" })
    -- the one about its task is taken, checked against the task and ignored; the one about
    -- another task is not this case's wait's (ctx.wait's match): it stays queued
    local taken = 0
    for _, s in ipairs(case:steps()) do
      if s.kind == "wait" and s.status == "completed" then taken = taken + 1 end
    end
    assert.are.equal(1, taken)
    assert.are.equal(1, env:sql1("SELECT count(*) FROM spine.signals WHERE workflow_id = " ..
                                 S.literal(case.id) .. " AND consumed_seq IS NULL" ..
                                 " AND payload ->> 'task_id' = 'another-task'"))
    assert.are.equal("waiting", case:status())
    assert.are.equal("open", step(case, "intent", "GetTask").result.status)
    assert.are.same({}, credits(env, cu))
    env:resolve_task(task.task_id, "approved", nil, "ops:bob")
    assert.are.equal("completed", case:status())
    assert.are.equal("ops:bob", case:result().approved_by)
    assert.is_true((case:replays()))
  end)

  it("takes an approval given just before the deadline whose signal was not taken", function()
    local cu = customer(env, "late")
    local case, task = start_approval(env, cu, 25000)
    env:advance(2 * DAY - 60)
    -- approved, but its signal lost (in the same transaction): only the deadline wakes the case
    env:exec("SELECT lifecycle.resolve_task(" ..
             S.literal(S.json.encode({ task_id = task.task_id, outcome = "approved" })) ..
             "::jsonb, lifecycle.meta('ResolveTask', 'ops:bob', NULL, NULL, 'spec'));" ..
             " DELETE FROM spine.signals WHERE workflow_id = " .. S.literal(case.id) .. ";")
    assert.are.equal("awaiting_approval", case:state())
    env:advance("60s")
    assert.are.equal("completed", case:status())
    assert.are.equal("ops:bob", case:result().approved_by)
    assert.are.equal("rejected", step(case, "intent", "ResolveTask").error.kind)
    assert.are.equal(1, #tasks(env, cu))
    assert.is_true((case:replays()))
  end)

  it("has a manifest that spine manifests check accepts", function()
    local report = env:spine_json({ "manifests", "check" })
    for _, e in ipairs(report.errors or {}) do
      assert.is_nil(e.where:find("manual_credit", 1, true), e.where .. ": " .. e.message)
    end
    local found = false
    for _, m in ipairs(report.manifests or {}) do
      if m.process == "manual_credit" then found = true end
    end
    assert.is_true(found)
  end)
end)
