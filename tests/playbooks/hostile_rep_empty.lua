-- Hostile: string.rep of an empty string 2^50 times, a C loop the count hook never sees.
-- Ends failed: limit / instruction_budget.
return {
  name = "hostile_rep_empty",
  run = function(ctx, input)
    return #string.rep("", 1 << 50)
  end,
}
