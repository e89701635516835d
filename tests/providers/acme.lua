-- The test adapter of tests/c/test_providers.c: `args.base` is the test server's address.
local function post(p, path, args)
  return p.http.post(args.base .. path, {
    json = { contract = args.contract },
    headers = {
      ["Idempotency-Key"] = p.idempotency_key,
      Authorization = "Bearer " .. p.secret("api_key"),
    },
    timeout = "2s",
  })
end

return {
  name = "acme",
  channels = { "api", "backup" },
  api = {
    submit = function(p, args)
      local res = post(p, "/api", args)
      if res.status >= 500 then error(p.transient("upstream " .. res.status)) end
      if res.status ~= 201 then error(p.rejected("activation refused", res.json)) end
      return { reference = res.json.id, channel = p.channel, seen = res.headers["x-seen"] }
    end,
    leak = function(p, args)
      local key = p.secret("api_key")
      p.log("info", "calling with " .. key, { key = key, n = 1 })
      local res = post(p, "/api", args)
      error(p.transient("upstream said no to " .. key, { key = key, status = res.status }))
    end,
    loop = function()
      while true do end
    end,
    hog = function()
      local t = {}
      for i = 1, 1000 do t[i] = string.rep(("x"):rep(256), 256) .. i end
      return #t
    end,
    hang = function(p, args)
      return p.http.get(args.base .. "/hang")
    end,
    crash = function(p, args)
      local x = args.missing
      return x.field
    end,
    bad_result = function()
      return { f = function() end }
    end,
    raise_string = function()
      error("plain failure")
    end,
    render = function(p, args)
      return { text = p.render("greeting", args), inline = p.render("Hi {{who}}!", args) }
    end,
    render_missing = function(p, args)
      return p.render("greeting", { contract = args.contract })
    end,
    config = function(p)
      local ok = pcall(function() p.config.ops_mailbox = "x" end)
      return { mailbox = p.config.ops_mailbox, daily = p.config.limits.daily, writable = ok,
               base = p.config.base_url, key = p.idempotency_key, op = p.operation }
    end,
    no_secret = function(p)
      return p.secret("nope")
    end,
    damaged_error = function(p)
      local e = p.transient("about to be damaged")
      rawset(e, "kind", nil)
      error(e)
    end,
    urlencode = function(p, args)
      return { segment = p.urlencode(args.value), plain = p.urlencode("Az09-._~") }
    end,
    reach = function(p, args)
      local res = p.http.post(args.url, { json = { contract = args.contract }, timeout = "2s" })
      return { status = res.status, channel = p.channel }
    end,
    reach_caught = function(p, args)
      local ok, err = pcall(p.http.post, args.url, { json = {} })
      error(p.transient("try elsewhere: " .. tostring(ok) .. " " .. tostring(err)))
    end,
  },
  backup = {
    submit = function(p, args)
      local res = post(p, "/backup", args)
      if res.status >= 500 then error(p.transient("backup " .. res.status)) end
      return { reference = "backup:" .. res.json.id, channel = p.channel }
    end,
    mail = function(p, args)
      p.email.send { to = args.to, subject = "Activation " .. args.contract, body = "Please." }
      return { sent = true }
    end,
    reach = function(p)
      return { channel = p.channel }
    end,
    reach_caught = function(p)
      return { channel = p.channel }
    end,
  },
  webhook = function(p, request)
    local b = request.json
    if b.type == "one" then
      return { signal = "acme.confirmed", contract_id = b.contract, payload = { at = b.at } }
    elseif b.type == "list" then
      return {
        { signal = "acme.a", workflow_id = "wf-1" },
        { start = "activation", input = { contract = b.contract }, idempotency_key = "k-1" },
      }
    elseif b.type == "none" then
      return nil
    elseif b.type == "no_target" then
      return { signal = "acme.x" }
    elseif b.type == "both" then
      return { signal = "acme.x", workflow_id = "w", contract_id = "c" }
    elseif b.type == "extra" then
      return { start = "x", payload = {} }
    elseif b.type == "number" then
      return 42
    elseif b.type == "rejected" then
      error(p.rejected("not ours"))
    elseif b.type == "http" then
      return p.http.get("http://127.0.0.1:9/")
    elseif b.type == "secret" then
      local s = p.secret("api_key")
      return { signal = "acme.s", workflow_id = "w-" .. s, payload = { sig = request.headers["x-sig"], s = s } }
    elseif b.type == "secret_error" then
      error("bad signature for key " .. p.secret("api_key"))
    end
    error(p.rejected("unknown type"))
  end,
}
