-- Calls a provider operation (input.provider, default gridco's submit_switch) with the
-- retry options in input.opts; with input.wait, then waits for the provider's confirmation.
return {
  name = "provider_switch",
  run = function(ctx, input)
    ctx.set("contract_id", input.contract_id)
    ctx.state("submitting")
    local answer = ctx.provider(input.provider or "gridco", input.operation or "submit_switch",
                                { contract_id = input.contract_id,
                                  meter_point = input.meter_point or "MP-" .. input.contract_id,
                                  reference = input.reference },
                                input.opts)
    if not input.wait then return answer end
    ctx.state("awaiting_confirmation")
    local confirmation = ctx.wait(input.wait, { timeout = "1h" })
    return { answer = answer, confirmation = confirmation }
  end,
}
