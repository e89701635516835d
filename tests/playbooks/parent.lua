-- Runs a child workflow and waits for it; starts another without waiting.
return {
  name = "parent",
  run = function(ctx, input)
    local r = ctx.child("tests/playbooks/saga.lua", { fail = false })
    local other = ctx.start("tests/playbooks/saga.lua", { fail = false })
    return { child = r.ok, started = type(other) == "string" }
  end,
}
