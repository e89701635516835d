-- Hostile: keeps 20 MB more at each of input.steps steps (default 30: 600 MB in all), in 500 KB
-- pieces. No step allocates much; together they pass the 64 MB limit. Ends failed: limit /
-- memory_limit, at its fourth step.
return {
  name = "hostile_memory",
  run = function(ctx, input)
    local chunk = ("x"):rep(1000)
    local keep = {}
    for i = 1, input.steps or 30 do
      for j = 1, 40 do
        keep[#keep + 1] = chunk:rep(500) .. i .. ":" .. j
      end
      ctx.sleep(0)
    end
    return #keep
  end,
}
