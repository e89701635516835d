-- ACME Energy: an API that is not always up, with email to its operations desk as the
-- fallback channel. The router tries "api" first; a transient failure (5xx, timeout, the
-- breaker open) moves the call to "email". A refusal by the API is an answer: no email.
--
-- Operations: submit_activation (both channels), get_activation (API); and for switches (the
-- tariff_switch playbook), on both channels:
--   submit_switch{contract_id, meter_point, requested_start?}      -> {reference, channel}
--   cancel_switch{reference, reason?}                              -> {reference, status, channel}
--   submit_termination{contract_id, meter_point?, termination_date?, reason?}
--                                                                  -> {reference, channel}
--   withdraw_termination{reference, reason?}                       -> {reference, status, channel}
-- A reference "email:..." was made by email: only the desk knows it, so it is cancelled by
-- email whichever channel the router picked.

local function headers(p)
  return { ["Idempotency-Key"] = p.idempotency_key,
           Authorization = "Bearer " .. p.secret("api_key") }
end

local function post(p, path, json)
  local res = p.http.post(p.config.base_url .. path,
                          { json = json, headers = headers(p), timeout = "10s" })
  if res.status >= 500 then error(p.transient("ACME answered " .. res.status)) end
  return res
end

-- A mail to ACME's operations desk from template `template`; its reference is the key.
local function mail(p, subject, template, vars)
  vars.reference = p.idempotency_key
  p.email.send { to = p.config.ops_mailbox, subject = subject, body = p.render(template, vars) }
  return "email:" .. p.idempotency_key
end

local function needs_reference(p, args, operation)
  if type(args.reference) ~= "string" then
    error(p.rejected(operation .. " needs the reference of the request"))
  end
  return args.reference
end

local email = {
  submit_activation = function(p, args)
    local ref = mail(p, "Activation request " .. args.contract_id, "activation_request", {
      contract_id = args.contract_id,
      requested_start = args.requested_start or "as soon as possible",
    })
    return { reference = ref, channel = "email" }
  end,

  submit_switch = function(p, args)
    local ref = mail(p, "Switch request " .. args.contract_id, "acme_switch_request", {
      contract_id = args.contract_id,
      meter_point = args.meter_point or "(see the contract)",
      requested_start = args.requested_start or "as soon as possible",
    })
    return { reference = ref, channel = "email" }
  end,

  cancel_switch = function(p, args)
    local of = needs_reference(p, args, "cancel_switch")
    mail(p, "Cancel switch " .. of, "acme_switch_cancellation",
         { of = of, reason = args.reason or "withdrawn by the customer" })
    return { reference = of, status = "cancelled", channel = "email" }
  end,

  submit_termination = function(p, args)
    local ref = mail(p, "Termination " .. args.contract_id, "acme_termination_request", {
      contract_id = args.contract_id,
      termination_date = args.termination_date or "the next possible date",
      reason = args.reason or "customer's termination",
    })
    return { reference = ref, channel = "email" }
  end,

  withdraw_termination = function(p, args)
    local of = needs_reference(p, args, "withdraw_termination")
    mail(p, "Withdrawal of termination " .. of, "acme_termination_withdrawal",
         { of = of, reason = args.reason or "withdrawn by the customer" })
    return { reference = of, status = "cancelled", channel = "email" }
  end,
}

-- POST /v1/<collection>/<reference>/cancel; an email reference goes to the desk instead.
local function cancel(p, args, collection, operation)
  local of = needs_reference(p, args, operation)
  if of:match("^email:") then return email[operation](p, args) end
  local res = post(p, "/v1/" .. collection .. "/" .. of .. "/cancel", { reason = args.reason })
  if res.status ~= 200 then
    error(p.rejected(operation .. " refused", { status = res.status, body = res.json }))
  end
  return { reference = res.json.id, status = res.json.status, channel = "api" }
end

-- ACME's callbacks: "activation.confirmed", "switch.confirmed" and "termination.confirmed";
-- one without an event is the confirmation of an activation (ACME's first API).
local SIGNALS = {
  ["activation.confirmed"] = "provider.activation_confirmed",
  ["switch.confirmed"] = "provider.switch_confirmed",
  ["termination.confirmed"] = "provider.termination_confirmed",
}

return {
  name = "acme_energy",
  channels = { "api", "email" },

  api = {
    submit_activation = function(p, args)
      local res = post(p, "/v1/activations", { contract = args.contract_id,
                                               start = args.requested_start })
      if res.status ~= 201 then
        error(p.rejected("activation refused", { status = res.status, body = res.json }))
      end
      return { reference = res.json.id, channel = "api" }
    end,

    -- Where an activation submitted through the API stands at ACME: "pending" until ACME
    -- confirms it ("confirmed"), with the start date when ACME gives one.
    get_activation = function(p, args)
      local url = p.config.base_url .. "/v1/activations/" .. p.urlencode(args.reference)
      local res = p.http.get(url, {
        headers = { Authorization = "Bearer " .. p.secret("api_key") },
        timeout = "10s",
      })
      if res.status >= 500 then error(p.transient("ACME answered " .. res.status)) end
      if res.status ~= 200 then
        error(p.rejected("ACME does not know the activation", { status = res.status }))
      end
      return { reference = res.json.id, status = res.json.status, activation_date = res.json.start }
    end,

    submit_switch = function(p, args)
      local res = post(p, "/v1/switches", { contract = args.contract_id,
                                            meter_point = args.meter_point,
                                            start = args.requested_start })
      if res.status ~= 201 then
        error(p.rejected("switch refused", { status = res.status, body = res.json }))
      end
      return { reference = res.json.id, channel = "api" }
    end,

    cancel_switch = function(p, args)
      return cancel(p, args, "switches", "cancel_switch")
    end,

    submit_termination = function(p, args)
      local res = post(p, "/v1/terminations", { contract = args.contract_id,
                                                meter_point = args.meter_point,
                                                date = args.termination_date,
                                                reason = args.reason })
      if res.status ~= 201 then
        error(p.rejected("termination refused", { status = res.status, body = res.json }))
      end
      return { reference = res.json.id, channel = "api" }
    end,

    withdraw_termination = function(p, args)
      return cancel(p, args, "terminations", "withdraw_termination")
    end,
  },

  email = email,

  webhook = function(p, request)
    local body = request.json
    local workflow = type(body.idempotency_key) == "string"
                     and body.idempotency_key:match("^(.*):%d+$")
    if not workflow then error(p.rejected("the confirmation carries no idempotency key")) end
    if body.event == nil then
      return { signal = "provider.activation_confirmed", workflow_id = workflow,
               payload = { reference = body.id, activation_date = body.start } }
    end
    local signal = SIGNALS[body.event]
    if not signal then error(p.rejected("unknown ACME event " .. tostring(body.event))) end
    return { signal = signal, workflow_id = workflow,
             payload = { reference = body.id, status = body.status, activation_date = body.start } }
  end,
}
