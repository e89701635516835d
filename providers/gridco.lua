-- GridCo: a well-behaved REST provider. It honours Idempotency-Key (a repeated key returns the
-- first answer and makes no second switch) and confirms each switch later by a signed webhook.
return {
  name = "gridco",
  channels = { "api" },

  api = {
    -- Asks GridCo to switch a meter point's supply; returns GridCo's reference.
    submit_switch = function(p, args)
      local res = p.http.post(p.config.base_url .. "/v1/switches", {
        json = { contract = args.contract_id, meter_point = args.meter_point,
                 start = args.requested_start },
        headers = { ["Idempotency-Key"] = p.idempotency_key,
                    Authorization = "Bearer " .. p.secret("api_key") },
      })
      if res.status >= 500 or res.status == 429 then
        error(p.transient("GridCo answered " .. res.status))
      end
      if res.status ~= 201 and res.status ~= 200 then
        error(p.rejected("GridCo refused the switch", { status = res.status, body = res.json }))
      end
      return { reference = res.json.id, status = res.json.status }
    end,

    -- The state of a switch GridCo knows.
    get_switch = function(p, args)
      if type(args.reference) ~= "string" then
        error(p.rejected("get_switch needs the switch's reference"))
      end
      local res = p.http.get(p.config.base_url .. "/v1/switches/" .. args.reference, {
        headers = { Authorization = "Bearer " .. p.secret("api_key") },
      })
      if res.status >= 500 then error(p.transient("GridCo answered " .. res.status)) end
      if res.status == 404 then error(p.rejected("GridCo knows no switch " .. args.reference)) end
      return { reference = res.json.id, status = res.json.status }
    end,
  },

  -- GridCo's confirmation carries the idempotency key of the call that asked for the switch,
  -- "<workflow id>:<step>": the signal goes to that workflow.
  webhook = function(p, request)
    local body = request.json
    if body.event ~= "switch.confirmed" then
      error(p.rejected("unknown GridCo event " .. tostring(body.event)))
    end
    local workflow = type(body.idempotency_key) == "string"
                     and body.idempotency_key:match("^(.*):%d+$")
    if not workflow then error(p.rejected("the confirmation carries no idempotency key")) end
    return { signal = "provider.switch_confirmed", workflow_id = workflow,
             payload = { reference = body.id, status = body.status } }
  end,
}
