-- tariff_switch (playbooks/tariff_switch.lua): the customer's contract with acme_energy (tariff
-- "green", 34 ct/kWh in the playbook's table) goes to the best offer, gridco's (29 ct). Two
-- provider simulators play gridco (the new provider) and ACME (the old one). Refusals and
-- timeouts run on the virtual clock (spine run); confirmations come through a real
-- `spine serve`, from the simulators' signed callbacks to the providers' webhooks.
local R = require("process_test")
local T, L = R.T, R.L

-- A database with customer <p>-cu, meter point <p>-mp and its active acme_energy contract <p>-k.
local function db(p)
  local url = T.newdb("spec_tariff_switch_" .. p)
  local ids = L.active_contract(url, p)
  L.ok(url, "RegisterProvider", { provider = "gridco" })
  L.ok(url, "RegisterProvider", { provider = "nordlicht" })
  return url, ids
end

local providers, serve = R.providers, R.serve

-- From now on `sim` refuses requests of `kind` ("switch", "termination") with 409.
local function refuse(sim, kind)
  local status = T.http("POST", sim.url .. "/_sim/refuse",
                        { body = T.json.encode({ kind = kind, status = 409 }) })
  assert(status == 200, "POST /_sim/refuse answered " .. status)
end

local function effects(sim)
  return T.sim_effects(sim).effects
end

local function contract(url, id)
  return R.rows(url, "SELECT state, provider, tariff, version, switched_to, activation_date," ..
                     " termination_date FROM lifecycle.contracts WHERE contract_id = '" .. id ..
                     "'")[1]
end

local function stop(...)
  for _, h in ipairs({ ... }) do T.kill(h) end
end

