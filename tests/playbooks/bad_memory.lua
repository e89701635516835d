return {
  name = "bad_memory",
  run = function(ctx, input)
    local t, x = {}, string.rep("x", 100)
    for i = 1, 1e9 do
      t[i] = x .. i
    end
    return #t
  end,
}
