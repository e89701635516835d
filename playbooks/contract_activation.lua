-- Activating a signed contract with its provider (SPEC §4): the contract goes pending, the
-- provider gets the request (retried through outages), its confirmation webhook activates it.
-- A provider that stays silent for 14 days gets a person on it: a task, whose resolution
-- confirms or abandons the activation. Any failure cancels the activation (the saga's undo).
-- The variant contract_activation_direct asks the provider every day instead of only waiting.

-- "YYYY-MM-DD" (UTC) of a time in seconds since the epoch (days to civil date, H. Hinnant).
local function date_of(t)
  local z = math.floor(t) // 86400 + 719468
  local era = (z >= 0 and z or z - 146096) // 146097
  local doe = z - era * 146097
  local yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
  local doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
  local mp = (5 * doy + 2) // 153
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400 + (m <= 2 and 1 or 0)
  return string.format("%04d-%02d-%02d", y, m, doy - (153 * mp + 2) // 5 + 1)
end

-- Waits for an operator to resolve task `task_id`: ResolveTask signals "task.resolved" to the
-- workflow that opened the task; a signal about another task (sent by hand) is skipped.
local function resolution(ctx, task_id)
  while true do
    local event = ctx.wait("task.resolved")
    if event.task_id == task_id then return event end
  end
end

return {
  name = "contract_activation",
  description = "Activate a signed contract with its provider",
  input = { contract_id = "string", requested_start = "date?" },
  run = function(ctx, input)
    local id = input.contract_id
    ctx.set("contract_id", id) -- the provider's webhooks and the outbox find the case by it
    ctx.state("requesting")
    local contract = ctx.intent("GetContract", { contract_id = id })
    ctx.intent("RequestActivation", { contract_id = id, requested_start = input.requested_start })
    -- From here on, a failure leaves no contract half-activated.
    ctx.compensate(function()
      ctx.intent("CancelActivation", { contract_id = id, reason = "activation failed" })
    end)

    ctx.state("submitting")
    -- Retried on durable timers for about 4 to 8 hours (1 minute, doubling); after that the
    -- case pauses with an incident for an operator. A refusal is final: the saga undoes.
    local ref = ctx.provider(contract.provider, "submit_activation",
                             { contract_id = id, requested_start = input.requested_start },
                             { retry = { attempts = 10, backoff = "1m", max = "6h" },
                               timeout = "30s" })
    ctx.set("provider_reference", ref.reference)

    ctx.state("awaiting_confirmation")
    local confirmation = ctx.wait("provider.activation_confirmed", { timeout = "14d" })
    if not confirmation then
      ctx.state("escalated")
      local task = ctx.intent("CreateTask", {
        kind = "activation_overdue", subject = id, task_id = "activation_overdue:" .. id,
        due = date_of(ctx.now() + 2 * 86400),
        data = { provider = contract.provider, provider_reference = ref.reference },
      })
      local resolved = resolution(ctx, task.task_id)
      -- The operator reached the provider: "confirmed" with the activation date they got,
      -- anything else abandons the activation.
      if resolved.outcome ~= "confirmed" then
        ctx.fail("activation_abandoned", "the operator abandoned the activation",
                 { task_id = task.task_id, outcome = resolved.outcome })
      end
      confirmation = resolved.data or {}
    end

    -- A confirmation without a date activates on the day it came.
    local activated = ctx.intent("ConfirmActivation", {
      contract_id = id,
      activation_date = confirmation.activation_date or date_of(ctx.now()),
      provider_reference = confirmation.reference or ref.reference,
    })
    ctx.state("active")
    return { status = activated.state, provider_reference = ref.reference }
  end,
}
