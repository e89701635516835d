-- The demo's data: run by scripts/demo with `spine run` before the cases are dispatched.
-- Registers the provider and, per case, a customer and a draft contract with ACME Energy,
-- through the same intents a playbook uses (history rows, outbox events and all).
return {
  name = "demo_seed",
  input = { prefix = "string", count = "number" },
  run = function(ctx, input)
    ctx.intent("RegisterProvider", { provider = "acme_energy", display_name = "ACME Energy" })
    local names = { "Ada", "Linus", "Barbara", "Grace", "Ken", "Margaret", "Dennis", "Frances" }
    local contracts = {}
    for i = 1, input.count do
      local who = names[(i - 1) % #names + 1]
      local customer = ctx.intent("RegisterCustomer", {
        customer_id = input.prefix .. "-cust-" .. i,
        name = who .. " " .. i,
        email = who:lower() .. i .. "@example.org",
      })
      local contract = ctx.intent("CreateContract", {
        contract_id = input.prefix .. "-" .. i,
        customer_id = customer.customer_id,
        provider = "acme_energy",
        tariff = i % 3 == 0 and "green-24" or "basic-12",
      })
      contracts[#contracts + 1] = contract.contract_id
    end
    return { contracts = contracts }
  end,
}
