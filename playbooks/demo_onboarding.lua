-- A small onboarding process to see the engine work (the real processes come with the intent
-- catalog): a welcome call with a deadline, a cooling-off period, a retried step, a saga undo.
-- The experiment's variant "direct" (manifests/demo_onboarding.json) makes no welcome call and
-- has a shorter cooling-off period: its parameters welcome_call = false, cooling_off = "7d".
return {
  name = "demo_onboarding",
  description = "Welcome a new customer: call, wait out the cooling-off period, confirm",
  input = { customer = "string", cooling_off = "string?" },
  run = function(ctx, input)
    local call
    if ctx.param("welcome_call", true) then
      ctx.state("calling")
      ctx.log("info", "welcome call scheduled", { customer = input.customer })
      call = ctx.wait("welcome_call.done", { timeout = "3d" })
      if not call then
        ctx.state("call_missed")
        ctx.log("warn", "no welcome call within 3 days", { customer = input.customer })
      end
    end
    ctx.compensate(function() ctx.log("info", "welcome pack withdrawn") end)
    ctx.state("cooling_off")
    ctx.sleep(input.cooling_off or ctx.param("cooling_off", "14d"))
    local attempts = 0
    local pack = ctx.step("send_welcome_pack", function()
      attempts = attempts + 1
      if attempts == 1 then error("printer busy") end
      return { pack = "WP-" .. input.customer }
    end, { retry = { attempts = 3, backoff = "1s" } })
    ctx.set("welcome_pack", pack.pack)
    ctx.state("welcomed")
    return { customer = input.customer, reached = call and call.reached or false,
             pack = pack.pack }
  end,
}
