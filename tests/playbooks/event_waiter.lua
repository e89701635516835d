-- Waits for the outbox relay's signal that its contract was activated: the relay signals each
-- event as "event.<type>" to the running workflows of the event's contract (outbox specs).
return {
  name = "event_waiter",
  input = { contract_id = "string" },
  run = function(ctx, input)
    local ev = ctx.wait("event.ContractActivated", { timeout = "1h" })
    if not ev then return { activated = false } end
    return { activated = true, state = ev.state, version = ev.version,
             activation_date = ev.activation_date }
  end,
}
