-- Started by an outbox event (a manifest's on_events): its input is the event's payload with
-- the event itself under `event` (outbox specs).
return {
  name = "welcome",
  input = { customer_id = "string", event = "table" },
  run = function(ctx, input)
    return { customer_id = input.customer_id, event_type = input.event.type,
             event_id = input.event.id }
  end,
}
