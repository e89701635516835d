-- Hostile: a table whose __len says 2^50, so that table.remove shifts 2^50 slots in C; and
-- for table.sort a __len that answers 10 the first time and 2^31 - 2 after.
-- Ends failed: limit / instruction_budget.
return {
  name = "hostile_len",
  run = function(ctx, input)
    local calls = 0
    local t = setmetatable({}, {
      __index = rawlen,
      __len = function()
        calls = calls + 1
        return calls == 1 and 10 or (1 << 31) - 2
      end,
    })
    table.sort(t) -- charged for, and held to, the first answer
    local huge = setmetatable({}, { __len = function() return 1 << 50 end })
    return table.remove(huge, 1)
  end,
}
