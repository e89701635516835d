-- The contract intents: each happy path and each rejection, with the rows, history and outbox
-- written (or not), and temporal reads from the history.
local T = require("spine_test")
local L = require("lifecycle_test")

local url = T.newdb("spec_intents_contracts")

local function history(contract_id)
  return T.sql(url, ("SELECT string_agg(intent || ':' || coalesce(before->>'state', '-') || '>' ||" ..
    " (after->>'state'), ' ' ORDER BY history_id) FROM lifecycle.history" ..
    " WHERE entity = 'contract' AND entity_id = '%s'"):format(contract_id))
end

local function events(contract_id)
  return T.sql(url, ("SELECT string_agg(event_type, ' ' ORDER BY event_id) FROM lifecycle.outbox" ..
    " WHERE ordering_key = '%s'"):format(contract_id))
end

describe("CreateContract", function()
  it("creates a draft contract with its history row and ContractCreated event", function()
    local ids = L.contract(url, "cc1")
    assert.are.equal("draft:1", L.state(url, ids.contract))
    assert.are.equal("CreateContract:->draft", history(ids.contract))
    assert.are.equal("ContractCreated", events(ids.contract))
  end)

  it("returns the same result for the same caller-supplied id and arguments", function()
    local again = L.ok(url, "CreateContract", { customer_id = "cc1-cu", provider = "acme_energy",
      tariff = "green", meter_point_id = "cc1-mp", contract_id = "cc1-k" })
    assert.are.same({ contract_id = "cc1-k", state = "draft" }, again)
    assert.are.equal("CreateContract:->draft", history("cc1-k"))
  end)

  it("generates an id when none is given", function()
    local r = L.ok(url, "CreateContract", { customer_id = "cc1-cu", provider = "acme_energy",
                                            tariff = "basic" })
    assert.matches("^%x+%-%x+%-", r.contract_id)
    assert.are.equal("draft:1", L.state(url, r.contract_id))
  end)

  it("is a conflict with the same id and other arguments", function()
    L.rejects(url, "CreateContract", { customer_id = "cc1-cu", provider = "acme_energy",
      tariff = "other", meter_point_id = "cc1-mp", contract_id = "cc1-k" }, "conflict",
      "contract_id")
  end)

  it("rejects an unknown customer, provider or meter point", function()
    L.rejects(url, "CreateContract", { customer_id = "nobody", provider = "acme_energy",
                                       tariff = "t" }, "not_found", "customer_id")
    L.rejects(url, "CreateContract", { customer_id = "cc1-cu", provider = "no_such",
                                       tariff = "t" }, "not_found", "provider")
    L.rejects(url, "CreateContract", { customer_id = "cc1-cu", provider = "acme_energy",
                                       tariff = "t", meter_point_id = "other" }, "not_found",
              "meter_point_id")
  end)

  it("rejects missing and mistyped arguments, naming the field", function()
    L.rejects(url, "CreateContract", { customer_id = "cc1-cu", provider = "acme_energy" },
              "invalid_argument", "tariff")
    L.rejects(url, "CreateContract", { customer_id = "cc1-cu", provider = "acme_energy",
                                       tariff = 7 }, "invalid_argument", "tariff")
    L.rejects(url, "CreateContract", { customer_id = "cc1-cu", provider = "acme_energy",
                                       tariff = "t", colour = "red" }, "invalid_argument", "colour")
  end)
end)

