-- contract_activation, variant "polling" (manifests/contract_activation.json): the same
-- activation, but the case does not rely on the provider's webhook alone. Each day without
-- one it asks the provider for the activation's status (get_activation) and goes on as soon as
-- the provider says it is confirmed. The 14-day escalation to a person stays as it is.
-- Hypothesis: providers confirm more activations than their webhooks tell; polling activates
-- those days earlier and sends fewer cases to the overdue queue.

-- Up to 14 days: a day's wait for the webhook, then one question to the provider. Only an
-- activation submitted through the provider's API can be asked about (not one sent by email).
local function confirmed(ctx, provider, ref)
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
  name = "contract_activation_direct",
  description = "Activate a signed contract with its provider, asking it daily for the status",
  input = { contract_id = "string", requested_start = "date?" },
  run = function(ctx, input)
    local id = input.contract_id
    ctx.set("contract_id", id)
    ctx.state("requesting")
    local contract = ctx.intent("GetContract", { contract_id = id })
    ctx.intent("RequestActivation", { contract_id = id, requested_start = input.requested_start })
    ctx.compensate(function()
      ctx.intent("CancelActivation", { contract_id = id, reason = "activation failed" })
    end)

    ctx.state("submitting")
    local ref = ctx.provider(contract.provider, "submit_activation",
                             { contract_id = id, requested_start = input.requested_start },
                             { retry = { attempts = 10, backoff = "1m", max = "6h" },
                               timeout = "30s" })
    ctx.set("provider_reference", ref.reference)

    ctx.state("awaiting_confirmation")
    local confirmation = confirmed(ctx, contract.provider, ref)
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
      if resolved.outcome ~= "confirmed" then
        ctx.fail("activation_abandoned", "the operator abandoned the activation",
                 { task_id = task.task_id, outcome = resolved.outcome })
      end
      confirmation = resolved.data or {}
    end

    local activated = ctx.intent("ConfirmActivation", {
      contract_id = id,
      activation_date = confirmation.activation_date or ctx.today(),
      provider_reference = confirmation.reference or ref.reference,
    })
    ctx.state("active")
    return { status = activated.state, provider_reference = ref.reference }
  end,
}
