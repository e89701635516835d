-- Step calls where the coroutine cannot yield (a gsub replacement, a sort comparator, a
-- __tostring called by tostring), caught by pcall: each is refused before anything
-- is submitted, and the workflow goes on with real steps (nothing half done, no step reused).
return {
  name = "hostile_yield",
  run = function(ctx, input)
    local codes = {}
    string.gsub("ab", ".", function()
      local ok, err = pcall(ctx.intent, "BenchRecord", { n = 1 })
      codes[#codes + 1] = ok and "ok" or err.code
    end)
    local t = { 3, 1, 2 }
    table.sort(t, function(a, b)
      if #codes < 3 then
        local ok, err = pcall(ctx.sleep, 0)
        codes[#codes + 1] = ok and "ok" or err.code
      end
      return a < b
    end)
    local obj = setmetatable({}, { __tostring = function()
      local ok, err = pcall(ctx.now)
      codes[#codes + 1] = ok and "ok" or err.code
      return "obj"
    end })
    local _ = tostring(obj) -- a metamethod called from C: it cannot yield
    ctx.intent("BenchRecord", { n = 2 })
    local now = ctx.now()
    return { codes = codes, after = type(now) }
  end,
}