describe("tariff_switch", function()
  it("switches to the cheapest offer of another provider once both providers confirm", function()
    local url, ids = db("happy")
    local srv, sims = serve(url, { "gridco", "acme_energy" })
    local id = R.start(url, "tariff_switch", { contract_id = ids.contract,
                                               switch_date = "2027-01-01" })
    local wf = R.wait(url, id, "completed")
    local new_side, old_side = effects(sims.gridco), effects(sims.acme)
    stop(srv, sims.gridco, sims.acme)
    R.replays(url, id)
    assert.are.same({ outcome = "switched", provider = "gridco", tariff = "grid_fix_24",
                      switch_date = "2027-01-01", cents_per_kwh = 29, previous_cents_per_kwh = 34,
                      new_contract_id = wf.result.new_contract_id }, wf.result)
    assert.are.equal("switched", wf.state)
    local old, new = contract(url, ids.contract), contract(url, wf.result.new_contract_id)
    assert.are.same({ "terminated", wf.result.new_contract_id, "2027-01-01" },
                    { old.state, old.switched_to, old.termination_date })
    assert.are.same({ "active", "gridco", "grid_fix_24", "2027-01-01" },
                    { new.state, new.provider, new.tariff, new.activation_date })
    -- each provider was asked once, with the step's idempotency key, and confirmed
    assert.are.same({ 1, 1 }, { #new_side, #old_side })
    local submit = R.step(wf, "provider", "gridco.submit_switch")
    assert.are.equal(id .. ":" .. math.tointeger(submit.seq), new_side[1].idempotency_key)
    assert.are.same({ contract = wf.result.new_contract_id, meter_point = ids.meter_point,
                      start = "2027-01-01" }, T.json.decode(new_side[1].request))
    assert.are.equal("termination", old_side[1].kind)
    assert.are.equal("2027-01-01", T.json.decode(old_side[1].request).date)
    assert.are.same({ true, false, true, false }, { new_side[1].confirmed, new_side[1].cancelled,
                                                    old_side[1].confirmed, old_side[1].cancelled })
  end)

  it("ends without a switch when no offer is cheaper than what the customer pays", function()
    local url, ids = db("no_offer")
    local sims, env = providers()
    local wf = R.run(url, "tariff_switch", { contract_id = ids.contract, current_price_cents = 28 },
                     env)
    local asked = T.sim_effects(sims.gridco).requests + T.sim_effects(sims.acme).requests
    stop(sims.gridco, sims.acme)
    assert.are.equal("completed", wf.status, T.json.encode(wf.error))
    assert.are.same({ outcome = "no_better_offer", current_price_cents = 28 }, wf.result)
    assert.are.same({ "intent:GetContract" }, R.steps(wf))
    assert.are.equal(0, asked)
    assert.are.equal("active", contract(url, ids.contract).state)
  end)

  it("takes the case's own offers, a tie going to the offer listed first", function()
    local url, ids = db("offers")
    local sims, env = providers()
    -- gridco refuses: the case ends at once, after choosing
    refuse(sims.gridco, "switch")
    local wf = R.run(url, "tariff_switch", { contract_id = ids.contract, offers = {
      { provider = "gridco", tariff = "grid_dynamic", cents_per_kwh = 30 },
      { provider = "acme_energy", tariff = "green", cents_per_kwh = 32 },
      { provider = "nordlicht", tariff = "nord_strom_basis", cents_per_kwh = 30 },
    } }, env)
    stop(sims.gridco, sims.acme)
    assert.are.equal("gridco", wf.attributes.new_provider)
    local asked = R.rows(url, "SELECT after->'pending_switch' AS switch FROM lifecycle.history" ..
                              " WHERE intent = 'RequestSwitch'")[1].switch
    assert.are.same({ "gridco", "grid_dynamic" }, { asked.provider, asked.tariff })
  end)

  it("refuses a contract that is not active, asking no provider", function()
    local url = T.newdb("spec_tariff_switch_draft")
    local ids = L.contract(url, "draft")
    local wf = R.run(url, "tariff_switch", { contract_id = ids.contract })
    assert.are.equal("failed", wf.status)
    assert.are.same({ kind = "business", code = "not_switchable" },
                    { kind = wf.error.kind, code = wf.error.code })
    assert.matches("is draft", wf.error.message, 1, true)
  end)

  it("refuses a confirmation_timeout it cannot read before asking anyone", function()
    local url, ids = db("bad_timeout")
    local wf = R.run(url, "tariff_switch", { contract_id = ids.contract,
                                             confirmation_timeout = "two weeks" })
    assert.are.equal("failed", wf.status)
    assert.are.equal("invalid_input", wf.error.code)
    assert.are.same({ "fail:fail" }, R.steps(wf))
    assert.are.equal("active", contract(url, ids.contract).state)
  end)

  it("cancels the switch at the new provider when the old one refuses the termination",
     function()
    local url, ids = db("termination_refused")
    local sims, env = providers()
    refuse(sims.acme, "termination")
    local wf = R.run(url, "tariff_switch", { contract_id = ids.contract }, env)
    local new_side, old_side = effects(sims.gridco), effects(sims.acme)
    stop(sims.gridco, sims.acme)
    assert.are.equal("compensated", wf.status)
    assert.are.same({ kind = "business", code = "termination_refused" },
                    { kind = wf.error.kind, code = wf.error.code })
    assert.are.same({ "intent:GetContract", "now:now", "intent:RequestSwitch",
                      "provider:gridco.submit_switch", "provider:acme_energy.submit_termination",
                      "fail:fail", "compensate:compensation 2", "provider:gridco.cancel_switch",
                      "compensate:compensation 1", "intent:CancelSwitch" }, R.steps(wf))
    assert.are.equal(1, #new_side)
    assert.is_true(new_side[1].cancelled)
    assert.are.equal(0, #old_side)
    assert.are.same({ "active", "acme_energy", 5 }, { contract(url, ids.contract).state,
      contract(url, ids.contract).provider, contract(url, ids.contract).version })
  end)

  it("asks nothing of the old provider when the new one refuses the switch", function()
    local url, ids = db("switch_refused")
    local sims, env = providers()
    refuse(sims.gridco, "switch")
    local wf = R.run(url, "tariff_switch", { contract_id = ids.contract }, env)
    local old_asked = T.sim_effects(sims.acme).requests
    stop(sims.gridco, sims.acme)
    assert.are.equal("compensated", wf.status)
    assert.are.equal("switch_refused", wf.error.code)
    assert.matches("gridco refused submit_switch", wf.error.message, 1, true)
    assert.are.equal(0, old_asked)
    assert.are.equal("active", contract(url, ids.contract).state)
  end)

  it("takes both sides back when no confirmation comes within 14 days", function()
    local url, ids = db("timeout")
    local sims, env = providers()
    local wf = R.run(url, "tariff_switch", { contract_id = ids.contract }, env)
    local new_side, old_side = effects(sims.gridco), effects(sims.acme)
    stop(sims.gridco, sims.acme)
    assert.are.equal("compensated", wf.status)
    assert.are.equal("switch_not_confirmed", wf.error.code)
    local wait = R.step(wf, "wait", "provider.switch_confirmed")
    assert.are.equal(T.json.null, wait.result)
    assert.are.same({ true, true }, { new_side[1].cancelled, old_side[1].cancelled })
    assert.are.equal("active", contract(url, ids.contract).state)
  end)

  it("withdraws both sides when only the new provider confirms in time", function()
    local url, ids = db("half_confirmed")
    local srv, sims = serve(url, { "gridco" })
    -- a short real deadline: gridco's confirmation comes within it, ACME's never
    local id = R.start(url, "tariff_switch", { contract_id = ids.contract,
                                               confirmation_timeout = "3s" })
    local wf = R.wait(url, id, "compensated")
    local new_side, old_side = effects(sims.gridco), effects(sims.acme)
    stop(srv, sims.gridco, sims.acme)
    R.replays(url, id)
    assert.are.equal("termination_not_confirmed", wf.error.code)
    assert.is_table(R.step(wf, "wait", "provider.switch_confirmed").result)
    assert.are.same({ true, true }, { new_side[1].confirmed, new_side[1].cancelled })
    assert.are.same({ false, true }, { old_side[1].confirmed, old_side[1].cancelled })
    assert.are.equal("active", contract(url, ids.contract).state)
  end)

  it("is taken back when an operator cancels it while it waits", function()
    local url, ids = db("cancelled")
    local srv, sims = serve(url, {})
    local id = R.start(url, "tariff_switch", { contract_id = ids.contract })
    R.wait(url, id, "waiting", "awaiting_confirmations")
    assert.are.equal(0, (T.spine(url, { "cancel", id })))
    local wf = R.wait(url, id, "cancelled")
    local new_side, old_side = effects(sims.gridco), effects(sims.acme)
    stop(srv, sims.gridco, sims.acme)
    assert.are.same({ true, true }, { new_side[1].cancelled, old_side[1].cancelled })
    assert.is_table(R.step(wf, "intent", "CancelSwitch"))
    assert.are.equal("active", contract(url, ids.contract).state)
  end)

  it("has a manifest that spine manifests check accepts", function()
    local url = T.newdb("spec_tariff_switch_manifest")
    assert.is_true(R.manifest_ok(url, "tariff_switch"))
  end)
end)
