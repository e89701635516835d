return {
  name = "bad_syntax",
  run = function(ctx, input)
    local x = = 1
  end,
}
