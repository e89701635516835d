-- Single sign-on (docs/security.md): `spine serve` with SPINE_JWKS_FILE takes bearer JWTs of an
-- identity provider besides its own API tokens. The keys and the tokens are made here with the
-- openssl command, independent of Spine's code: an RS256 key in the JWKS file, tokens signed by
-- it (and one by a key the file does not have). The subject becomes the actor, the scope claim
-- the scopes; a bad JWKS file stops the start, naming the key.
local T = require("spine_test")
local cjson = require("cjson")

local MANIFESTS = os.tmpname()
os.remove(MANIFESTS)
os.execute("mkdir -p " .. MANIFESTS)
local DIR = os.tmpname()
os.remove(DIR)
os.execute("mkdir -p " .. DIR)
local ISSUER, AUDIENCE = "https://idp.example/realms/ops", "spine-api"

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

-- base64url without padding (RFC 7515 §2)
local function b64url(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local chars = 2 + (b and 1 or 0) + (c and 1 or 0)
    for k = 1, chars do
      local v = (n >> (6 * (4 - k))) & 63
      out[#out + 1] = B64:sub(v + 1, v + 1)
    end
  end
  return table.concat(out)
end

local function unhex(h)
  return (h:gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end))
end

-- A fresh RSA 2048 key at DIR/name.pem; returns its public JWK (kid = name).
local function rsa_key(name)
  local pem = DIR .. "/" .. name .. ".pem"
  local code, _, err = T.sh("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out " ..
                            T.q(pem))
  assert(code == 0, "openssl genpkey: " .. err)
  local _, mod = T.sh("openssl rsa -in " .. T.q(pem) .. " -noout -modulus")
  local hex = assert(mod:match("Modulus=(%x+)"))
  return { kty = "RSA", kid = name, alg = "RS256", use = "sig", n = b64url(unhex(hex)), e = "AQAB" }
end

-- A compact RS256 JWT of `claims`, signed with DIR/key.pem and naming kid `key`.
local function jwt(key, claims)
  local signing = b64url(cjson.encode({ alg = "RS256", typ = "JWT", kid = key })) .. "." ..
                  b64url(cjson.encode(claims))
  local f = T.tmpfile()
  local h = assert(io.open(f, "wb"))
  h:write(signing)
  h:close()
  local sig = T.tmpfile()
  local code, _, err = T.sh("openssl dgst -sha256 -sign " .. T.q(DIR .. "/" .. key .. ".pem") ..
                            " -out " .. T.q(sig) .. " " .. T.q(f))
  os.remove(f)
  assert(code == 0, "openssl dgst: " .. err)
  local s = T.read(sig)
  os.remove(sig)
  return signing .. "." .. b64url(s)
end

local function claims(sub, scope, exp_in)
  return { iss = ISSUER, aud = AUDIENCE, sub = sub, scope = scope, iat = os.time(),
           exp = os.time() + (exp_in or 600) }
end

local url, srv, base

local function api(method, path, tok, body)
  local h = {}
  if tok then h[1] = "Authorization: Bearer " .. tok end
  if type(body) == "table" then body = cjson.encode(body) end
  local status, text = T.http(method, base .. path, { body = body, headers = h })
  local ok, obj = pcall(cjson.decode, text)
  return status, ok and obj or text
end

setup(function()
  -- beside its RS256 key, the identity provider publishes one this verifier does not take
  local jwks = { keys = { rsa_key("k1"), { kty = "OKP", crv = "Ed25519", kid = "ed1",
                                           x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo" } } }
  rsa_key("stranger") -- a key the file does not have
  local f = assert(io.open(DIR .. "/jwks.json", "w"))
  f:write(cjson.encode(jwks))
  f:close()
  url = T.newdb("spec_api_sso")
  srv = T.serve(url, { SPINE_PLAYBOOKS = "tests/playbooks", SPINE_MANIFESTS = MANIFESTS,
                       SPINE_JWKS_FILE = DIR .. "/jwks.json", SPINE_JWT_ISSUER = ISSUER,
                       SPINE_JWT_AUDIENCE = AUDIENCE })
  base = "http://127.0.0.1:" .. T.http_port(srv)
end)

teardown(function()
  if srv then T.kill(srv, "TERM") end
  os.execute("rm -rf " .. T.q(DIR) .. " " .. T.q(MANIFESTS))
end)

describe("single sign-on", function()
  it("takes a JWT of the identity provider: its subject acts, within its scopes", function()
    local reader = jwt("k1", claims("jane@example.org", "workflows:read"))
    local s, list = api("GET", "/v1/workflows", reader)
    assert.are.equal(200, s)
    assert.is_table(list.items)
    local ws, me = api("GET", "/v1/whoami", reader)
    assert.are.equal(200, ws)
    assert.are.same({ subject = "jane@example.org", scopes = { "workflows:read" },
                      token_id = cjson.null }, me)
    local forbidden, fb = api("POST", "/v1/cases", reader, { process = "waiter" })
    assert.are.equal(403, forbidden)
    assert.matches("jane@example.org", fb.error.message, 1, true)

    local operator = jwt("k1", claims("ops:sso-jane", "cases:start workflows:read workflows:operate"))
    local cs, case = api("POST", "/v1/cases", operator, { process = "waiter" })
    assert.are.equal(201, cs)
    T.wait_until(function()
      local _, wf = api("GET", "/v1/workflows/" .. case.id, operator)
      return wf.status == "waiting"
    end, 30, "the case to wait")
    assert.are.equal(200, (api("POST", "/v1/workflows/" .. case.id .. "/cancel", operator)))
    assert.are.equal("ops:sso-jane",
                     T.sql(url, "SELECT cancelled_by FROM spine.workflows WHERE id = '" .. case.id .. "'"))
    assert.are.equal("ops:sso-jane",
                     T.sql(url, "SELECT subject FROM spine.api_audit WHERE target = '" .. case.id ..
                                "' ORDER BY at DESC LIMIT 1"))
  end)

  it("refuses an expired token, another key's, another issuer's or audience's: 401", function()
    local cases = {
      jwt("k1", claims("jane", "workflows:read", -300)),                    -- expired past the skew
      jwt("stranger", claims("jane", "workflows:read")),                   -- kid unknown
      jwt("k1", { iss = "https://evil.example", aud = AUDIENCE, sub = "jane",
                  scope = "workflows:read", exp = os.time() + 600 }),
      jwt("k1", { iss = ISSUER, aud = "another-api", sub = "jane", scope = "workflows:read",
                  exp = os.time() + 600 }),
    }
    -- a signature of the right key over another payload
    local good = jwt("k1", claims("jane", "workflows:read"))
    local h, _, sig = good:match("^([^.]+)%.([^.]+)%.([^.]+)$")
    cases[#cases + 1] = h .. "." .. b64url(cjson.encode(claims("root", "admin"))) .. "." .. sig
    for i, tok in ipairs(cases) do
      local s, body = api("GET", "/v1/workflows", tok)
      assert.are.equal(401, s, "token " .. i)
      assert.are.equal("unauthorized", body.error.code, "token " .. i)
    end
    local log = T.log_of(srv)
    assert.matches('"code":"expired"', log, 1, true)
    assert.matches('"code":"bad_signature"', log, 1, true)
    assert.matches('"peer":"127.0.0.1', log, 1, true) -- who sent it
    assert.is_nil(log:find(good, 1, true), "a token must never be logged")
  end)

  it("uses the keys it can take and says which it left out", function()
    assert.matches('"msg":"a key of the JWKS file is not used"[^\n]*"key":"keys%[1%] %(kid ed1%):' ..
                   ' left out: kty OKP"', T.log_of(srv))
  end)

  local function serve_with(file)
    return T.sh("cd " .. T.q(T.src) .. " && SPINE_DATABASE_URL=" .. T.q(url) ..
                " SPINE_LISTEN=127.0.0.1:0 SPINE_JWKS_FILE=" .. T.q(file) ..
                " SPINE_JWT_ISSUER=" .. T.q(ISSUER) .. " SPINE_JWT_AUDIENCE=" ..
                AUDIENCE .. " timeout 60 " .. T.q(T.bin) .. " serve")
  end

  it("a JWKS file with a bad key, or none it can take, stops the start, naming the key", function()
    local f = assert(io.open(DIR .. "/bad.json", "w"))
    f:write('{"keys": [{"kty": "EC", "crv": "P-384", "kid": "x", "x": "AA", "y": "AA"}]}')
    f:close()
    local code, _, err = serve_with(DIR .. "/bad.json")
    assert.are_not.equal(0, code)
    assert.matches("no key for RS256 or ES256", err, 1, true)
    assert.matches("keys[0] (kid x): left out: curve P-384", err, 1, true)
    f = assert(io.open(DIR .. "/private.json", "w"))
    local k = rsa_key("leaky")
    k.d = "AAAA"
    f:write(cjson.encode({ keys = { k } }))
    f:close()
    code, _, err = serve_with(DIR .. "/private.json")
    assert.are_not.equal(0, code)
    assert.matches("keys[0].d: a private key", err, 1, true)
  end)

  it("reads the JWKS file again on SIGHUP: rotated keys work, a bad file keeps the old", function()
    local old = jwt("k1", claims("jane", "workflows:read"))
    local jwks = { keys = { rsa_key("k2") } }
    local new = jwt("k2", claims("jane", "workflows:read"))
    assert.are.equal(401, (api("GET", "/v1/whoami", new)))
    local f = assert(io.open(DIR .. "/jwks.json.tmp", "w"))
    f:write(cjson.encode(jwks))
    f:close()
    assert(os.rename(DIR .. "/jwks.json.tmp", DIR .. "/jwks.json"))
    os.execute("kill -HUP " .. srv.pid)
    T.wait_until(function()
      return T.log_of(srv):find('"msg":"single sign-on: the JWKS file is reloaded"', 1, true)
    end, 30, "the reload")
    assert.are.equal(200, (api("GET", "/v1/whoami", new)))
    assert.are.equal(401, (api("GET", "/v1/whoami", old)))
    -- a broken file: refused, logged, and the keys in force stay
    f = assert(io.open(DIR .. "/jwks.json", "w"))
    f:write('{"keys": [')
    f:close()
    os.execute("kill -HUP " .. srv.pid)
    T.wait_until(function()
      return T.log_of(srv):find('"msg":"JWKS file refused: the keys in force are unchanged"', 1,
                                true)
    end, 30, "the refusal")
    assert.are.equal(200, (api("GET", "/v1/whoami", new)))
  end)
end)
