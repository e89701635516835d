-- A provider that verifies its webhooks its own way: X-Signed-Signature, the hex HMAC of the
-- body keyed with its webhook secret, and X-Signed-Delivery naming the delivery.
return {
  name = "signed",
  channels = { "api" },
  api = {
    ping = function()
      return {}
    end,
  },
  webhook = {
    verify = function(p, request)
      local want = p.hmac_sha256(p.secret("webhook_secret"), request.body)
      if not p.equal(request.headers["x-signed-signature"] or "", want) then
        error(p.rejected("bad signature"))
      end
      return request.headers["x-signed-delivery"]
    end,
    handle = function(p, request)
      return { signal = "signed.ok", workflow_id = request.json.wf }
    end,
  },
}
