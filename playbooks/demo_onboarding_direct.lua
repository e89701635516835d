-- The "direct" variant of demo_onboarding, routed by manifests/demo_onboarding.json: no welcome
-- call to wait for, a shorter cooling-off period, then the same welcome pack.
return {
  name = "demo_onboarding_direct",
  description = "Welcome a new customer without a welcome call",
  input = { customer = "string", cooling_off = "string?" },
  run = function(ctx, input)
    ctx.compensate(function() ctx.log("info", "welcome pack withdrawn") end)
    ctx.state("cooling_off")
    ctx.sleep(input.cooling_off or "7d")
    local pack = ctx.step("send_welcome_pack", function()
      return { pack = "WP-" .. input.customer }
    end, { retry = { attempts = 3, backoff = "1s" } })
    ctx.set("welcome_pack", pack.pack)
    ctx.state("welcomed")
    return { customer = input.customer, reached = false, pack = pack.pack }
  end,
}
