-- The HTTP edge of `spine serve`: what every answer says about itself, and no cleartext HTTP/2
-- (libh2o 2.2.5 has no defence against Rapid Reset, CVE-2023-44487).
local T = require("spine_test")

local function start(name)
  local url = T.newdb(name)
  local srv = T.serve(url)
  return srv, "http://127.0.0.1:" .. T.http_port(srv)
end

describe("spine serve's HTTP edge", function()
  it("marks every answer nosniff and no-store, errors included", function()
    local srv, base = start("spec_edge_headers")
    for _, path in ipairs({ "/healthz", "/metrics", "/no/such/route" }) do
      local status, _, headers = T.http("GET", base .. path)
      assert.is_true(status == 200 or status == 404 or status == 503, path .. " answered " .. status)
      assert.are.equal("nosniff", headers["x-content-type-options"], path)
      assert.are.equal("no-store", headers["cache-control"], path)
    end
    T.kill(srv, "TERM")
  end)

  it("speaks no HTTP/2 in cleartext: an h2c upgrade stays HTTP/1.1, prior knowledge is refused",
     function()
    local srv, base = start("spec_edge_h2c")
    local _, upgrade = T.sh("curl -sS --http2 -o /dev/null -D - --max-time 10 " ..
                            T.q(base .. "/healthz"))
    assert.matches("^HTTP/1%.1 200", upgrade)
    assert.is_nil(upgrade:find("101 Switching", 1, true))
    local _, prior = T.sh("curl -sS --http2-prior-knowledge -o /dev/null -D - --max-time 10 " ..
                         T.q(base .. "/healthz"))
    assert.is_nil(prior:find("HTTP/2", 1, true), "answered HTTP/2 with prior knowledge")
    assert.is_true(T.alive(srv), "the worker died")
    T.kill(srv, "TERM")
  end)
end)
