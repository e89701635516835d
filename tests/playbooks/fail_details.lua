-- Fails as a business failure with details; with input.bad the details hold a function.
return {
  name = "fail_details",
  run = function(ctx, input)
    if input.bad then ctx.fail("refused", "details JSON cannot hold", { f = function() end }) end
    ctx.fail("refused", "the meter is not ours", { meter = "M-1", tries = 2 })
  end,
}
