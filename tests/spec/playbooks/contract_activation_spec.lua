-- playbooks/contract_activation.lua and its variant polling (a parameter of the playbook), routed by
-- manifests/contract_activation.json, on the real engine with the manual clock (spine.testing)
-- against a simulated ACME Energy. Each case's history replays against its playbook.
local S = require("spine.testing")

local DAY = 86400

-- A customer and a draft contract with ACME; `id` names both.
local function draft(env, id)
  env:intent("RegisterProvider", { provider = "acme_energy", display_name = "ACME Energy" })
  env:intent("RegisterCustomer", { customer_id = "cust-" .. id, name = "Ada Example",
                                   email = "ada@example.org" })
  env:intent("CreateContract", { contract_id = id, customer_id = "cust-" .. id,
                                 provider = "acme_energy", tariff = "green-12" })
end

-- A case of the process, on the variant the manifest's overrides give `variant`.
local function activate(env, id, variant, input)
  input = input or {}
  input.contract_id = id
  return env:start("contract_activation", input, { subject = "test-contract-" .. variant })
end

-- ACME's confirmation webhook for the activation it received last.
local function confirm(env, start)
  local effect = env:provider("acme_energy"):last_effect()
  return env:webhook("acme_energy", { id = effect.id, status = "confirmed", start = start,
                                      idempotency_key = effect.idempotency_key })
end

-- How often the case asked ACME for the activation's status.
local function polls(case)
  local n = 0
  for _, name in ipairs(case:step_names()) do
    if name == "provider acme_energy.get_activation" then n = n + 1 end
  end
  return n
end

-- The contract's states in its history, oldest first, and the intents that wrote them.
local function contract_history(env, id)
  return env:sql("SELECT intent, after->>'state' AS state FROM lifecycle.history" ..
                 " WHERE entity = 'contract' AND entity_id = " .. S.literal(id) ..
                 " ORDER BY history_id")
end

