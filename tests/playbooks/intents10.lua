-- Ten steps, one business intent each: the exactly-once workload.
return {
  name = "intents10",
  run = function(ctx, input)
    for i = 1, 10 do
      ctx.intent("BenchRecord", { n = i })
    end
    return { done = 10 }
  end,
}
