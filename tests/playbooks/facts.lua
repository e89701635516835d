-- Returns the read-only facts a playbook sees about its own run.
return {
  name = "facts",
  run = function(ctx, input)
    return { variant = ctx.variant, experiment = ctx.experiment, process = ctx.process,
             attempt = ctx.attempt, id = ctx.id }
  end,
}
