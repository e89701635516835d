-- ctx.parallel in the shapes tests/spec/engine/parallel_spec.lua drives, one per input.shape.
-- Every intent is a BenchRecord (a row of spine.bench_effects with its n), so a spec sees each
-- effect and its undo exactly once, in order.
local function record(ctx, n)
  return ctx.intent("BenchRecord", { n = n }).n
end

local shapes = {}

-- Two branches, each waiting for its own signal (its payload's v), then recording it.
function shapes.signals(ctx, input)
  local branch = function(name, n)
    return function(c)
      local p = c.wait("go." .. name, { match = input.match and { to = name } or nil })
      record(c, n)
      return p.v
    end
  end
  local k, v = ctx.parallel({ a = branch("a", 1), b = branch("b", 2) },
                            { mode = input.mode, timeout = input.timeout })
  if input.mode == "any" or input.mode == "race" then return { winner = k, value = v } end
  return k
end

-- Each branch records an effect and registers its undo; b then fails after an hour while a
-- still waits: a is cancelled and both undos run, b's first.
function shapes.undo(ctx, input)
  local ok, err = pcall(ctx.parallel, {
    a = function(c)
      record(c, 10)
      c.compensate(function()
        if input.slow_undo then c.sleep("30m") end -- an undo that takes time
        record(c, -10)
      end)
      c.wait("go.a")
      return "a"
    end,
    b = function(c)
      record(c, 20)
      c.compensate(function() record(c, -20) end)
      c.sleep("1h")
      if input.b_succeeds then return "b" end
      c.fail("b_failed", "b gave up")
    end,
  }, { mode = input.mode })
  record(ctx, 99)
  if ok then return { ok = true, winner = err } end
  return { ok = false, kind = err.kind, code = err.code }
end

-- A branch waits, the other sleeps for two hours; the parallel gives them one.
function shapes.timeout(ctx, input)
  local ok, err = pcall(ctx.parallel, {
    function(c) return c.wait("go.a") end,
    function(c) c.sleep("2h"); return "slept" end,
  }, { timeout = input.timeout or "1h" })
  return { ok = ok, kind = not ok and err.kind or nil, code = not ok and err.code or nil }
end

-- A parallel inside a branch of another, and a step before and after.
function shapes.nested(ctx, input)
  record(ctx, 1)
  local r = ctx.parallel({
    outer = function(c)
      local inner = c.parallel({
        x = function(d) local p = d.wait("go.x"); record(d, 2); return p.v end,
        y = function(d) d.sleep("1h"); record(d, 3); return "y" end,
      })
      return inner.x .. "+" .. inner.y
    end,
    side = function(c) return record(c, 4) end,
  })
  record(ctx, 5)
  return r
end

-- Two provider calls at once (the simulated gridco), each its branch's step.
function shapes.providers(ctx, input)
  local args = { contract_id = "par-k", meter_point = input.mp, requested_start = "2027-01-01",
                 termination_date = "2027-01-01", reason = "test" }
  return ctx.parallel({
    switch = function(c) return c.provider("gridco", "submit_switch", args).reference ~= nil end,
    termination = function(c)
      return c.provider("gridco", "submit_termination", args).reference ~= nil
    end,
  })
end

-- Limits: too many branches, too deep.
function shapes.wide(ctx, input)
  local fns = {}
  for i = 1, input.n do fns[i] = function() return i end end
  local ok, err = pcall(ctx.parallel, fns)
  return ok and { ok = true, n = #err } or { ok = false, kind = err.kind, message = err.message }
end

function shapes.deep(ctx, input)
  local function level(c, d)
    if d == 0 then return 0 end
    return c.parallel({ function(e) return level(e, d - 1) + 1 end })[1]
  end
  local ok, res = pcall(level, ctx, input.depth)
  return ok and { ok = true, depth = res } or { ok = false, kind = res.kind, message = res.message }
end

-- A branch that yields outside ctx (no coroutines in the sandbox: it errors), and one that
-- loops forever: each fails its branch only.
function shapes.hostile(ctx, input)
  local ok, err = pcall(ctx.parallel, {
    a = function(c) c.sleep("1m"); while true do end end,
    b = function(c) error("boom") end,
  }, { mode = "any" })
  return { ok = ok, code = err.code, a = err.errors and err.errors.a.kind,
           b = err.errors and err.errors.b.message }
end

return {
  name = "parallel",
  input = { shape = "string", mode = "string?", timeout = "string?", match = "boolean?",
            b_succeeds = "boolean?", slow_undo = "boolean?", n = "integer?", mp = "string?",
            depth = "integer?" },
  run = function(ctx, input) return shapes[input.shape](ctx, input) end,
}
