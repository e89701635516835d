-- The fuzz harness's adapter with a scheme of its own (webhook.verify): X-Fuzz-Signature, when
-- sent, must be the hex HMAC of the body keyed with the webhook secret; X-Fuzz-Delivery names
-- the delivery (missing, empty or over 200 bytes, the request is refused). Its handle answers
-- as the fuzz adapter's webhook does.
local function handle(p, request)
  local body = request.json
  if type(body) ~= "table" then error(p.rejected("the body is not an object")) end
  if body.raise ~= nil then error(body.raise) end
  return body.actions
end

return {
  name = "fuzz_own",
  channels = { "api" },
  api = {
    ping = function()
      return {}
    end,
  },
  webhook = {
    verify = function(p, request)
      local sig = request.headers["x-fuzz-signature"]
      if sig and not p.equal(sig, p.hmac_sha256(p.secret("webhook_secret"), request.body)) then
        error(p.rejected("bad signature"))
      end
      return request.headers["x-fuzz-delivery"]
    end,
    handle = handle,
  },
}
