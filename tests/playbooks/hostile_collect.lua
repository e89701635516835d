-- Hostile: holds 62 MB of its 64, then makes garbage, so that nearly every allocation forces
-- a full collection of the whole engine's heap. Ends failed: limit / memory_limit.
return {
  name = "hostile_collect",
  run = function(ctx, input)
    local chunk = ("x"):rep(1000)
    local keep = {}
    for i = 1, 124 do keep[i] = chunk:rep(500) .. i end
    local n = 0
    for i = 1, 1e8 do n = n + #(chunk .. i) end
    return n
  end,
}
