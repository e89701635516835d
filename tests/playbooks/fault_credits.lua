-- The fault suite's workload (tests/spec/faults): registers its customer when `register` says
-- so (distinct keys: one customer per workflow; hot-key customers are registered before), then
-- `n` manual credits of 1, 2, ... n cents, each with a reason naming the workflow and no
-- credit_id: nothing but the engine keeps a credit from being applied twice. `pause` (a
-- duration) sleeps before each credit, so that a fault lands while the workflows are spread
-- over their steps.
return {
  name = "fault_credits",
  input = { customer_id = "string", n = "integer", register = "boolean?", pause = "string?" },
  run = function(ctx, input)
    if input.register then
      ctx.intent("RegisterCustomer", { customer_id = input.customer_id, name = "Fault Customer",
                                       email = input.customer_id .. "@example.org" })
    end
    for i = 1, input.n do
      if input.pause then ctx.sleep(input.pause) end
      ctx.intent("ApplyManualCredit", { customer_id = input.customer_id, amount_cents = i,
                                        reason = ctx.id .. " credit " .. i })
    end
    return { credits = input.n }
  end,
}
