-- Hostile: string.gmatch with a pattern that backtracks for hours over 100,000 bytes.
-- Ends failed: limit / instruction_budget.
return {
  name = "hostile_gmatch",
  run = function(ctx, input)
    local s = ("a"):rep(1e5)
    return (function() for _ in s:gmatch(".-.-.-.-.-b") do end end)()
  end,
}
