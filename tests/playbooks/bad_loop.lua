return {
  name = "bad_loop",
  run = function(ctx, input)
    local n = 0
    while true do
      local ok = pcall(function() n = n + 1 end)
    end
  end,
}
