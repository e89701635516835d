-- Reads its variant's parameters (ctx.param) before and after a wait for "go": the values must
-- be the ones its case started with, whatever manifest is in force when it resumes.
return {
  name = "param_waiter",
  run = function(ctx, input)
    local mode = ctx.param("mode", "webhook")
    ctx.state("waiting_for_go")
    ctx.wait("go")
    return { before = mode, after = ctx.param("mode", "webhook"), limit = ctx.param("limit"),
             days = ctx.param("days", 14) }
  end,
}
