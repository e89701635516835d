-- Registers a customer from the case's input and gives them a contract, a credit and a task:
-- personal data ends up in the workflow's input, attributes and result, and in the history.
return {
  name = "onboard_customer",
  input = { customer_id = "string", name = "string", email = "string", phone = "string",
            iban = "string", street = "string", postcode = "string", city = "string" },
  run = function(ctx, input)
    ctx.intent("RegisterProvider", { provider = "acme_energy" })
    ctx.intent("RegisterCustomer", {
      customer_id = input.customer_id, name = input.name, email = input.email,
      phone = input.phone, iban = input.iban,
      address = { street = input.street, postcode = input.postcode, city = input.city },
    })
    ctx.set("contact", input.email)
    local contract = ctx.intent("CreateContract", { customer_id = input.customer_id,
                                                    provider = "acme_energy", tariff = "green" })
    ctx.intent("ApplyManualCredit", { customer_id = input.customer_id, amount_cents = 1250,
                                      reason = "welcome bonus for " .. input.name })
    ctx.intent("CreateTask", { kind = "welcome_call", subject = input.customer_id,
                               data = { call = input.name, at = input.phone } })
    return { contract_id = contract.contract_id, greeting = "Welcome, " .. input.name }
  end,
}
