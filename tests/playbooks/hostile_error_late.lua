-- Hostile: the error table gets a raising metatable after the failure, from a compensation,
-- which then fails too: the engine adds the compensation's error to the failure it recorded.
-- Ends failed: business / late_hostile_error.
local function boom() error("metamethod called") end

return {
  name = "hostile_error_late",
  run = function(ctx, input)
    local e = { kind = "business", code = "late_hostile_error", message = "raised plain" }
    ctx.compensate(function()
      setmetatable(e, { __index = boom, __newindex = boom, __len = boom, __pairs = boom })
      error(e)
    end)
    ctx.sleep(0)
    error(e)
  end,
}
