-- Sleeps input.ticks times for input.every (durable timers), then returns the tick count.
return {
  name = "ticker",
  run = function(ctx, input)
    for i = 1, input.ticks do
      ctx.state("tick " .. i)
      ctx.sleep(input.every)
    end
    return { ticks = input.ticks }
  end,
}
