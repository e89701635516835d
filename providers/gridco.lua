-- GridCo: a well-behaved REST provider. It honours Idempotency-Key (a repeated key returns the
-- first answer and makes no second switch) and confirms each switch and termination later by a
-- signed webhook.
--
-- Operations (the tariff_switch playbook uses all four; every adapter it may pick has them):
--   submit_switch{contract_id, meter_point, requested_start?}      -> {reference, status}
--   cancel_switch{reference}                                       -> {reference, status}
--   submit_termination{contract_id, meter_point?, termination_date?, reason?}
--                                                                  -> {reference, status}
--   withdraw_termination{reference}                                -> {reference, status}

local function headers(p)
  return { ["Idempotency-Key"] = p.idempotency_key,
           Authorization = "Bearer " .. p.secret("api_key") }
end

-- An answer that is not one of `ok`: a fault to retry (5xx, 429) or GridCo's refusal.
local function check(p, res, what, ok)
  if res.status >= 500 or res.status == 429 then
    error(p.transient("GridCo answered " .. res.status))
  end
  for _, status in ipairs(ok) do
    if res.status == status then return end
  end
  error(p.rejected("GridCo refused " .. what, { status = res.status, body = res.json }))
end

local function needs_reference(p, args, operation)
  if type(args.reference) ~= "string" then
    error(p.rejected(operation .. " needs the reference GridCo gave"))
  end
  return args.reference
end

-- POST /v1/<collection>/<reference>/cancel: GridCo drops a switch or termination it was asked
-- for (again: the same answer).
local function cancel(p, args, collection, operation)
  local ref = needs_reference(p, args, operation)
  local url = p.config.base_url .. "/v1/" .. collection .. "/" .. p.urlencode(ref) .. "/cancel"
  local res = p.http.post(url, { json = { reason = args.reason }, headers = headers(p) })
  if res.status == 404 then error(p.rejected("GridCo knows no " .. ref)) end
  check(p, res, operation, { 200 })
  return { reference = res.json.id, status = res.json.status }
end

-- The workflow a callback is for: GridCo sends back the idempotency key of the call that asked,
-- "<workflow id>:<step>".
local function workflow_of(p, body)
  local workflow = type(body.idempotency_key) == "string"
                   and body.idempotency_key:match("^(.*):%d+$")
  if not workflow then error(p.rejected("the confirmation carries no idempotency key")) end
  return workflow
end

local SIGNALS = {
  ["switch.confirmed"] = "provider.switch_confirmed",
  ["termination.confirmed"] = "provider.termination_confirmed",
}

return {
  name = "gridco",
  channels = { "api" },

  api = {
    -- Asks GridCo to switch a meter point's supply; returns GridCo's reference.
    submit_switch = function(p, args)
      local res = p.http.post(p.config.base_url .. "/v1/switches", {
        json = { contract = args.contract_id, meter_point = args.meter_point,
                 start = args.requested_start },
        headers = headers(p),
      })
      check(p, res, "the switch", { 201, 200 })
      return { reference = res.json.id, status = res.json.status }
    end,

    -- The state of a switch GridCo knows.
    get_switch = function(p, args)
      local ref = needs_reference(p, args, "get_switch")
      local res = p.http.get(p.config.base_url .. "/v1/switches/" .. p.urlencode(ref), {
        headers = { Authorization = "Bearer " .. p.secret("api_key") },
      })
      if res.status >= 500 then error(p.transient("GridCo answered " .. res.status)) end
      if res.status == 404 then error(p.rejected("GridCo knows no switch " .. ref)) end
      return { reference = res.json.id, status = res.json.status }
    end,

    cancel_switch = function(p, args)
      return cancel(p, args, "switches", "cancel_switch")
    end,

    -- Terminates a contract GridCo supplies (as the old provider of a switch).
    submit_termination = function(p, args)
      local res = p.http.post(p.config.base_url .. "/v1/terminations", {
        json = { contract = args.contract_id, meter_point = args.meter_point,
                 date = args.termination_date, reason = args.reason },
        headers = headers(p),
      })
      check(p, res, "the termination", { 201, 200 })
      return { reference = res.json.id, status = res.json.status }
    end,

    withdraw_termination = function(p, args)
      return cancel(p, args, "terminations", "withdraw_termination")
    end,
  },

  -- GridCo confirms a switch ("switch.confirmed") or a termination ("termination.confirmed");
  -- the signal goes to the workflow that asked.
  webhook = function(p, request)
    local body = request.json
    local signal = SIGNALS[body.event]
    if not signal then error(p.rejected("unknown GridCo event " .. tostring(body.event))) end
    return { signal = signal, workflow_id = workflow_of(p, body),
             payload = { reference = body.id, status = body.status } }
  end,
}
