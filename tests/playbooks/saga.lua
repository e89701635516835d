-- Books two things, then fails: both bookings are undone in reverse order.
return {
  name = "saga",
  run = function(ctx, input)
    ctx.intent("BenchRecord", { n = 1 })
    ctx.compensate(function() ctx.intent("BenchRecord", { n = -1 }) end)
    ctx.intent("BenchRecord", { n = 2 })
    ctx.compensate(function() ctx.intent("BenchRecord", { n = -2 }) end)
    if input.fail ~= false then
      ctx.fail("no_capacity", "the provider has no capacity", { provider = "acme" })
    end
    return { ok = true }
  end,
}
