-- The OpenAPI 3.1 document at /v1/openapi.json, checked both ways: every route of the API's
-- table (runtime/server/serve_api_routes.c) is documented, and every documented route is answered by
-- a running server (neither "no such route" nor 405).
local T = require("spine_test")
local cjson = require("cjson")

describe("GET /v1/openapi.json", function()
  local url, srv, base, doc, token
  setup(function()
    url = T.newdb("spec_api_openapi")
    srv = T.serve(url)
    base = "http://127.0.0.1:" .. T.http_port(srv)
    local status, body = T.http("GET", base .. "/v1/openapi.json")
    assert.are.equal(200, status)
    doc = cjson.decode(body)
    local _, out = T.spine_json(url, { "tokens", "create", "--subject", "ci", "--scopes", "admin" })
    token = out.token
  end)
  teardown(function() T.kill(srv, "TERM") end)

  it("is OpenAPI 3.1 and is compiled into the binary as the source has it", function()
    assert.are.equal("3.1.0", doc.openapi)
    assert.are.same(cjson.decode(T.source("runtime/server/openapi.json")), doc)
  end)

  it("documents every route the server has", function()
    local src = T.source("runtime/server/serve_api_routes.c")
    local n = 0
    for method, pattern in src:gmatch('{"(%u+)", "(/v1/[^"]*)",') do
      n = n + 1
      local item = doc.paths[pattern]
      assert.is_truthy(item, pattern .. " is not documented")
      assert.is_truthy(item[method:lower()], method .. " " .. pattern .. " is not documented")
    end
    assert.is_true(n >= 13)
  end)

  it("answers every documented route", function()
    local n = 0
    for path, item in pairs(doc.paths) do
      for method in pairs(item) do
        n = n + 1
        local p = path:gsub("{[%w_]+}", "no-such-id")
        local status, body = T.http(method:upper(), base .. p,
                                    { headers = { "Authorization: Bearer " .. token },
                                      body = method == "post" and "{}" or nil })
        assert.are_not.equal(405, status, method .. " " .. path)
        assert.is_nil(body:find("no such route", 1, true), method .. " " .. path .. ": " .. body)
        assert.is_true(status > 0 and status < 500, method .. " " .. path .. ": " .. status)
      end
    end
    assert.is_true(n >= 13)
  end)
end)
