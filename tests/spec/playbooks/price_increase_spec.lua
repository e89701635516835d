-- price_increase (playbooks/price_increase.lua): ACME raises the price of the customer's
-- contract. On the real engine with the manual clock (spine.testing): the termination right's
-- deadline passes with env:advance, the customer's answer comes as the signal
-- customer.terminate_requested, and the switch it starts runs against simulated gridco and ACME,
-- which confirm it with their signed webhooks. Each case's history replays against its playbook.
local S = require("spine.testing")

local DAY = 86400

-- Customer <p>-cu, meter point <p>-mp and its acme_energy contract <p>-k, active unless `draft`.
local function contract_of(env, p, draft)
  env:intent("RegisterProvider", { provider = "acme_energy", display_name = "ACME Energy" })
  env:intent("RegisterProvider", { provider = "gridco" })
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

-- The date `n` days from now on the manual clock (UTC).
local function day(env, n)
  return os.date("!%Y-%m-%d", math.floor(env:now()) + n * DAY)
end

-- The increase ACME announces today for `effective` (default: in 60 days).
local function increase(env, ids, effective, notice)
  return { contract_id = ids.contract, new_price_cents = 38, unit = "kWh",
           effective_date = effective or day(env, 60), notice_date = notice or day(env, 0) }
end

local function price_changes(env, contract)
  return env:sql("SELECT new_price_cents, unit, effective_date::text," ..
                 " termination_deadline::text FROM lifecycle.price_changes" ..
                 " WHERE contract_id = " .. S.literal(contract))
end

local function tasks(env, subject)
  return env:sql("SELECT task_id, kind, status, data, workflow_id FROM lifecycle.tasks" ..
                 " WHERE subject = " .. S.literal(subject) .. " ORDER BY created_at, task_id")
end

local function state(env, contract)
  return env:contract(contract).state
end

local function step(case, kind, name)
  for _, s in ipairs(case:steps()) do
    if s.kind == kind and s.name == name then return s end
  end
end

-- A provider confirms what it received about meter point `mp` with its signed webhook.
local function confirm(env, provider, mp, event)
  local found
  for _, e in ipairs(env:provider(provider):effects().effects or {}) do
    if tostring(e.request):find('"' .. mp .. '"', 1, true) then found = e end
  end
  assert(found, provider .. " received nothing about " .. mp)
  local status = env:webhook(provider, { event = event, id = found.id, status = "confirmed",
                                         idempotency_key = found.idempotency_key })
  assert.are.equal(202, status)
end

