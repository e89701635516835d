-- Hostile: table.move over 2^50 empty slots, a C loop the count hook never sees.
-- Ends failed: limit / instruction_budget.
return {
  name = "hostile_move",
  run = function(ctx, input)
    return table.move({}, 1, 1 << 50, 2)
  end,
}
