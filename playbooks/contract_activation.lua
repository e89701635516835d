-- Activating a signed contract with its provider (SPEC §4): the contract goes pending, the
-- provider gets the request (retried through outages), its confirmation webhook activates it.
-- A provider that stays silent for 14 days gets a person on it: a task, whose resolution
-- confirms or abandons the activation. Any failure cancels the activation (the saga's undo).
--
-- The experiment's variant "polling" (manifests/contract_activation.json gives it the parameter
-- activation = "polling") does not rely on the provider's webhook alone: each day without one
-- it asks the provider for the activation's status (get_activation) and goes on as soon as the
-- provider says it is confirmed. The 14-day escalation to a person stays as it is.

-- Up to 14 days: a day's wait for the webhook, then one question to the provider. Only an
-- activation submitted through the provider's API can be asked about (not one sent by email).
local function polled(ctx, provider, ref)
  for _ = 1, 14 do
    local hook = ctx.wait("provider.activation_confirmed", { timeout = "1d" })
    if hook then return hook end
    if ref.channel == "api" then
      local status = ctx.provider(provider, "get_activation", { reference = ref.reference },
                                  { retry = { attempts = 3, backoff = "10m" }, timeout = "30s" })
      if status.status == "confirmed" then
        ctx.set("confirmed_by", "polling")
        return { reference = status.reference, activation_date = status.activation_date }
      end
    end
  end
  return nil
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
    local confirmation
    if ctx.param("activation", "webhook") == "polling" then
      confirmation = polled(ctx, contract.provider, ref)
    else
      confirmation = ctx.wait("provider.activation_confirmed", { timeout = "14d" })
    end
    if not confirmation then
      ctx.state("escalated")
      local task = ctx.intent("CreateTask", {
        kind = "activation_overdue", subject = id, task_id = "activation_overdue:" .. id,
        due = spine.time.add_days(ctx.today(), 2),
        data = { provider = contract.provider, provider_reference = ref.reference },
      })
      -- ResolveTask signals "task.resolved" to the workflow that opened the task; one about
      -- another task (sent by hand) stays queued, untouched.
      local resolved = ctx.wait("task.resolved", { match = { task_id = task.task_id } })
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
      activation_date = confirmation.activation_date or ctx.today(),
      provider_reference = confirmation.reference or ref.reference,
    })
    ctx.state("active")
    return { status = activated.state, provider_reference = ref.reference }
  end,
}
