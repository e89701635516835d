-- playbooks/tariff_switch.lua: switches a customer's contract to the best offer of another
-- provider. The new provider takes over the supply, the old one ends the contract; the switch
-- is confirmed in the system of record only once both providers confirmed. If either side
-- fails (a refusal, no confirmation in time), the side that went through is taken back.
-- Cases: spine start tariff_switch --input '{"contract_id": "k-1"}', or started by
--          price_increase when a customer uses their special termination right.
-- Signals: provider.switch_confirmed (the new provider), provider.termination_confirmed (the
--          old one): their webhooks, or an operator (spine signal) for email-only providers.
-- Specs: tests/spec/playbooks/tariff_switch_spec.lua

-- The offers the platform switches customers to, in cents per kWh. The pricing team edits this
-- table; every edit is a new playbook version (switches in flight keep the offers they started
-- with). A case may bring its own (input.offers), for experiments and tests.
local OFFERS = {
  { provider = "gridco", tariff = "grid_fix_24", cents_per_kwh = 29 },
  { provider = "nordlicht", tariff = "nord_strom_basis", cents_per_kwh = 31 },
  { provider = "acme_energy", tariff = "green", cents_per_kwh = 34 },
}

-- A supplier change takes about three weeks (GPKE): the default switch date.
local LEAD_DAYS = 21
-- How long both providers have to confirm.
local CONFIRMATION_TIMEOUT = "14d"
-- Provider calls: retried on durable timers; when the attempts run out the case pauses for an
-- operator (an incident).
local CALL = { retry = { attempts = 5, backoff = "1m", max = "1h" }, timeout = "30s" }

local time = spine.time

-- A duration such as "14d" or "1h30m" in seconds; the case fails as invalid input otherwise.
local function seconds(ctx, duration)
  local ok, s = pcall(time.duration, duration)
  if not ok then ctx.fail("invalid_input", duration .. " is not a duration like 14d or 1h30m") end
  return s
end

-- The cheapest offer of another provider, if it is cheaper than what the customer pays now
-- (`current`, else the table's price of their tariff; unknown: any offer is better). Ties go
-- to the offer listed first. Returns the offer (or nil) and the current price.
local function best_offer(offers, contract, current)
  local best
  for _, o in ipairs(offers) do
    if o.provider == contract.provider and o.tariff == contract.tariff then
      current = current or o.cents_per_kwh
    elseif o.provider ~= contract.provider
           and (not best or o.cents_per_kwh < best.cents_per_kwh) then
      best = o
    end
  end
  if best and current and best.cents_per_kwh >= current then best = nil end
  return best, current
end

-- Calls a provider; its refusal ends the switch as `code` (the undos registered so far run).
local function ask(ctx, provider, operation, args, code)
  local ok, res = pcall(ctx.provider, provider, operation, args, CALL)
  if ok then return res end
  if res.kind == "rejected" then
    ctx.fail(code, provider .. " refused " .. operation .. ": " .. res.message,
             { provider = provider, details = res.details })
  end
  error(res)
end

-- The confirmation `signal`, or nil once `deadline` (seconds since the epoch) has passed. At
-- least 1s of waiting: a confirmation that came already is taken even at the deadline.
local function confirmation(ctx, signal, deadline)
  return ctx.wait(signal, { timeout = math.max(math.ceil(deadline - ctx.now()), 1) })
end

---@type SpinePlaybook
local playbook = {
  name = "tariff_switch",
  description = "Switch a contract to the best offer of another provider, both sides confirmed",
  input = { contract_id = "string", switch_date = "date?", current_price_cents = "integer?",
            confirmation_timeout = "string?", offers = "table?", reason = "string?" },

  run = function(ctx, input)
    local contract_id = input.contract_id
    ctx.set("contract_id", contract_id)
    local confirm_within = seconds(ctx, input.confirmation_timeout or CONFIRMATION_TIMEOUT)

    ctx.state("choosing_offer")
    local contract = ctx.intent("GetContract", { contract_id = contract_id })
    if contract.state ~= "active" then
      ctx.fail("not_switchable", "contract " .. contract_id .. " is " .. contract.state)
    end
    local offer, current = best_offer(input.offers or OFFERS, contract, input.current_price_cents)
    if not offer then
      ctx.state("no_better_offer")
      return { outcome = "no_better_offer", current_price_cents = current }
    end
    ctx.set("new_provider", offer.provider)
    local switch_date = input.switch_date or time.add_days(ctx.today(), LEAD_DAYS)
    local old_provider = contract.provider
    local reason = input.reason or "switch to a better tariff"

    -- The system of record first: the contract is switch_pending until both sides confirm.
    ctx.state("requesting_switch")
    local pending = ctx.intent("RequestSwitch", {
      contract_id = contract_id, provider = offer.provider, tariff = offer.tariff,
      switch_date = switch_date, expected_version = contract.version,
    })
    ctx.compensate(function()
      ctx.intent("CancelSwitch", { contract_id = contract_id, reason = "switch abandoned" })
    end)

    -- The new provider takes over the supply on the switch date ...
    local new = ask(ctx, offer.provider, "submit_switch", {
      contract_id = pending.new_contract_id, meter_point = contract.meter_point_id,
      requested_start = switch_date, tariff = offer.tariff,
    }, "switch_refused")
    ctx.compensate(function()
      ctx.provider(offer.provider, "cancel_switch",
                   { reference = new.reference, reason = "switch abandoned" }, CALL)
    end)

    -- ... and the old one ends the contract on the same date. (The intent RequestTermination
    -- is not applied: it would end the pending switch. ConfirmSwitch terminates the old
    -- contract in the system of record.)
    ctx.state("terminating_old_contract")
    local old = ask(ctx, old_provider, "submit_termination", {
      contract_id = contract_id, meter_point = contract.meter_point_id,
      termination_date = switch_date, reason = reason,
    }, "termination_refused")
    ctx.compensate(function()
      ctx.provider(old_provider, "withdraw_termination",
                   { reference = old.reference, reason = "switch abandoned" }, CALL)
    end)

    -- Both confirmations at once, whichever comes first, until one deadline.
    ctx.state("awaiting_confirmations")
    local deadline = ctx.now() + confirm_within
    local confirmed = ctx.parallel({
      switch = function(c)
        return confirmation(c, "provider.switch_confirmed", deadline) ~= nil
      end,
      termination = function(c)
        return confirmation(c, "provider.termination_confirmed", deadline) ~= nil
      end,
    })
    if not confirmed.switch then
      ctx.fail("switch_not_confirmed", offer.provider .. " did not confirm the switch in time")
    end
    if not confirmed.termination then
      ctx.fail("termination_not_confirmed",
               old_provider .. " did not confirm the termination in time")
    end

    ctx.state("confirming")
    local done = ctx.intent("ConfirmSwitch", { contract_id = contract_id, switch_date = switch_date,
                                               provider_reference = new.reference })
    ctx.state("switched")
    return { outcome = "switched", new_contract_id = done.new_contract_id,
             provider = offer.provider, tariff = offer.tariff, switch_date = switch_date,
             cents_per_kwh = offer.cents_per_kwh, previous_cents_per_kwh = current }
  end,
}

return playbook
