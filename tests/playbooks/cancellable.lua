-- Books something, registers its undo, then waits for a signal that an operator pre-empts.
return {
  name = "cancellable",
  run = function(ctx, input)
    ctx.intent("BenchRecord", { n = 1 })
    ctx.compensate(function() ctx.intent("BenchRecord", { n = -1 }) end)
    ctx.wait("never", { timeout = "30d" })
    return { finished = true }
  end,
}