describe("activation", function()
  it("RequestActivation moves draft to pending_activation", function()
    local ids = L.contract(url, "ac1")
    local r = L.ok(url, "RequestActivation", { contract_id = ids.contract,
                                               requested_start = "2026-12-01" })
    assert.are.same({ contract_id = ids.contract, state = "pending_activation", version = 2 }, r)
    assert.are.equal("2026-12-01", T.sql(url,
      "SELECT requested_start FROM lifecycle.contracts WHERE contract_id = 'ac1-k'"))
  end)

  it("RequestActivation refuses a contract that is not draft", function()
    local e = L.rejects(url, "RequestActivation", { contract_id = "ac1-k" }, "invalid_transition")
    assert.matches("contract ac1-k is pending_activation", e.message, 1, true)
  end)

  it("ConfirmActivation activates with the date and the provider's reference", function()
    local r = L.ok(url, "ConfirmActivation", { contract_id = "ac1-k",
      activation_date = "2026-12-01", provider_reference = "ACME-77" })
    assert.are.equal("active", r.state)
    assert.are.equal("2026-12-01|ACME-77", T.sql(url, "SELECT activation_date || '|' ||" ..
      " provider_reference FROM lifecycle.contracts WHERE contract_id = 'ac1-k'"))
    assert.are.equal("CreateContract:->draft RequestActivation:draft>pending_activation" ..
      " ConfirmActivation:pending_activation>active", history("ac1-k"))
    assert.are.equal("ContractCreated ActivationRequested ContractActivated", events("ac1-k"))
  end)

  it("ConfirmActivation refuses a draft contract and a bad date", function()
    local ids = L.contract(url, "ac2")
    L.rejects(url, "ConfirmActivation", { contract_id = ids.contract,
                                          activation_date = "2026-12-01" }, "invalid_transition")
    L.ok(url, "RequestActivation", { contract_id = ids.contract })
    L.rejects(url, "ConfirmActivation", { contract_id = ids.contract,
                                          activation_date = "2026-02-30" }, "invalid_argument",
              "activation_date")
    L.rejects(url, "ConfirmActivation", { contract_id = ids.contract,
                                          activation_date = "1.12.2026" }, "invalid_argument",
              "activation_date")
  end)

  it("CancelActivation cancels a pending activation with its reason", function()
    local r = L.ok(url, "CancelActivation", { contract_id = "ac2-k", reason = "customer withdrew" })
    assert.are.equal("cancelled", r.state)
    assert.are.equal("customer withdrew", T.sql(url,
      "SELECT cancel_reason FROM lifecycle.contracts WHERE contract_id = 'ac2-k'"))
  end)

  it("CancelActivation refuses an active or cancelled contract, or one that does not exist", function()
    L.rejects(url, "CancelActivation", { contract_id = "ac1-k", reason = "x" }, "invalid_transition")
    L.rejects(url, "CancelActivation", { contract_id = "ac2-k", reason = "x" }, "invalid_transition")
    L.rejects(url, "CancelActivation", { contract_id = "nope", reason = "x" }, "not_found",
              "contract_id")
    L.rejects(url, "CancelActivation", { contract_id = "ac1-k" }, "invalid_argument", "reason")
  end)

  it("refuses a stale expected_version as a conflict", function()
    local ids = L.contract(url, "ac3")
    L.rejects(url, "RequestActivation", { contract_id = ids.contract, expected_version = 2 },
              "conflict", "expected_version")
    L.ok(url, "RequestActivation", { contract_id = ids.contract, expected_version = 1 })
  end)
end)

