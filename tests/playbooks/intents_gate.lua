-- Five intents, a wait for the signal "go", five more: a workload that stops at a known point,
-- so a test can cut the worker's connections while it is surely mid-run.
return {
  name = "intents_gate",
  run = function(ctx, input)
    for i = 1, 5 do
      ctx.intent("BenchRecord", { n = i })
    end
    ctx.wait("go")
    for i = 6, 10 do
      ctx.intent("BenchRecord", { n = i })
    end
    return { done = 10 }
  end,
}
