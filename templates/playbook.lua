-- playbooks/__NAME__.lua: TODO say in one line what this process does.
-- Run it:  spine run playbooks/__NAME__.lua --clock virtual
-- Test it: busted tests/spec/playbooks/__NAME___spec.lua
-- Cases come in through manifests/__NAME__.json: spine start __NAME__ --input '{...}'.
-- The ctx API: docs/playbooks.md; your editor completes it from types/ (LuaLS).

---@type SpinePlaybook
local playbook = {
  name = "__NAME__",
  description = "TODO: what this process does",
  -- What a case brings, checked before it starts ("?": optional). The manifest routes cases
  -- by customer_id (its "subject"): rename it to your case's key in both files.
  input = { customer_id = "string?" },

  run = function(ctx, input)
    local customer = input.customer_id or "customer-1"
    ctx.set("customer_id", customer) -- a searchable attribute
    ctx.state("preparing") -- the business state `spine show` prints

    -- A recorded step: runs once, its result is replayed after a restart. Plain Lua inside:
    -- no ctx calls. A failure is retried on durable timers.
    local prepared = ctx.step("prepare", function()
      return { customer = customer }
    end, { retry = { attempts = 3, backoff = "1s" } })

    -- Waits for a signal (spine signal ID __NAME__.confirmed), at most 3 days: nil after that.
    ctx.state("waiting")
    local confirmation = ctx.wait("__NAME__.confirmed", { timeout = "3d" })

    -- Change the system of record through business intents (docs/intents.md), e.g.
    --   ctx.intent("CreateTask", { kind = "follow_up", subject = customer })
    -- and talk to outside providers through their adapters (docs/providers.md), e.g.
    --   ctx.provider("gridco", "submit_switch", { contract_id = contract })

    ctx.state("done")
    return { customer = prepared.customer, confirmed = confirmation ~= nil }
  end,
}

return playbook
