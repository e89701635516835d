-- Well-behaved: makes 20 MB of garbage at each of input.steps steps (default 10) and keeps
-- only a count, so it runs to its end under the 64 MB limit however much it made in all.
return {
  name = "churn",
  run = function(ctx, input)
    local chunk = ("x"):rep(1000)
    local n = 0
    for i = 1, input.steps or 10 do
      for j = 1, 20 do
        n = n + #(chunk:rep(1000) .. i .. j)
      end
      ctx.sleep(0)
    end
    return { bytes = n }
  end,
}