describe("ReportPriceIncrease", function()
  it("records the change and the customer's termination deadline", function()
    local ids = L.active_contract(url, "pi1")
    local r = L.ok(url, "ReportPriceIncrease", { contract_id = ids.contract, new_price_cents = 3490,
      unit = "ct/kWh", effective_date = "2027-02-01", notice_date = "2026-12-20" })
    assert.are.equal("2027-01-31", r.termination_deadline)
    assert.are.equal("3490|2027-02-01", T.sql(url, "SELECT new_price_cents || '|' ||" ..
      " effective_date FROM lifecycle.price_changes WHERE price_change_id = '" ..
      r.price_change_id .. "'"))
    assert.are.equal("1", T.sql(url, "SELECT count(*) FROM lifecycle.history" ..
      " WHERE entity = 'price_change' AND entity_id = '" .. r.price_change_id .. "'"))
    assert.are.equal("ContractCreated ActivationRequested ContractActivated PriceIncreaseReported",
                     events(ids.contract))
  end)

  it("refuses a notice after the effective date, a non-positive price, a draft contract", function()
    L.rejects(url, "ReportPriceIncrease", { contract_id = "pi1-k", new_price_cents = 3490,
      unit = "ct/kWh", effective_date = "2027-02-01", notice_date = "2027-02-01" },
      "invalid_argument", "notice_date")
    L.rejects(url, "ReportPriceIncrease", { contract_id = "pi1-k", new_price_cents = 0,
      unit = "ct/kWh", effective_date = "2027-02-01", notice_date = "2026-12-01" },
      "invalid_argument", "new_price_cents")
    local ids = L.contract(url, "pi2")
    L.rejects(url, "ReportPriceIncrease", { contract_id = ids.contract, new_price_cents = 3490,
      unit = "ct/kWh", effective_date = "2027-02-01", notice_date = "2026-12-01" },
      "invalid_transition")
  end)
end)

describe("switching", function()
  it("RequestSwitch holds the switch; ConfirmSwitch terminates the old contract and activates the new", function()
    local ids = L.active_contract(url, "sw1")
    local r = L.ok(url, "RequestSwitch", { contract_id = ids.contract, provider = "cheap_power",
      tariff = "saver", switch_date = "2027-03-01", new_contract_id = "sw1-new" })
    assert.are.same({ contract_id = "sw1-k", state = "switch_pending", version = 4,
                      new_contract_id = "sw1-new" }, r)
    r = L.ok(url, "ConfirmSwitch", { contract_id = ids.contract })
    assert.are.equal("terminated", r.state)
    assert.are.equal("sw1-new", r.new_contract_id)
    assert.are.equal("terminated|2027-03-01|switched|sw1-new", T.sql(url, "SELECT state || '|' ||" ..
      " termination_date || '|' || termination_reason || '|' || switched_to" ..
      " FROM lifecycle.contracts WHERE contract_id = 'sw1-k'"))
    assert.are.equal("active|cheap_power|saver|2027-03-01|sw1-k|sw1-cu", T.sql(url,
      "SELECT state || '|' || provider || '|' || tariff || '|' || activation_date || '|' ||" ..
      " switched_from || '|' || customer_id FROM lifecycle.contracts WHERE contract_id = 'sw1-new'"))
    assert.are.equal("ContractActivated", events("sw1-new"))
  end)

  it("RequestSwitch refuses a contract that is not active and an unknown provider", function()
    L.rejects(url, "RequestSwitch", { contract_id = "sw1-k", tariff = "x" }, "invalid_transition")
    local ids = L.active_contract(url, "sw2")
    L.rejects(url, "RequestSwitch", { contract_id = ids.contract, tariff = "x", provider = "nope" },
              "not_found", "provider")
    L.rejects(url, "RequestSwitch", { contract_id = ids.contract, tariff = "x",
                                      new_contract_id = "sw1-new" }, "conflict", "new_contract_id")
  end)

  it("ConfirmSwitch refuses without a date from either side, and when nothing is pending", function()
    L.rejects(url, "ConfirmSwitch", { contract_id = "sw2-k" }, "invalid_transition")
    L.ok(url, "RequestSwitch", { contract_id = "sw2-k", tariff = "saver" })
    L.rejects(url, "ConfirmSwitch", { contract_id = "sw2-k" }, "invalid_argument", "switch_date")
  end)

  it("CancelSwitch returns the contract to active", function()
    local r = L.ok(url, "CancelSwitch", { contract_id = "sw2-k", reason = "offer withdrawn" })
    assert.are.equal("active", r.state)
    assert.are.equal("", T.sql(url, "SELECT coalesce(pending_switch::text, '')" ..
                                    " FROM lifecycle.contracts WHERE contract_id = 'sw2-k'"))
    L.rejects(url, "CancelSwitch", { contract_id = "sw2-k", reason = "x" }, "invalid_transition")
  end)
end)

