-- Hostile: an error table whose every metamethod raises or loops, read by the engine after
-- the coroutine died. Ends failed with its own (raw) kind and code: business / hostile_error.
local function boom() error("metamethod called") end
local function forever() while true do end end

return {
  name = "hostile_error",
  run = function(ctx, input)
    local mt = { __index = boom, __newindex = boom, __tostring = forever, __len = boom,
                 __pairs = boom, __eq = boom, __concat = boom, __call = boom, __name = {},
                 __metatable = "locked" }
    error(setmetatable({ kind = "business", code = "hostile_error", message = "raised raw" }, mt))
  end,
}