describe("price_increase", function()
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

  it("tells the customer of the termination right and keeps the contract when no answer comes",
     function()
    local ids = contract_of(env, "kept")
    local effective, deadline = day(env, 60), day(env, 59)
    local case = env:start("price_increase", increase(env, ids))
    assert.are.equal("awaiting_customer", case:state())
    assert.are.same({ { new_price_cents = 38, unit = "kWh", effective_date = effective,
                        termination_deadline = deadline } }, price_changes(env, ids.contract))
    local t = tasks(env, ids.contract)
    assert.are.equal(1, #t)
    assert.are.same({ "customer_notification", "open", deadline, case.id, case.id,
                      "customer.terminate_requested" },
                    { t[1].kind, t[1].status, t[1].data.termination_deadline,
                      t[1].data.workflow_id, t[1].workflow_id, t[1].data.answer_signal })
    -- the right lasts the whole deadline day: until midnight UTC after it
    env:advance_to(effective .. "T00:00:00Z")
    assert.are.equal("completed", case:status())
    assert.are.same({ "kept", "kept" }, { case:result().outcome, case:state() })
    assert.are.equal(t[1].task_id, case:result().notification_task_id)
    local ended = env:sql1("SELECT floor(extract(epoch FROM wake_at))::bigint FROM spine.steps" ..
                           " WHERE workflow_id = " .. S.literal(case.id) .. " AND kind = 'wait'")
    assert.are.equal(env:sql1("SELECT extract(epoch FROM date '" .. effective .. "')::bigint"),
                     ended)
    assert.is_nil(step(case, "wait", "customer.terminate_requested").result)
    assert.are.equal("active", state(env, ids.contract))
    local written = {}
    for _, h in ipairs(case:intents()) do written[#written + 1] = h.intent .. " " .. h.entity end
    assert.are.same({ "ReportPriceIncrease price_change", "CreateTask task" }, written)
    assert.is_true((case:replays()))
    -- after the deadline an answer changes nothing: the case has ended
    local code, _, err = env:spine({ "signal", case.id, "customer.terminate_requested" })
    assert.are.equal(1, code)
    assert.matches("has ended", err, 1, true)
  end)

  it("takes the customer's answer until the last second of the deadline day", function()
    local ids = contract_of(env, "lastsecond")
    local case = env:start("price_increase", increase(env, ids))
    env:advance_to(day(env, 59) .. "T23:59:59Z")
    assert.are.equal("awaiting_customer", case:state())
    case:signal("customer.terminate_requested", { channel = "phone" })
    assert.are.equal("completed", case:status())
    local result = case:result()
    assert.are.equal("switch_started", result.outcome)
    assert.is_true((case:replays()))
    -- the switch it started is not this spec's: an operator takes it back
    assert.are.equal(0, (env:spine({ "cancel", result.switch_workflow_id })))
    assert.are.equal("cancelled",
                     env:case(result.switch_workflow_id):wait_for_status("cancelled").status)
    assert.are.equal("active", state(env, ids.contract))
  end)

  it("switches the customer from the effective date when they ask before the deadline",
     function()
    local ids = contract_of(env, "switch")
    local effective = day(env, 60)
    local case = env:start("price_increase", increase(env, ids))
    env:advance("10d")
    case:signal("customer.terminate_requested", { channel = "portal" })
    assert.are.equal("completed", case:status())
    local result = case:result()
    assert.are.same({ "switch_started", "switching" }, { result.outcome, case:state() })
    local child = result.switch_workflow_id
    assert.are.equal(child, case:attributes().switch_workflow_id)
    local switch = env:case(child)
    local shown = switch:show()
    assert.are.equal("tariff_switch", shown.process)
    assert.are.same({ contract_id = ids.contract, switch_date = effective, current_price_cents = 38,
                      reason = "special termination after the price increase " ..
                               result.price_change_id }, shown.input)
    assert.are.equal("awaiting_confirmations", switch:state())
    env:advance("2d")
    confirm(env, "gridco", ids.meter_point, "switch.confirmed")
    confirm(env, "acme_energy", ids.meter_point, "termination.confirmed")
    assert.are.equal("completed", switch:status())
    local r = switch:result()
    assert.are.same({ "switched", "gridco", effective }, { r.outcome, r.provider, r.switch_date })
    assert.are.equal("terminated", state(env, ids.contract))
    assert.is_true((case:replays()))
    assert.is_true((switch:replays()))
  end)

  it("records the increase but offers nothing when the contract is being switched already",
     function()
    local ids = contract_of(env, "leaving")
    env:intent("RequestSwitch", { contract_id = ids.contract, tariff = "grid_fix_24",
                                  provider = "gridco" })
    local case = env:start("price_increase", increase(env, ids))
    assert.are.equal("completed", case:status())
    assert.are.same({ "already_leaving", "already_leaving" }, { case:result().outcome,
                                                                 case:state() })
    assert.are.equal(1, #price_changes(env, ids.contract))
    assert.are.same({}, tasks(env, ids.contract))
    assert.are.equal("switch_pending", state(env, ids.contract))
    assert.is_true((case:replays()))
  end)

  it("offers nothing when the notice comes after the termination deadline", function()
    local ids = contract_of(env, "late")
    local case = env:start("price_increase", increase(env, ids, day(env, 0), day(env, -30)))
    assert.are.equal("completed", case:status())
    assert.are.same({ "deadline_passed", "deadline_passed" }, { case:result().outcome,
                                                                 case:state() })
    assert.are.equal(day(env, -1), price_changes(env, ids.contract)[1].termination_deadline)
    assert.are.same({}, tasks(env, ids.contract))
    assert.is_true((case:replays()))
  end)

  it("fails, recording nothing, for a contract that is not active yet", function()
    local ids = contract_of(env, "draft", true)
    local case = env:start("price_increase", increase(env, ids))
    assert.are.equal("failed", case:status())
    local err = case:error()
    assert.are.same({ "rejected", "invalid_transition" }, { err.kind, err.code })
    assert.are.same({}, price_changes(env, ids.contract))
    assert.are.same({}, case:intents())
    assert.is_true((case:replays()))
  end)

  it("has a manifest that spine manifests check accepts", function()
    local report = env:spine_json({ "manifests", "check" })
    for _, e in ipairs(report.errors or {}) do
      assert.is_nil(e.where:find("price_increase", 1, true), e.where .. ": " .. e.message)
    end
    local found = false
    for _, m in ipairs(report.manifests or {}) do
      if m.process == "price_increase" then found = true end
    end
    assert.is_true(found)
  end)
end)
