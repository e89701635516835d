-- Hostile: string.find with a pattern that backtracks for hours over 100,000 bytes.
-- Ends failed: limit / instruction_budget.
return {
  name = "hostile_find",
  run = function(ctx, input)
    local s = ("a"):rep(1e5)
    return string.find(s, ".-.-.-.-.-b")
  end,
}
