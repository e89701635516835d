-- The adapter of the webhook fuzz harness (tests/fuzz/fuzz_webhook.c), verified by Spine's
-- default scheme. Its webhook lets the request's body choose what comes back, so the fuzzer
-- shapes every answer Spine checks: the body's "actions" as returned, a raised value, a
-- rejection with details, a header's value, or actions carrying the webhook secret (scrubbed).
local function handle(p, request)
  local body = request.json
  if type(body) ~= "table" then error(p.rejected("the body is not an object")) end
  if body.raise ~= nil then error(body.raise) end
  if body.rejected ~= nil then error(p.rejected(tostring(body.rejected), body.details)) end
  if type(body.header) == "string" then
    return { signal = "fuzz.header", workflow_id = request.headers[body.header] }
  end
  if body.secret ~= nil then
    local s = p.secret("webhook_secret")
    if body.secret == "raise" then error("bad signature for " .. s) end
    return { signal = "fuzz.secret", workflow_id = "w-" .. s, payload = { [s] = body.secret } }
  end
  return body.actions
end

return {
  name = "fuzz",
  channels = { "api" },
  api = {
    ping = function()
      return {}
    end,
  },
  webhook = handle,
}
