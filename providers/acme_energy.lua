-- ACME Energy: an API that is not always up, with email to its operations desk as the
-- fallback channel. The router tries "api" first; a transient failure (5xx, timeout, the
-- breaker open) moves the call to "email". A refusal by the API is an answer: no email.
return {
  name = "acme_energy",
  channels = { "api", "email" },

  api = {
    submit_activation = function(p, args)
      local res = p.http.post(p.config.base_url .. "/v1/switches", {
        json = { contract = args.contract_id, start = args.requested_start },
        headers = { ["Idempotency-Key"] = p.idempotency_key,
                    Authorization = "Bearer " .. p.secret("api_key") },
        timeout = "10s",
      })
      if res.status >= 500 then error(p.transient("ACME answered " .. res.status)) end
      if res.status ~= 201 then
        error(p.rejected("activation refused", { status = res.status, body = res.json }))
      end
      return { reference = res.json.id, channel = "api" }
    end,

    -- Where an activation submitted through the API stands at ACME: "pending" until ACME
    -- confirms it ("confirmed"), with the start date when ACME gives one.
    get_activation = function(p, args)
      local res = p.http.get(p.config.base_url .. "/v1/switches/" .. args.reference, {
        headers = { Authorization = "Bearer " .. p.secret("api_key") },
        timeout = "10s",
      })
      if res.status >= 500 then error(p.transient("ACME answered " .. res.status)) end
      if res.status ~= 200 then
        error(p.rejected("ACME does not know the activation", { status = res.status }))
      end
      return { reference = res.json.id, status = res.json.status, activation_date = res.json.start }
    end,
  },

  email = {
    submit_activation = function(p, args)
      p.email.send {
        to = p.config.ops_mailbox,
        subject = "Activation request " .. args.contract_id,
        body = p.render("activation_request", {
          contract_id = args.contract_id,
          requested_start = args.requested_start or "as soon as possible",
          reference = p.idempotency_key,
        }),
      }
      return { reference = "email:" .. p.idempotency_key, channel = "email" }
    end,
  },

  webhook = function(p, request)
    local body = request.json
    local workflow = type(body.idempotency_key) == "string"
                     and body.idempotency_key:match("^(.*):%d+$")
    if not workflow then error(p.rejected("the confirmation carries no idempotency key")) end
    return { signal = "provider.activation_confirmed", workflow_id = workflow,
             payload = { reference = body.id, activation_date = body.start } }
  end,
}
