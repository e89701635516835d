-- Asks a provider for something (input.submit with input.args), then takes it back
-- (input.undo with the reference it got): the pairs of operations the tariff_switch playbook
-- uses, submit_switch/cancel_switch and submit_termination/withdraw_termination.
return {
  name = "provider_undo",
  input = { provider = "string", submit = "string", undo = "string", args = "table" },
  run = function(ctx, input)
    local opts = { retry = { attempts = 2, backoff = "1s" } }
    local done = ctx.provider(input.provider, input.submit, input.args, opts)
    local undone = ctx.provider(input.provider, input.undo,
                                { reference = done.reference, reason = "changed plans" }, opts)
    return { done = done, undone = undone }
  end,
}
