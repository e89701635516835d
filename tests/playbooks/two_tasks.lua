-- Waits for the resolutions of two tasks, input.first then input.second, each wait taking only
-- the task.resolved signal about its own task (ctx.wait's match): a signal about the other task
-- stays queued for the other wait (tests/spec/engine/wait_match_spec.lua).
return {
  name = "two_tasks",
  input = { first = "string", second = "string", timeout = "string?", bad_match = "boolean?" },
  run = function(ctx, input)
    if input.bad_match then ctx.wait("task.resolved", { match = { task_id = { input.first } } }) end
    ctx.state("waiting_first")
    local a = ctx.wait("task.resolved", { match = { task_id = input.first },
                                          timeout = input.timeout })
    ctx.state("waiting_second")
    local b = ctx.wait("task.resolved", { match = { task_id = input.second } })
    ctx.state("done")
    return { first = a and a.outcome or "timed_out", second = b.outcome }
  end,
}
