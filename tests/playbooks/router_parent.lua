-- Starts children of the process param_waiter, which has a manifest: through the dispatcher
-- (issue 15 §3), unless the call names the playbook; a child the manifest refuses is an error
-- the playbook can catch, recorded so that a replay raises it at the same place.
return {
  name = "router_parent",
  input = { subject = "string?", how = "string" },
  run = function(ctx, input)
    if input.how == "start" then
      return { started = ctx.start("param_waiter", { contract_id = input.subject }) }
    elseif input.how == "named" then
      return { started = ctx.start("param_waiter", { contract_id = input.subject },
                                   { playbook = "param_waiter" }) }
    elseif input.how == "by_subject" then
      return { started = ctx.start("param_waiter", { contract_id = "ignored" },
                                   { subject = input.subject }) }
    elseif input.how == "child" then
      return ctx.child("param_waiter", { contract_id = input.subject })
    end
    local ok, err = pcall(ctx.start, "param_waiter", {}) -- no subject key: refused
    ctx.state("refused")
    ctx.wait("go")
    return { ok = ok, kind = err.kind, code = err.code, field = err.field, message = err.message }
  end,
}
