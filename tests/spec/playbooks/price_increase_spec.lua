-- price_increase (playbooks/price_increase.lua): ACME raises the price of the customer's
-- contract. Deadlines run on the virtual clock (spine run); the customer's answer comes to a
-- real `spine serve` as `spine signal ID customer.terminate_requested`, and the switch it
-- starts runs against two provider simulators (gridco and ACME) that confirm it.
local R = require("process_test")
local T, L = R.T, R.L

local DAY = 86400

-- A date `n` days from today (UTC).
local function day(n)
  return os.date("!%Y-%m-%d", os.time() + n * DAY)
end

-- The increase ACME announces today for `effective` (default: in 60 days).
local function increase(ids, effective, notice)
  return { contract_id = ids.contract, new_price_cents = 38, unit = "kWh",
           effective_date = effective or day(60), notice_date = notice or day(0) }
end

local function db(p)
  local url = T.newdb("spec_price_increase_" .. p)
  local ids = L.active_contract(url, p)
  L.ok(url, "RegisterProvider", { provider = "gridco" })
  return url, ids
end

local function price_changes(url, contract)
  return R.rows(url, "SELECT new_price_cents, unit, effective_date, termination_deadline" ..
                     " FROM lifecycle.price_changes WHERE contract_id = '" .. contract .. "'")
end

describe("price_increase", function()
  it("tells the customer of the termination right and keeps the contract when no answer comes",
     function()
    local url, ids = db("kept")
    local wf = R.run(url, "price_increase", increase(ids))
    assert.are.equal("completed", wf.status, T.json.encode(wf.error))
    assert.are.same({ "kept", "kept" }, { wf.result.outcome, wf.state })
    assert.are.same({ { new_price_cents = 38, unit = "kWh", effective_date = day(60),
                        termination_deadline = day(59) } }, price_changes(url, ids.contract))
    local tasks = R.tasks(url, ids.contract)
    assert.are.equal(1, #tasks)
    assert.are.same({ "customer_notification", "open", day(59), wf.id },
                    { tasks[1].kind, tasks[1].status, tasks[1].data.termination_deadline,
                      tasks[1].data.workflow_id })
    assert.are.equal(wf.result.notification_task_id, tasks[1].task_id)
    -- the wait ended with the deadline day, at midnight UTC after it
    local ended = T.sql(url, "SELECT floor(extract(epoch FROM wake_at))::bigint FROM spine.steps" ..
                             " WHERE workflow_id = '" .. wf.id .. "' AND kind = 'wait'")
    assert.are.equal(T.sql(url, "SELECT extract(epoch FROM date '" .. day(60) .. "')::bigint"),
                     ended)
    assert.are.equal(T.json.null, R.step(wf, "wait", "customer.terminate_requested").result)
    assert.are.equal("active", L.state(url, ids.contract):match("^%a+"))
    -- after the deadline an answer changes nothing: the case has ended
    local code, _, err = T.spine(url, { "signal", wf.id, "customer.terminate_requested" })
    assert.are.equal(1, code)
    assert.matches("has ended", err, 1, true)
  end)

  it("switches the customer from the effective date when they ask before the deadline",
     function()
    local url, ids = db("switch")
    local srv, sims = R.serve(url, { "gridco", "acme_energy" })
    local id = R.start(url, "price_increase", increase(ids))
    R.wait(url, id, "waiting", "awaiting_customer")
    R.signal(url, id, "customer.terminate_requested", { channel = "portal" })
    local wf = R.wait(url, id, "completed")
    local child = wf.result.switch_workflow_id
    local switch = R.wait(url, child, "completed")
    T.kill(srv)
    T.kill(sims.gridco)
    T.kill(sims.acme)
    R.replays(url, id)
    R.replays(url, child)
    assert.are.same({ "switch_started", "switching" }, { wf.result.outcome, wf.state })
    assert.are.equal(child, wf.attributes.switch_workflow_id)
    assert.are.equal("tariff_switch", switch.process)
    assert.are.same({ contract_id = ids.contract, switch_date = day(60), current_price_cents = 38,
                      reason = "special termination after the price increase " ..
                               wf.result.price_change_id }, switch.input)
    assert.are.same({ "switched", "gridco", day(60) },
                    { switch.result.outcome, switch.result.provider, switch.result.switch_date })
    assert.are.equal("terminated", L.state(url, ids.contract):match("^%a+"))
  end)

  it("records the increase but offers nothing when the contract is being switched already",
     function()
    local url, ids = db("leaving")
    L.ok(url, "RequestSwitch", { contract_id = ids.contract, tariff = "grid_fix_24",
                                 provider = "gridco" })
    local wf = R.run(url, "price_increase", increase(ids))
    assert.are.equal("completed", wf.status, T.json.encode(wf.error))
    assert.are.equal("already_leaving", wf.result.outcome)
    assert.are.equal(1, #price_changes(url, ids.contract))
    assert.are.same({}, R.tasks(url, ids.contract))
  end)

  it("offers nothing when the notice comes after the termination deadline", function()
    local url, ids = db("late")
    local wf = R.run(url, "price_increase", increase(ids, day(0), day(-30)))
    assert.are.equal("completed", wf.status, T.json.encode(wf.error))
    assert.are.same({ "deadline_passed", "deadline_passed" }, { wf.result.outcome, wf.state })
    assert.are.equal(day(-1), price_changes(url, ids.contract)[1].termination_deadline)
    assert.are.same({}, R.tasks(url, ids.contract))
  end)

  it("fails, recording nothing, for a contract that is not active yet", function()
    local url = T.newdb("spec_price_increase_draft")
    local ids = L.contract(url, "draft")
    local wf = R.run(url, "price_increase", increase(ids))
    assert.are.equal("failed", wf.status)
    assert.are.same({ "rejected", "invalid_transition" }, { wf.error.kind, wf.error.code })
    assert.are.same({}, price_changes(url, ids.contract))
  end)

  it("has a manifest that spine manifests check accepts", function()
    local url = T.newdb("spec_price_increase_manifest")
    assert.is_true(R.manifest_ok(url, "price_increase"))
  end)
end)
