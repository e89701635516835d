-- Opens a human task about customer `customer_id` and waits for its resolution: ResolveTask
-- signals "task.resolved" to the workflow that opened the task (tests/spec/testing).
return {
  name = "task_waiter",
  input = { customer_id = "string" },
  run = function(ctx, input)
    ctx.intent("CreateTask", { kind = "call_back", subject = input.customer_id })
    ctx.state("waiting_for_task")
    return ctx.wait("task.resolved")
  end,
}
