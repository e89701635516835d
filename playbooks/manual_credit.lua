-- playbooks/manual_credit.lua: an operator credits a customer by hand (goodwill, a billing
-- error). Up to the approval threshold the credit is applied at once; above it a second person
-- must approve it first (four eyes), through a human task.
-- Cases: spine start manual_credit --input '{"customer_id": "cu-1", "amount_cents": 25000,
--          "reason": "billing error 2026-10", "requested_by": "ops:jane"}'
-- Signals: task.resolved {task_id, outcome, resolved_by, ...}, sent by ResolveTask to this case
--          (which opened the task) once someone resolved it with outcome "approved" or
--          "rejected". The answer itself is read from the task, not from the signal.
-- Specs: tests/spec/playbooks/manual_credit_spec.lua

-- Credits above this need a second person's approval: 100.00 EUR.
local APPROVAL_THRESHOLD_CENTS = 10000
-- How long each approver has: first the team's queue, then, once, the team leads'.
local APPROVAL_TIMEOUT = "2d"

local time = spine.time

-- A duration such as "2d" or "1h30m" in seconds; the case fails as invalid input otherwise.
local function seconds(ctx, duration)
  local ok, s = pcall(time.duration, duration)
  if not ok then
    ctx.fail("invalid_input", "approval_timeout: " .. duration .. " is not like 2d or 1h30m")
  end
  return s
end

-- Opens an approval task of `kind`, due at `deadline`; returns its id.
local function ask(ctx, input, kind, deadline, escalated_from)
  return ctx.intent("CreateTask", {
    kind = kind, subject = input.contract_id or input.customer_id,
    due = time.format(math.floor(deadline)),
    data = { amount_cents = input.amount_cents, currency = input.currency or "EUR",
             reason = input.reason, requested_by = input.requested_by,
             customer_id = input.customer_id, escalated_from = escalated_from,
             workflow_id = ctx.id, signal = "task.resolved" },
  }).task_id
end

-- The resolved task `task_id`, read from the system of record once a task.resolved signal for
-- it comes; nil when `deadline` passes first. Signals about other tasks (an earlier, escalated
-- one) are not this wait's: they stay queued.
local function answer(ctx, task_id, deadline)
  while true do
    -- at least 1s: a signal that came already is still taken when the deadline is near
    local left = math.max(math.ceil(deadline - ctx.now()), 1)
    local signal = ctx.wait("task.resolved", { timeout = left, match = { task_id = task_id } })
    if not signal then return nil end
    local task = ctx.intent("GetTask", { task_id = task_id })
    if task.status == "resolved" then return task end
    ctx.log("warn", "task.resolved ignored: the task is open", { task_id = task_id })
  end
end

-- Closes an unanswered task with `outcome`. Someone may have answered it just now, their
-- signal still on its way: then their answer counts, and is returned.
local function close(ctx, task_id, outcome)
  local ok, err = pcall(ctx.intent, "ResolveTask", { task_id = task_id, outcome = outcome })
  if ok then return nil end
  if err.code ~= "invalid_transition" then error(err) end
  return ctx.intent("GetTask", { task_id = task_id })
end

-- Asks for an approval of `kind` until `deadline`: returns the answered task, or nil and the
-- last task's id (closed with `unanswered`). An approval by the requester themselves does not
-- count: the task is asked again.
local function approval(ctx, input, kind, deadline, unanswered, escalated_from)
  while true do
    local task_id = ask(ctx, input, kind, deadline, escalated_from)
    local task = answer(ctx, task_id, deadline) or close(ctx, task_id, unanswered)
    if not task then return nil, task_id end
    if task.outcome ~= "approved" or task.resolved_by ~= input.requested_by then return task end
    ctx.log("warn", "a credit approved by its own requester: asked again",
            { task_id = task_id, requested_by = input.requested_by })
  end
end

---@type SpinePlaybook
local playbook = {
  name = "manual_credit",
  description = "Credit a customer by hand; above a threshold only with a second person's approval",
  input = { customer_id = "string", amount_cents = "integer", reason = "string",
            requested_by = "string", contract_id = "string?", currency = "string?",
            approval_threshold_cents = "integer?", approval_timeout = "string?" },

  run = function(ctx, input)
    ctx.set("customer_id", input.customer_id)
    ctx.set("amount_cents", input.amount_cents)
    if input.contract_id then ctx.set("contract_id", input.contract_id) end
    if input.amount_cents <= 0 then
      ctx.fail("invalid_amount", "a credit is a positive amount of cents")
    end

    local approved_by
    if input.amount_cents > (input.approval_threshold_cents or APPROVAL_THRESHOLD_CENTS) then
      local timeout = seconds(ctx, input.approval_timeout or APPROVAL_TIMEOUT)
      ctx.state("awaiting_approval")
      local task, first = approval(ctx, input, "credit_approval", ctx.now() + timeout,
                                   "escalated")
      if not task then
        -- Nobody in the team answered in time: the team leads get it, once.
        ctx.state("escalated")
        task = approval(ctx, input, "credit_approval_escalated", ctx.now() + timeout, "expired",
                        first)
      end
      if not task then
        ctx.state("expired")
        ctx.fail("approval_expired", "nobody approved the credit in time: nothing was credited")
      end
      if task.outcome ~= "approved" then
        ctx.state("rejected")
        ctx.fail("credit_rejected", task.resolved_by .. " did not approve the credit ("
                 .. task.outcome .. "): nothing was credited", { task_id = task.task_id })
      end
      approved_by = task.resolved_by
    end

    ctx.state("crediting")
    -- The workflow's id as the credit's: the ledger entry points back to this case.
    local credit = ctx.intent("ApplyManualCredit", {
      customer_id = input.customer_id, contract_id = input.contract_id,
      amount_cents = input.amount_cents, currency = input.currency, reason = input.reason,
      approved_by = approved_by, credit_id = ctx.id,
    })
    ctx.state("credited")
    return { credit_id = credit.credit_id, balance_cents = credit.balance_cents,
             currency = credit.currency, approved_by = approved_by }
  end,
}

return playbook
