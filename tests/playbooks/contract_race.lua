-- Applies one intent (input.action with input.args) and reports whether it won or how it was
-- rejected: the racing workload of tests/spec/intents/race_spec.lua.
return {
  name = "contract_race",
  input = { action = "string", args = "table" },
  run = function(ctx, input)
    local ok, res = pcall(ctx.intent, input.action, input.args)
    if ok then return { won = true, state = res.state, version = res.version } end
    return { won = false, kind = res.kind, code = res.code, message = res.message }
  end,
}