describe("termination", function()
  it("RequestTermination then ConfirmTermination end the contract", function()
    local ids = L.active_contract(url, "te1")
    local r = L.ok(url, "RequestTermination", { contract_id = ids.contract, reason = "moving",
                                                requested_date = "2027-05-31" })
    assert.are.equal("termination_requested", r.state)
    r = L.ok(url, "ConfirmTermination", { contract_id = ids.contract,
                                          termination_date = "2027-05-31" })
    assert.are.same({ contract_id = "te1-k", state = "terminated", version = 5 }, r)
    assert.are.equal("2027-05-31|moving", T.sql(url, "SELECT termination_date || '|' ||" ..
      " termination_reason FROM lifecycle.contracts WHERE contract_id = 'te1-k'"))
    assert.are.equal("ContractCreated ActivationRequested ContractActivated TerminationRequested" ..
                     " ContractTerminated", events("te1-k"))
  end)

  it("refuses to terminate what is not active, or to confirm what was not requested", function()
    L.rejects(url, "RequestTermination", { contract_id = "te1-k", reason = "x" },
              "invalid_transition")
    local ids = L.active_contract(url, "te2")
    L.rejects(url, "ConfirmTermination", { contract_id = ids.contract,
                                           termination_date = "2027-01-01" }, "invalid_transition")
    local d = L.contract(url, "te3")
    L.rejects(url, "RequestTermination", { contract_id = d.contract, reason = "x" },
              "invalid_transition")
  end)

  it("RequestTermination is allowed while a switch is pending and drops the switch", function()
    L.ok(url, "RequestSwitch", { contract_id = "te2-k", tariff = "saver" })
    L.ok(url, "RequestTermination", { contract_id = "te2-k", reason = "leaving" })
    assert.are.equal("termination_requested|", T.sql(url, "SELECT state || '|' ||" ..
      " coalesce(pending_switch::text, '') FROM lifecycle.contracts WHERE contract_id = 'te2-k'"))
  end)
end)

describe("GetContract", function()
  it("reads the current contract", function()
    local r = L.ok(url, "GetContract", { contract_id = "te1-k" })
    assert.are.equal("terminated", r.state)
    assert.are.equal("te1-cu", r.customer_id)
    assert.are.equal(5, r.version)
    L.rejects(url, "GetContract", { contract_id = "nope" }, "not_found", "contract_id")
  end)

  it("answers as_of from the history across several transitions", function()
    local rows = T.sql(url, "SELECT string_agg(at::text || '|' || (at - interval '1 microsecond')" ..
      "::text || '|' || (after->>'state') || '|' || (after->>'version'), E'\\n' ORDER BY" ..
      " history_id) FROM lifecycle.history WHERE entity = 'contract' AND entity_id = 'te1-k'")
    local previous
    local n = 0
    for line in rows:gmatch("[^\n]+") do
      local at, just_before, state, version = line:match("^(.-)|(.-)|(.-)|(.-)$")
      local r = L.ok(url, "GetContract", { contract_id = "te1-k", as_of = at })
      assert.are.equal(state, r.state)
      assert.are.equal(tonumber(version), r.version)
      if previous then
        assert.are.equal(previous, L.ok(url, "GetContract", { contract_id = "te1-k",
                                                              as_of = just_before }).state)
      else
        L.rejects(url, "GetContract", { contract_id = "te1-k", as_of = just_before }, "not_found")
      end
      previous = state
      n = n + 1
    end
    assert.are.equal(5, n)
  end)

  it("rejects an as_of that is not a time", function()
    L.rejects(url, "GetContract", { contract_id = "te1-k", as_of = "yesterday" },
              "invalid_argument", "as_of")
    L.rejects(url, "GetContract", { contract_id = "te1-k", as_of = "2026-13-45T00:00:00Z" },
              "invalid_argument", "as_of")
  end)
end)
