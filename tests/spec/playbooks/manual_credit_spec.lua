-- manual_credit (playbooks/manual_credit.lua): an operator's credit, applied at once up to
-- 100.00 EUR, above it only with a second person's approval. Timeouts run on the virtual
-- clock (spine run); approvals through a real `spine serve`, answered as an operator does:
-- ResolveTask, then `spine signal ID task.resolved` (ResolveTask does not signal the workflow
-- itself yet).
local R = require("process_test")
local T, L = R.T, R.L

-- A database with customer <p>-cu and its active contract <p>-k.
local function db(p)
  local url = T.newdb("spec_manual_credit_" .. p)
  return url, L.active_contract(url, p)
end

local function credit(ids, amount, extra)
  local input = { customer_id = ids.customer, amount_cents = amount,
                  reason = "billing error 2026-10", requested_by = "ops:jane" }
  for k, v in pairs(extra or {}) do input[k] = v end
  return input
end

local function credits(url, customer)
  return R.rows(url, "SELECT credit_id, amount_cents, approved_by, actor FROM lifecycle.credits" ..
                     " WHERE customer_id = '" .. customer .. "'")
end

-- Starts a case for a `spine serve`; returns the server, the workflow id and its first task.
local function start_approval(url, ids, amount, extra)
  local srv = T.serve(url)
  local id = R.start(url, "manual_credit", credit(ids, amount, extra))
  R.wait(url, id, "waiting", "awaiting_approval")
  return srv, id, R.tasks(url, ids.customer)[1]
end

-- Resolves task `task` as `who` and signals the workflow, as an operator does.
local function answer(url, id, task, outcome, who)
  L.ok(url, "ResolveTask", { task_id = task.task_id, outcome = outcome }, who)
  R.signal(url, id, "task.resolved", { task_id = task.task_id })
end

