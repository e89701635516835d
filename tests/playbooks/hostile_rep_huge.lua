-- Hostile: a gigabyte from one string.rep, through the string metatable.
-- Ends failed: limit / memory_limit, before any byte is copied.
return {
  name = "hostile_rep_huge",
  run = function(ctx, input)
    local ok = pcall(function() return ("x"):rep(1e9) end) -- a pcall cannot swallow the limit
    return ok
  end,
}
