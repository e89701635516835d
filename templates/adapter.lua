-- providers/__NAME__.lua: the adapter for __NAME__ (TODO: who they are, what we ask of them).
-- Playbooks call it: ctx.provider("__NAME__", "submit_switch", { contract_id = "C-1" }).
-- Its settings, p.config, are "__NAME__": {"base_url": "https://..."} in providers.json.
-- Test it: busted tests/spec/providers/__NAME___spec.lua (against `spine simulate`).
-- The p API: docs/providers.md; your editor completes it from types/provider.lua (LuaLS).

---@type SpineAdapter
local adapter = {
  name = "__NAME__", -- must equal the file name
  channels = { "api" }, -- the fallback chain, in order (an "email" channel needs a table too)

  api = {
    -- One function per operation: p is the provider context, args what the playbook gave.
    -- Return the result; raise p.transient(...) to try again later (or the next channel),
    -- p.rejected(...) when the provider said no.
    submit_switch = function(p, args)
      local base = assert(p.config.base_url, "providers.json: __NAME__.base_url is not set")
      local res = p.http.post(base .. "/v1/switches", {
        json = { contract = args.contract_id },
        -- The same key on every attempt: a provider that honours it makes one switch.
        headers = { ["Idempotency-Key"] = p.idempotency_key },
        timeout = "20s",
      })
      if res.status >= 500 or res.status == 429 then
        error(p.transient("__NAME__ answered " .. res.status))
      end
      if res.status ~= 200 and res.status ~= 201 then
        error(p.rejected("__NAME__ refused the switch (" .. res.status .. ")", res.json))
      end
      return { reference = res.json.id }
    end,
  },

  -- Inbound: POST /v1/webhooks/__NAME__, signed with the secret webhook_secret. Turns the
  -- provider's callback into a signal for the workflow whose idempotency key it carries.
  webhook = function(p, request)
    local body = request.json or {}
    local key = type(body.idempotency_key) == "string" and body.idempotency_key or ""
    local workflow = key:match("^(.*):%d+$")
    if not workflow then error(p.rejected("no idempotency key in the callback")) end
    return { signal = "__NAME__.confirmed", workflow_id = workflow,
             payload = { reference = body.id, status = body.status } }
  end,
}

return adapter
