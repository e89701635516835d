-- A customer, a contract and `n` manual credits on it: one outbox event per intent, all but the
-- first under the contract's ordering key, in the order applied; `pause` (a duration) sleeps
-- before each credit; `gate` (a signal name) holds the last credit until that signal comes
-- (outbox specs).
return {
  name = "credits",
  input = { customer_id = "string", contract_id = "string", n = "integer", pause = "string?",
            gate = "string?" },
  run = function(ctx, input)
    ctx.intent("RegisterCustomer", { customer_id = input.customer_id, name = "Erika Muster",
                                     email = input.customer_id .. "@example.org" })
    ctx.intent("CreateContract", { customer_id = input.customer_id, provider = "acme_energy",
                                   tariff = "green", contract_id = input.contract_id })
    for i = 1, input.n do
      if input.pause then ctx.sleep(input.pause) end
      if input.gate and i == input.n then ctx.wait(input.gate) end
      ctx.intent("ApplyManualCredit", { customer_id = input.customer_id,
                                        contract_id = input.contract_id, amount_cents = i,
                                        reason = "credit " .. i,
                                        credit_id = input.contract_id .. "-" .. i })
    end
    return { credits = input.n }
  end,
}
