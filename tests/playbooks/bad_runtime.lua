return {
  name = "bad_runtime",
  run = function(ctx, input)
    ctx.state("about to fail")
    local contract = nil
    return contract.id
  end,
}
