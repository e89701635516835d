-- Sleeps 14 days, waits for a signal that never comes (1 day timeout), retries a flaky step,
-- registers a compensation it never needs, and records a business row.
return {
  name = "durable_tour",
  input = { customer = "string" },
  run = function(ctx, input)
    ctx.state("sleeping")
    local t0 = ctx.now()
    ctx.sleep("14d")
    local t1 = ctx.now()
    ctx.state("waiting")
    local answer = ctx.wait("customer.answer", { timeout = "1d" })
    local tries = 0
    local got = ctx.step("flaky", function()
      tries = tries + 1
      if tries < 3 then error("provider hiccup " .. tries) end
      return { tries = tries }
    end, { retry = { attempts = 5, backoff = "1m", max = "1h" } })
    ctx.compensate(function() ctx.intent("BenchRecord", { n = -1 }) end)
    local rec = ctx.intent("BenchRecord", { n = 7 })
    ctx.set("customer", input.customer)
    ctx.state("done")
    return { slept_days = math.floor((t1 - t0) / 86400 + 0.5), answer = answer,
             tries = got.tries, recorded = rec.n }
  end,
}