describe("manual_credit", function()
  it("credits up to 100.00 EUR at once, without asking anyone", function()
    local url, ids = db("small")
    local wf = R.run(url, "manual_credit", credit(ids, 10000))
    assert.are.equal("completed", wf.status, T.json.encode(wf.error))
    assert.are.same({ "intent:ApplyManualCredit" }, R.steps(wf))
    assert.are.same({ credit_id = wf.id, balance_cents = 10000, currency = "EUR" }, wf.result)
    assert.are.same({ { credit_id = wf.id, amount_cents = 10000, approved_by = T.json.null,
                        actor = "workflow:" .. wf.id } }, credits(url, ids.customer))
    assert.are.same({}, R.tasks(url, ids.customer))
  end)

  it("escalates an unanswered approval to the team leads once, then expires crediting nothing",
     function()
    local url, ids = db("expiry")
    local wf = R.run(url, "manual_credit", credit(ids, 25000))
    assert.are.equal("failed", wf.status)
    assert.are.same({ kind = "business", code = "approval_expired" },
                    { kind = wf.error.kind, code = wf.error.code })
    assert.are.equal("expired", wf.state)
    local tasks = R.tasks(url, ids.customer)
    assert.are.same({ "credit_approval", "credit_approval_escalated" },
                    { tasks[1].kind, tasks[2].kind })
    assert.are.same({ "escalated", "expired" }, { tasks[1].outcome, tasks[2].outcome })
    assert.are.equal(tasks[1].task_id, tasks[2].data.escalated_from)
    assert.are.equal(25000, tasks[1].data.amount_cents)
    assert.are.equal(wf.id, tasks[1].data.workflow_id)
    assert.are.same({}, credits(url, ids.customer))
  end)

  it("takes the threshold and the approval timeout from the case", function()
    local url, ids = db("threshold")
    local wf = R.run(url, "manual_credit", credit(ids, 2000, { approval_threshold_cents = 1000,
                                                                approval_timeout = "3h" }))
    assert.are.equal("approval_expired", wf.error.code)
    local asked = R.step(wf, "now", "now").result
    local due = T.sql(url, "SELECT extract(epoch FROM due) FROM lifecycle.tasks WHERE kind =" ..
                           " 'credit_approval'")
    assert.are.equal(math.floor(asked) + 3 * 3600, math.floor(tonumber(due)))
  end)

  it("credits above 100.00 EUR once a second person approves", function()
    local url, ids = db("approved")
    local srv, id, task = start_approval(url, ids, 25000)
    answer(url, id, task, "approved", "ops:bob")
    local wf = R.wait(url, id, "completed")
    T.kill(srv)
    R.replays(url, id)
    assert.are.equal("ops:bob", wf.result.approved_by)
    assert.are.equal(25000, wf.result.balance_cents)
    assert.are.same({ { credit_id = id, amount_cents = 25000, approved_by = "ops:bob",
                        actor = "workflow:" .. id } }, credits(url, ids.customer))
    assert.are.equal("credit_approval", task.kind)
    assert.are.equal(ids.customer, task.data.customer_id)
  end)

  it("does not count an approval by the requester and asks again", function()
    local url, ids = db("self")
    local srv, id, task = start_approval(url, ids, 25000)
    answer(url, id, task, "approved", "ops:jane")
    local second = T.wait_until(function()
      local tasks = R.tasks(url, ids.customer)
      return tasks[2] and tasks[2].status == "open" and tasks[2]
    end, 60, "a second approval task")
    local before = credits(url, ids.customer)
    answer(url, id, second, "approved", "ops:bob")
    local wf = R.wait(url, id, "completed")
    T.kill(srv)
    R.replays(url, id)
    assert.are.same({}, before)
    assert.are.equal("credit_approval", second.kind)
    assert.are.equal("ops:bob", wf.result.approved_by)
    assert.are.equal(1, #credits(url, ids.customer))
  end)

  it("ends as a business failure crediting nothing when the approver rejects", function()
    local url, ids = db("rejected")
    local srv, id, task = start_approval(url, ids, 25000)
    answer(url, id, task, "rejected", "ops:bob")
    local wf = R.wait(url, id, "failed")
    T.kill(srv)
    R.replays(url, id)
    assert.are.same({ kind = "business", code = "credit_rejected", state = "rejected" },
                    { kind = wf.error.kind, code = wf.error.code, state = wf.state })
    assert.matches("ops:bob did not approve the credit (rejected)", wf.error.message, 1, true)
    assert.are.same({}, credits(url, ids.customer))
  end)

  it("ignores a task.resolved signal whose task is not resolved", function()
    local url, ids = db("forged")
    local srv, id, task = start_approval(url, ids, 25000)
    R.signal(url, id, "task.resolved", { task_id = task.task_id, outcome = "approved",
                                         resolved_by = "ops:bob" })
    R.signal(url, id, "task.resolved", { task_id = "another-task" })
    -- both signals are taken, checked and ignored: the case goes on waiting
    local waiting = T.wait_until(function()
      local wf, taken = R.show(url, id), 0
      for _, s in ipairs(wf.steps) do
        if s.kind == "wait" and s.status == "completed" then taken = taken + 1 end
      end
      return taken == 2 and wf.status == "waiting" and wf
    end, 60, "the signals to be taken")
    answer(url, id, task, "approved", "ops:bob")
    local wf = R.wait(url, id, "completed")
    T.kill(srv)
    R.replays(url, id)
    assert.are.equal("open", R.step(waiting, "intent", "GetTask").result.status)
    assert.are.equal("ops:bob", wf.result.approved_by)
  end)

  it("takes an approval given just before the deadline whose signal never came", function()
    local url, ids = db("late_signal")
    -- a short real timeout: the approval must land while the case waits, its signal never
    local srv, id, task = start_approval(url, ids, 25000, { approval_timeout = "4s" })
    L.ok(url, "ResolveTask", { task_id = task.task_id, outcome = "approved" }, "ops:bob")
    local wf = R.wait(url, id, "completed")
    T.kill(srv)
    R.replays(url, id)
    assert.are.equal("ops:bob", wf.result.approved_by)
    assert.are.equal("rejected", R.step(wf, "intent", "ResolveTask").error.kind)
    assert.are.equal(1, #R.tasks(url, ids.customer))
  end)

  it("has a manifest that spine manifests check accepts", function()
    local url = T.newdb("spec_manual_credit_manifest")
    assert.is_true(R.manifest_ok(url, "manual_credit"))
  end)
end)
