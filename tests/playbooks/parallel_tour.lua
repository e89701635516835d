-- ctx.parallel on the virtual clock, for the engine's C test under the sanitizers
-- (tests/c/test_engine.c): nested branches, each mode, a timeout, a failing branch whose
-- sibling is cancelled and undone, hostile branches and refused limits; the result sums it up.
local function record(ctx, n) return ctx.intent("BenchRecord", { n = n }).n end

return {
  name = "parallel_tour",
  input = { customer = "string" },
  run = function(ctx, input)
    local all = ctx.parallel({
      a = function(c)
        local inner = c.parallel({ function(d) d.sleep("1h"); return 1 end,
                                   function(d) return record(d, 2) end })
        return inner[1] + inner[2]
      end,
      b = function(c) c.sleep("2h"); return c.wait("never", { timeout = "1h" }) == nil end,
    })
    local key = ctx.parallel({
      slow = function(c) c.sleep("3d"); return "slow" end,
      fast = function(c) c.sleep("1d"); return "fast" end,
    }, { mode = "race" })
    local anyk, anyv = ctx.parallel({
      function(c) error("no") end,
      function(c) c.sleep("1h"); return "second" end,
    }, { mode = "any" })
    local timed_out = select(2, pcall(ctx.parallel, {
      w = function(c) return c.wait("never") end,
    }, { timeout = "1d" })).code
    local undone = select(2, pcall(ctx.parallel, {
      x = function(c)
        record(c, 10)
        c.compensate(function() record(c, -10) end)
        c.sleep("5d")
      end,
      y = function(c) c.sleep("1h"); c.fail("y_failed") end,
    })).code
    local hostile = select(2, pcall(ctx.parallel, {
      loop = function(c) while true do end end,
      big = function(c) local t = {} for i = 1, 1e8 do t[i] = ("x"):rep(100) .. i end end,
    }, { mode = "any" })).code
    local kids = ctx.parallel({ -- child workflows, each a branch's
      one = function(c) return c.child("tests/playbooks/saga.lua", { fail = false }).ok end,
      two = function(c) return c.child("tests/playbooks/saga.lua", { fail = false }).ok end,
    })
    local wide = {}
    for i = 1, 65 do wide[i] = function() return i end end
    local too_wide = select(2, pcall(ctx.parallel, wide)).code
    return { a = all.a, b = all.b, race = key, any = anyk .. ":" .. anyv, timeout = timed_out,
             undone = undone, hostile = hostile, too_wide = too_wide,
             children = kids.one and kids.two }
  end,
}
