-- Hostile: string.match with a pattern that backtracks for hours over 100,000 bytes.
-- Ends failed: limit / instruction_budget.
return {
  name = "hostile_match",
  run = function(ctx, input)
    local s = ("a"):rep(1e5)
    return s:match(".-.-.-.-.-b")
  end,
}
