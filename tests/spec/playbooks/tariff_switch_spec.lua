-- tariff_switch (playbooks/tariff_switch.lua): the customer's contract with acme_energy (tariff
-- "green", 34 ct/kWh in the playbook's table) goes to the best offer, gridco's (29 ct). On the
-- real engine with the manual clock (spine.testing), against simulated gridco (the new
-- provider) and ACME (the old one): confirmations come as their signed webhooks, refusals as
-- scripted answers, and the 14-day deadline passes with env:advance. Each case's history
-- replays against its playbook.
local S = require("spine.testing")

local DAY = 86400

-- Customer <p>-cu, meter point <p>-mp and its active acme_energy contract <p>-k (or draft).
local function contract_of(env, p, draft)
  env:intent("RegisterProvider", { provider = "acme_energy", display_name = "ACME Energy" })
  env:intent("RegisterProvider", { provider = "gridco" })
  env:intent("RegisterProvider", { provider = "nordlicht" })
  env:intent("RegisterCustomer", { customer_id = p .. "-cu", name = "Erika Mustermann",
                                   email = p .. "@example.org" })
  env:intent("RegisterMeterPoint", { customer_id = p .. "-cu", meter_id = p .. "-meter",
                                     commodity = "electricity", meter_point_id = p .. "-mp" })
  env:intent("CreateContract", { customer_id = p .. "-cu", provider = "acme_energy",
                                 tariff = "green", meter_point_id = p .. "-mp",
                                 contract_id = p .. "-k" })
  if not draft then
    env:intent("RequestActivation", { contract_id = p .. "-k" })
    env:intent("ConfirmActivation", { contract_id = p .. "-k", activation_date = "2026-12-01" })
  end
  return { customer = p .. "-cu", contract = p .. "-k", meter_point = p .. "-mp" }
end

local function contract(env, id)
  return env:sql("SELECT state, provider, tariff, version, switched_to, activation_date::text," ..
                 " termination_date::text FROM lifecycle.contracts WHERE contract_id = " ..
                 S.literal(id))[1]
end