describe("contract_activation", function()
  local env
  setup(function()
    env = S.new({ now = "2026-03-02T09:00:00Z" })
  end)
  teardown(function()
    if env then env:close() end
  end)
  before_each(function()
    env:reset_providers()
  end)

  it("activates the contract when ACME's webhook confirms it", function()
    draft(env, "K-HAPPY")
    local case = activate(env, "K-HAPPY", "control", { requested_start = "2026-04-01" })
    assert.are.equal("control", case:variant())
    assert.are.equal("awaiting_confirmation", case:state())
    assert.are.equal("pending_activation", env:contract("K-HAPPY").state)
    env:advance("2d")
    local status, answer = confirm(env, "2026-04-01")
    assert.are.equal(202, status)
    assert.are.same({ case.id }, answer.signalled)
    assert.are.equal("completed", case:status())
    local contract = env:contract("K-HAPPY")
    assert.are.equal("active", contract.state)
    assert.are.equal("2026-04-01", contract.activation_date)
    assert.are.equal(env:provider("acme_energy"):last_effect().id, contract.provider_reference)
    assert.are.same({ "GetContract", "RequestActivation", "ConfirmActivation" },
                    case:intent_names())
    assert.are.same({ { intent = "CreateContract", state = "draft" },
                      { intent = "RequestActivation", state = "pending_activation" },
                      { intent = "ConfirmActivation", state = "active" } },
                    contract_history(env, "K-HAPPY"))
    assert.are.equal(env:now(), case:intents()[2].at_epoch) -- confirmed two days in
    assert.is_true((case:replays()))
  end)

  it("opens an activation_overdue task after 14 days without confirmation, not before",
     function()
    draft(env, "K-LATE")
    local case = activate(env, "K-LATE", "control")
    local started = env:now()
    env:advance("13d")
    assert.are.equal("awaiting_confirmation", case:state())
    assert.are.same({}, env:sql("SELECT 1 FROM lifecycle.tasks WHERE subject = 'K-LATE'"))
    env:advance("1d")
    assert.are.equal("escalated", case:state())
    local task = env:sql("SELECT task_id, kind, status, extract(epoch from created_at)::float8" ..
                         " AS created, due::date::text AS due FROM lifecycle.tasks" ..
                         " WHERE subject = 'K-LATE'")
    assert.are.same({ { task_id = "activation_overdue:K-LATE", kind = "activation_overdue",
                        status = "open", created = started + 14 * DAY,
                        due = os.date("!%Y-%m-%d", math.floor(started) + 16 * DAY) } },
                    task)
  end)

  it("activates an escalated contract with the date the operator got from ACME", function()
    draft(env, "K-TASK")
    local case = activate(env, "K-TASK", "control")
    env:advance("14d")
    env:advance("6h")
    env:resolve_task("activation_overdue:K-TASK", "confirmed", { activation_date = "2026-03-20" })
    assert.are.equal("completed", case:status())
    local contract = env:contract("K-TASK")
    assert.are.equal("active", contract.state)
    assert.are.equal("2026-03-20", contract.activation_date)
    assert.are.same({ "GetContract", "RequestActivation", "CreateTask", "ConfirmActivation" },
                    case:intent_names())
    assert.is_true((case:replays()))
  end)

  it("cancels the activation when the operator abandons it", function()
    draft(env, "K-ABANDON")
    local case = activate(env, "K-ABANDON", "control")
    env:advance("14d")
    env:resolve_task("activation_overdue:K-ABANDON", "abandoned", { note = "customer moved" })
    assert.are.equal("compensated", case:status())
    assert.are.equal("activation_abandoned", case:error().code)
    assert.are.equal("cancelled", env:contract("K-ABANDON").state)
    local last = contract_history(env, "K-ABANDON")
    assert.are.same({ intent = "CancelActivation", state = "cancelled" }, last[#last])
  end)

  it("retries through an outage of ACME's API and mail, then submits once with one key",
     function()
    draft(env, "K-OUTAGE")
    local acme = env:provider("acme_energy")
    acme:outage(true)
    env:smtp():smtp_outage(true)
    local effects_before, mails_before = #acme:effects().effects, #env:emails()
    local case = activate(env, "K-OUTAGE", "control")
    assert.are.equal("submitting", case:state())
    env:advance("3h")
    assert.are.equal("submitting", case:state())
    local step = case:steps()[3]
    assert.are.equal("provider", step.kind)
    assert.is_true(step.attempt >= 5, "attempts so far: " .. step.attempt)
    acme:outage(false)
    env:smtp():smtp_outage(false)
    env:advance("6h") -- the next attempt comes within the longest backoff
    assert.are.equal("awaiting_confirmation", case:state())
    local effects = acme:effects().effects
    assert.are.equal(effects_before + 1, #effects)
    assert.are.equal(case.id .. ":3", effects[#effects].idempotency_key)
    assert.are.equal(mails_before, #env:emails())
    confirm(env, "2026-03-15")
    assert.are.equal("active", env:contract("K-OUTAGE").state)
  end)

  it("asks ACME's desk by email while its API is down, and is confirmed all the same", function()
    draft(env, "K-MAIL")
    env:provider("acme_energy"):outage(true)
    local case = activate(env, "K-MAIL", "control")
    assert.are.equal("awaiting_confirmation", case:state())
    local mails = env:emails()
    assert.are.equal("Activation request K-MAIL", mails[#mails].subject)
    assert.are.equal(case.id .. ":3", mails[#mails].x_idempotency_key)
    env:webhook("acme_energy", { id = "desk-17", start = "2026-03-09",
                                 idempotency_key = case.id .. ":3" })
    local contract = env:contract("K-MAIL")
    assert.are.equal("active", contract.state)
    assert.are.equal("desk-17", contract.provider_reference)
  end)

  it("cancels the activation when ACME refuses it", function()
    draft(env, "K-REFUSED")
    env:provider("acme_energy"):answer({ status = 422, json = { error = "unknown meter" },
                                         match = "K-REFUSED" })
    local case = activate(env, "K-REFUSED", "control")
    assert.are.equal("compensated", case:status())
    assert.are.equal("rejected", case:error().kind)
    assert.are.equal("cancelled", env:contract("K-REFUSED").state)
    assert.are.same({ "GetContract", "RequestActivation", "CancelActivation" },
                    case:intent_names())
    assert.are.same({}, env:sql("SELECT 1 FROM lifecycle.tasks WHERE subject = 'K-REFUSED'"))
    assert.is_true((case:replays()))
  end)

  it("refuses a contract that is not a draft, changing nothing", function()
    draft(env, "K-TWICE")
    activate(env, "K-TWICE", "control")
    local second = activate(env, "K-TWICE", "control")
    assert.are.equal("failed", second:status())
    assert.are.equal("invalid_transition", second:error().code)
    assert.are.equal("pending_activation", env:contract("K-TWICE").state)
  end)
end)

describe("contract_activation, variant polling (params: activation = polling)", function()
  local env
  setup(function()
    env = S.new({ now = "2026-03-02T09:00:00Z" })
  end)
  teardown(function()
    if env then env:close() end
  end)
  before_each(function()
    env:reset_providers()
  end)

  it("is the variant the manifest gives its test subject", function()
    draft(env, "K-ROUTE")
    local case = activate(env, "K-ROUTE", "polling")
    assert.are.equal("polling", case:variant())
    assert.are.equal("contract_activation", case:show().playbook)
    assert.are.same({ activation = "polling" }, case:show().params)
  end)

  it("activates on the day ACME's status says confirmed, without a webhook", function()
    draft(env, "K-POLL")
    local case = activate(env, "K-POLL", "polling")
    local acme = env:provider("acme_energy")
    env:advance("1d") -- the first question: still pending
    assert.are.equal(1, polls(case))
    assert.are.equal("awaiting_confirmation", case:state())
    local ref = case:attributes().provider_reference
    acme:answer({ status = 200, json = { id = ref, status = "confirmed", start = "2026-03-05" },
                  match = ref })
    env:advance("1d")
    assert.are.equal("completed", case:status())
    assert.are.equal("polling", case:attributes().confirmed_by)
    local contract = env:contract("K-POLL")
    assert.are.equal("active", contract.state)
    assert.are.equal("2026-03-05", contract.activation_date)
    assert.is_true((case:replays()))
  end)

  it("takes ACME's webhook when it comes first, asking nothing", function()
    draft(env, "K-POLLHOOK")
    local case = activate(env, "K-POLLHOOK", "polling")
    env:advance("3h")
    confirm(env, "2026-03-03")
    assert.are.equal("completed", case:status())
    assert.are.equal(0, polls(case))
    assert.is_nil(case:attributes().confirmed_by)
  end)

  it("escalates after 14 days of pending answers", function()
    draft(env, "K-POLLLATE")
    local case = activate(env, "K-POLLLATE", "polling")
    env:advance("13d")
    assert.are.equal("awaiting_confirmation", case:state())
    assert.are.equal(13, polls(case))
    env:advance("1d")
    assert.are.equal("escalated", case:state())
    assert.are.equal(14, polls(case))
    env:resolve_task("activation_overdue:K-POLLLATE", "confirmed",
                     { activation_date = "2026-03-17" })
    assert.are.equal("active", env:contract("K-POLLLATE").state)
  end)
end)
