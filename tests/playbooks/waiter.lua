-- Waits for "go", then records one row and returns what it got.
return {
  name = "waiter",
  run = function(ctx, input)
    ctx.state("waiting_for_go")
    local got = ctx.wait("go")
    ctx.intent("BenchRecord", { n = 1 })
    return { got = got.value }
  end,
}