-- What `provider` received about case <p> (its requests name the meter point <p>-mp).
local function effects(env, provider, p)
  local list = {}
  for _, e in ipairs(env:provider(provider):effects().effects or {}) do
    if tostring(e.request):find('"' .. p .. "-mp", 1, true) then
      e.request = S.json.decode(e.request)
      list[#list + 1] = e
    end
  end
  return list
end

-- The provider's next request about case <p> is refused (409).
local function refuse(env, provider, p)
  env:provider(provider):answer({ status = 409, json = { error = "refused" }, match = p .. "-mp" })
end

-- The provider confirms what it received about case <p> with its signed webhook.
local function confirm(env, provider, p, event)
  local e = effects(env, provider, p)[1]
  local status = env:webhook(provider, { event = event, id = e.id, status = "confirmed",
                                         idempotency_key = e.idempotency_key })
  assert.are.equal(202, status)
end

local function step(case, kind, name)
  for _, s in ipairs(case:steps()) do
    if s.kind == kind and s.name == name then return s end
  end
end

-- "intent state" of each history row of the contract, oldest first.
local function contract_history(env, id)
  local list = {}
  for _, h in ipairs(env:sql("SELECT intent, after->>'state' AS state FROM lifecycle.history" ..
                             " WHERE entity = 'contract' AND entity_id = " .. S.literal(id) ..
                             " ORDER BY history_id")) do
    list[#list + 1] = h.intent .. " " .. h.state
  end
  return list
end

describe("tariff_switch", function()
  local env
  setup(function()
    env = S.new({ now = "2026-12-10T09:00:00Z" })
  end)
  teardown(function()
    if env then env:close() end
  end)
  before_each(function()
    env:reset_providers()
  end)

  it("switches to the cheapest offer of another provider once both providers confirm", function()
    local ids = contract_of(env, "happy")
    local case = env:start("tariff_switch", { contract_id = ids.contract,
                                              switch_date = "2027-01-01" })
    assert.are.equal("awaiting_confirmations", case:state())
    assert.are.equal("switch_pending", contract(env, ids.contract).state)
    env:advance("3d")
    confirm(env, "gridco", "happy", "switch.confirmed")
    assert.are.equal("awaiting_confirmations", case:state())
    env:advance("2d")
    confirm(env, "acme_energy", "happy", "termination.confirmed")
    assert.are.equal("completed", case:status())
    local result = case:result()
    assert.are.same({ outcome = "switched", provider = "gridco", tariff = "grid_fix_24",
                      switch_date = "2027-01-01", cents_per_kwh = 29, previous_cents_per_kwh = 34,
                      new_contract_id = result.new_contract_id }, result)
    assert.are.equal("switched", case:state())
    local old, new = contract(env, ids.contract), contract(env, result.new_contract_id)
    assert.are.same({ "terminated", result.new_contract_id, "2027-01-01" },
                    { old.state, old.switched_to, old.termination_date })
    assert.are.same({ "active", "gridco", "grid_fix_24", "2027-01-01" },
                    { new.state, new.provider, new.tariff, new.activation_date })
    assert.are.same({ "CreateContract draft", "RequestActivation pending_activation",
                      "ConfirmActivation active", "RequestSwitch switch_pending",
                      "ConfirmSwitch terminated" }, contract_history(env, ids.contract))
    -- each provider was asked once, with the step's idempotency key, and nothing was undone
    local new_side, old_side = effects(env, "gridco", "happy"), effects(env, "acme_energy", "happy")
    assert.are.same({ 1, 1 }, { #new_side, #old_side })
    local submit = step(case, "provider", "gridco.submit_switch")
    assert.are.equal(case.id .. ":" .. math.tointeger(submit.seq), new_side[1].idempotency_key)
    assert.are.same({ contract = result.new_contract_id, meter_point = ids.meter_point,
                      start = "2027-01-01" }, new_side[1].request)
    assert.are.equal("termination", old_side[1].kind)
    assert.are.equal("2027-01-01", old_side[1].request.date)
    assert.are.same({ false, false }, { new_side[1].cancelled, old_side[1].cancelled })
    assert.are.same({ "GetContract", "RequestSwitch", "ConfirmSwitch" }, case:intent_names())
    assert.is_true((case:replays()))
  end)

  it("ends without a switch when no offer is cheaper than what the customer pays", function()
    local ids = contract_of(env, "nooffer")
    local asked = env:provider("gridco"):requests() + env:provider("acme_energy"):requests()
    local case = env:start("tariff_switch", { contract_id = ids.contract,
                                              current_price_cents = 28 })
    assert.are.equal("completed", case:status())
    assert.are.same({ outcome = "no_better_offer", current_price_cents = 28 }, case:result())
    assert.are.same({ "intent GetContract" }, case:step_names())
    assert.are.equal(asked, env:provider("gridco"):requests() +
                            env:provider("acme_energy"):requests())
    assert.are.equal("active", contract(env, ids.contract).state)
    assert.is_true((case:replays()))
  end)

  it("takes the case's own offers, a tie going to the offer listed first", function()
    local ids = contract_of(env, "offers")
    refuse(env, "gridco", "offers") -- the case ends at once, after choosing
    local case = env:start("tariff_switch", { contract_id = ids.contract, offers = {
      { provider = "gridco", tariff = "grid_dynamic", cents_per_kwh = 30 },
      { provider = "acme_energy", tariff = "green", cents_per_kwh = 32 },
      { provider = "nordlicht", tariff = "nord_strom_basis", cents_per_kwh = 30 },
    } })
    assert.are.equal("gridco", case:attributes().new_provider)
    local asked = case:intents()[1]
    assert.are.equal("RequestSwitch", asked.intent)
    assert.are.same({ "gridco", "grid_dynamic" }, { asked.after.pending_switch.provider,
                                                    asked.after.pending_switch.tariff })
    assert.are.equal("switch_refused", case:error().code)
    assert.is_true((case:replays()))
  end)

  it("refuses a contract that is not active, asking no provider", function()
    local ids = contract_of(env, "draft", true)
    local case = env:start("tariff_switch", { contract_id = ids.contract })
    assert.are.equal("failed", case:status())
    local err = case:error()
    assert.are.same({ kind = "business", code = "not_switchable" },
                    { kind = err.kind, code = err.code })
    assert.matches("is draft", err.message, 1, true)
    assert.are.same({}, effects(env, "gridco", "draft"))
    assert.is_true((case:replays()))
  end)

  it("refuses a confirmation_timeout it cannot read before asking anyone", function()
    local ids = contract_of(env, "badtimeout")
    local case = env:start("tariff_switch", { contract_id = ids.contract,
                                              confirmation_timeout = "two weeks" })
    assert.are.equal("failed", case:status())
    assert.are.equal("invalid_input", case:error().code)
    assert.are.same({ "fail fail" }, case:step_names())
    assert.are.equal("active", contract(env, ids.contract).state)
    assert.is_true((case:replays()))
  end)

  it("cancels the switch at the new provider when the old one refuses the termination",
     function()
    local ids = contract_of(env, "termrefused")
    refuse(env, "acme_energy", "termrefused")
    local case = env:start("tariff_switch", { contract_id = ids.contract })
    assert.are.equal("compensated", case:status())
    local err = case:error()
    assert.are.same({ kind = "business", code = "termination_refused" },
                    { kind = err.kind, code = err.code })
    assert.are.same({ "intent GetContract", "now now", "intent RequestSwitch",
                      "provider gridco.submit_switch", "provider acme_energy.submit_termination",
                      "fail fail", "compensate compensation 2", "provider gridco.cancel_switch",
                      "compensate compensation 1", "intent CancelSwitch" }, case:step_names())
    local new_side = effects(env, "gridco", "termrefused")
    assert.are.equal(1, #new_side)
    assert.is_true(new_side[1].cancelled)
    assert.are.same({}, effects(env, "acme_energy", "termrefused"))
    local c = contract(env, ids.contract)
    assert.are.same({ "active", "acme_energy", 5 }, { c.state, c.provider, c.version })
    local h = contract_history(env, ids.contract)
    assert.are.same({ "RequestSwitch switch_pending", "CancelSwitch active" }, { h[4], h[5] })
    assert.is_true((case:replays()))
  end)

  it("asks nothing of the old provider when the new one refuses the switch", function()
    local ids = contract_of(env, "switchrefused")
    refuse(env, "gridco", "switchrefused")
    local case = env:start("tariff_switch", { contract_id = ids.contract })
    assert.are.equal("compensated", case:status())
    local err = case:error()
    assert.are.equal("switch_refused", err.code)
    assert.matches("gridco refused submit_switch", err.message, 1, true)
    assert.are.same({}, effects(env, "acme_energy", "switchrefused"))
    assert.are.equal("active", contract(env, ids.contract).state)
    local written = case:intents()
    assert.are.same({ "RequestSwitch", "CancelSwitch" }, { written[1].intent, written[2].intent })
    assert.is_true((case:replays()))
  end)

  it("takes both sides back when no confirmation comes within 14 days", function()
    local ids = contract_of(env, "timeout")
    local case = env:start("tariff_switch", { contract_id = ids.contract })
    env:advance(14 * DAY - 60)
    assert.are.equal("awaiting_confirmations", case:state())
    assert.are.same({ false, false }, { effects(env, "gridco", "timeout")[1].cancelled,
                                        effects(env, "acme_energy", "timeout")[1].cancelled })
    env:advance("60s")
    assert.are.equal("compensated", case:status())
    assert.are.equal("switch_not_confirmed", case:error().code)
    assert.is_nil(step(case, "wait", "provider.switch_confirmed").result)
    assert.are.same({ true, true }, { effects(env, "gridco", "timeout")[1].cancelled,
                                      effects(env, "acme_energy", "timeout")[1].cancelled })
    assert.are.equal("active", contract(env, ids.contract).state)
    assert.is_true((case:replays()))
  end)

  it("waits for both confirmations at once: the old provider's may come first", function()
    local ids = contract_of(env, "reversed")
    local case = env:start("tariff_switch", { contract_id = ids.contract,
                                              switch_date = "2027-01-01" })
    env:advance("1d")
    confirm(env, "acme_energy", "reversed", "termination.confirmed")
    assert.are.equal("awaiting_confirmations", case:state())
    env:restart("KILL") -- a worker dies between the two: the next one replays both branches
    env:advance("1d")
    confirm(env, "gridco", "reversed", "switch.confirmed")
    assert.are.equal("completed", case:status())
    assert.are.equal("switched", case:result().outcome)
    local switch = step(case, "wait", "provider.switch_confirmed")
    local termination = step(case, "wait", "provider.termination_confirmed")
    assert.are.same({ "6.switch", "6.termination" }, { switch.branch, termination.branch })
    assert.is_true(termination.ended_at < switch.ended_at) -- taken in the order they came
    assert.are.same({ 1, 1 }, { #effects(env, "gridco", "reversed"),
                                #effects(env, "acme_energy", "reversed") })
    assert.are.same({ "GetContract", "RequestSwitch", "ConfirmSwitch" }, case:intent_names())
    assert.is_true((case:replays()))
  end)

  it("withdraws both sides when only the new provider confirms in time", function()
    local ids = contract_of(env, "halfconfirmed")
    local case = env:start("tariff_switch", { contract_id = ids.contract })
    env:advance("2d")
    confirm(env, "gridco", "halfconfirmed", "switch.confirmed")
    assert.are.equal("awaiting_confirmations", case:state())
    env:advance("12d")
    assert.are.equal("compensated", case:status())
    assert.are.equal("termination_not_confirmed", case:error().code)
    assert.is_table(step(case, "wait", "provider.switch_confirmed").result)
    assert.are.same({ true, true }, { effects(env, "gridco", "halfconfirmed")[1].cancelled,
                                      effects(env, "acme_energy", "halfconfirmed")[1].cancelled })
    assert.are.equal("active", contract(env, ids.contract).state)
    assert.is_true((case:replays()))
  end)

  it("is taken back when an operator cancels it while it waits", function()
    local ids = contract_of(env, "cancelled")
    local case = env:start("tariff_switch", { contract_id = ids.contract })
    assert.are.equal("awaiting_confirmations", case:state())
    assert.are.equal(0, (env:spine({ "cancel", case.id })))
    env:settle()
    assert.are.equal("cancelled", case:wait_for_status("cancelled").status)
    assert.are.same({ true, true }, { effects(env, "gridco", "cancelled")[1].cancelled,
                                      effects(env, "acme_energy", "cancelled")[1].cancelled })
    assert.is_table(step(case, "intent", "CancelSwitch"))
    assert.are.equal("active", contract(env, ids.contract).state)
    assert.is_true((case:replays()))
  end)

  it("has a manifest that spine manifests check accepts", function()
    local report = env:spine_json({ "manifests", "check" })
    for _, e in ipairs(report.errors or {}) do
      assert.is_nil(e.where:find("tariff_switch", 1, true), e.where .. ": " .. e.message)
    end
    local found = false
    for _, m in ipairs(report.manifests or {}) do
      if m.process == "tariff_switch" then found = true end
    end
    assert.is_true(found)
  end)
end)
