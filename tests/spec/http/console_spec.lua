-- The console's assets from `spine serve` (runtime/server/serve_console.c): the page at /, the
-- assets under /console/, each with its type, a strict Content-Security-Policy and an ETag;
-- anything else is not found. The pages themselves: tests/browser/console_test.py.
local T = require("spine_test")

local srv, base

setup(function()
  srv = T.serve(T.newdb("spec_console"))
  base = "http://127.0.0.1:" .. T.http_port(srv)
end)

teardown(function()
  if srv then T.kill(srv, "TERM") end
end)

describe("the console", function()
  it("serves its page at / with a policy that allows no inline script, style or framing", function()
    local status, body, h = T.http("GET", base .. "/")
    assert.are.equal(200, status)
    assert.matches("^text/html", h["content-type"])
    assert.matches('src="/console/app.js"', body, 1, true)
    local csp = h["content-security-policy"]
    assert.matches("default-src 'self'", csp, 1, true)
    assert.matches("frame-ancestors 'none'", csp, 1, true)
    assert.is_nil(csp:find("unsafe", 1, true))
    assert.are.equal("nosniff", h["x-content-type-options"])
    assert.are.equal("no-referrer", h["referrer-policy"])
  end)

  it("serves each asset with its type and revalidates it by ETag", function()
    for path, ctype in pairs({ ["/console/app.js"] = "^text/javascript",
                               ["/console/console.css"] = "^text/css",
                               ["/console/favicon.svg"] = "^image/svg%+xml" }) do
      local status, _, h = T.http("GET", base .. path)
      assert.are.equal(200, status, path)
      assert.matches(ctype, h["content-type"], nil, false, path)
      assert.are.equal("no-cache", h["cache-control"], path)
      local again = T.http("GET", base .. path, { headers = { "If-None-Match: " .. h["etag"] } })
      assert.are.equal(304, again, path)
    end
  end)

  it("answers 404 for an asset it does not have, and still no-store", function()
    local status, _, h = T.http("GET", base .. "/console/nothing.js")
    assert.are.equal(404, status)
    assert.are.equal("no-store", h["cache-control"])
    assert.are.equal(404, (T.http("GET", base .. "/console.js")))
  end)
end)
