-- playbooks/price_increase.lua: a provider announces a price increase on a contract. The
-- increase is recorded; the customer has a special termination right until the day before it
-- takes effect (the termination_deadline ReportPriceIncrease returns). They are told so, and if
-- they ask to terminate before the deadline, the platform switches them to a better offer from
-- the date the new price would apply (a tariff_switch case of its own). After the deadline,
-- nothing more happens: the contract goes on at the new price.
-- Cases: spine start price_increase --input '{"contract_id": "k-1", "new_price_cents": 38,
--          "unit": "kWh", "effective_date": "2027-03-01", "notice_date": "2027-01-20"}'
-- Signals: customer.terminate_requested (the customer's answer, from the customer service
--          desk or the portal), payload optional.
-- Specs: tests/spec/playbooks/price_increase_spec.lua

---@type SpinePlaybook
local playbook = {
  name = "price_increase",
  description = "Record a price increase, offer the special termination, switch on request",
  input = { contract_id = "string", new_price_cents = "integer", unit = "string",
            effective_date = "date", notice_date = "date" },

  run = function(ctx, input)
    local contract_id = input.contract_id
    ctx.set("contract_id", contract_id)

    ctx.state("recording")
    local change = ctx.intent("ReportPriceIncrease", {
      contract_id = contract_id, new_price_cents = input.new_price_cents, unit = input.unit,
      effective_date = input.effective_date, notice_date = input.notice_date,
    })
    local deadline = change.termination_deadline
    ctx.set("termination_deadline", deadline)

    -- A contract that is being switched or terminated already ends anyway: nothing to offer.
    local contract = ctx.intent("GetContract", { contract_id = contract_id })
    if contract.state ~= "active" then
      ctx.state("already_leaving")
      return { outcome = "already_leaving", price_change_id = change.price_change_id }
    end

    -- The right lasts the whole deadline day: until midnight UTC, which is an hour or two after
    -- midnight in Germany (never shorter for the customer).
    local right_ends = spine.time.midnight(spine.time.add_days(deadline, 1))
    if ctx.now() >= right_ends then
      ctx.state("deadline_passed")
      return { outcome = "deadline_passed", price_change_id = change.price_change_id }
    end

    -- The customer is told by the customer service desk (a letter or an email from the task).
    local notice = ctx.intent("CreateTask", {
      kind = "customer_notification", subject = contract_id,
      data = { template = "price_increase_special_termination",
               customer_id = contract.customer_id, provider = contract.provider,
               price_change_id = change.price_change_id,
               new_price_cents = input.new_price_cents, unit = input.unit,
               effective_date = input.effective_date, termination_deadline = deadline,
               workflow_id = ctx.id, answer_signal = "customer.terminate_requested" },
    })

    ctx.state("awaiting_customer")
    -- at least 1s: an answer that came already is still taken
    local left = math.max(math.ceil(right_ends - ctx.now()), 1)
    local answer = ctx.wait("customer.terminate_requested", { timeout = left })
    if not answer then
      ctx.state("kept")
      return { outcome = "kept", price_change_id = change.price_change_id,
               notification_task_id = notice.task_id }
    end

    -- The customer leaves: a switch to a better offer, from the day the new price would apply.
    -- A case of its own (it has its own deadlines and undos); this one ends here.
    ctx.state("switching")
    local switch = ctx.start("tariff_switch", {
      contract_id = contract_id, switch_date = input.effective_date,
      current_price_cents = input.unit == "kWh" and input.new_price_cents or nil,
      reason = "special termination after the price increase " .. change.price_change_id,
    })
    ctx.set("switch_workflow_id", switch)
    return { outcome = "switch_started", price_change_id = change.price_change_id,
             notification_task_id = notice.task_id, switch_workflow_id = switch }
  end,
}

return playbook
