-- Waits up to input.timeout (default 14d) for the signal "go" (or input.signal), then applies
-- RegisterCustomer so that the history shows when it ended; for the test kit's own spec.
return {
  name = "deadline",
  input = { timeout = "string?", signal = "string?", customer_id = "string?" },
  run = function(ctx, input)
    local started = ctx.now()
    ctx.state("waiting")
    local got = ctx.wait(input.signal or "go", { timeout = input.timeout or "14d" })
    ctx.state(got and "signalled" or "timed_out")
    if input.customer_id then
      ctx.intent("RegisterCustomer", { customer_id = input.customer_id, name = "Ada Example",
                                       email = "ada@example.org" })
    end
    return { got = got, waited = ctx.now() - started }
  end,
}
