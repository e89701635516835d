-- Computes about `n` × 2 instructions before each of six steps, then waits for "go": live, each
-- resume stays within the budget; a replay runs all six stretches in one resume, and must be
-- charged per replayed step to stay within it too.
return {
  name = "replay_budget",
  input = { n = "integer" },
  run = function(ctx, input)
    local sum = 0
    for i = 1, 6 do
      for j = 1, input.n do sum = sum + j end
      ctx.step("stretch " .. i, function() return i end)
    end
    local go = ctx.wait("go")
    return { sum = sum, go = go.value }
  end,
}
