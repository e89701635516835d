-- ctx.intent from a playbook: results as tables, rejections as catchable error tables.
return {
  name = "intent_calls",
  input = { customer_id = "string" },
  run = function(ctx, input)
    ctx.intent("RegisterProvider", { provider = "acme_energy" })
    local cu = ctx.intent("RegisterCustomer", { customer_id = input.customer_id,
                                                name = "Max Muster", email = "max@example.org" })
    local k = ctx.intent("CreateContract", { customer_id = cu.customer_id,
                                             provider = "acme_energy", tariff = "basic" })
    local ok1, wrong_state = pcall(ctx.intent, "ConfirmActivation",
                                   { contract_id = k.contract_id, activation_date = "2026-12-01" })
    local ok2, bad_arg = pcall(ctx.intent, "ApplyManualCredit",
                               { customer_id = cu.customer_id, amount_cents = -5, reason = "x" })
    local read = ctx.intent("GetContract", { contract_id = k.contract_id })
    return { contract = k, read = read, ok1 = ok1, wrong_state = wrong_state, ok2 = ok2,
             bad_arg = bad_arg }
  end,
}
