-- Secrets scrubbing across calls (issue 12, section 3): an adapter keeps a secret it was handed
-- in its module state and returns it, in simple forms (upper and lower case, base64, base64url,
-- inside a Basic credential, hex), from later calls that did not read it — in a result, an
-- error and a log line. Nothing of it reaches the step records (`spine show --json`), the
-- worker's log, `spine run --json` or the database.
local T = require("spine_test")
local P = require("provider_test")

local SECRET = "sk-cached-9Qf/+x2ZLmW"

local function b64(s, url)
  local abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789" ..
              (url and "-_" or "+/")
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    for k = 3, 0, -1 do
      local d = (n >> (6 * k)) & 63
      out[#out + 1] = abc:sub(d + 1, d + 1)
    end
    if not c then out[#out] = "=" end
    if not b then out[#out - 1] = "=" end
  end
  return table.concat(out)
end

-- Every form the adapter hands out, and a part of each (a leak need not be whole).
local function forms()
  local list = { SECRET, SECRET:upper(), SECRET:lower(), b64(SECRET), b64(SECRET, true),
                 b64("user:" .. SECRET):sub(8, 24),
                 (SECRET:gsub(".", function(c) return ("%02x"):format(c:byte()) end)) }
  list[#list + 1] = SECRET:sub(1, 12)
  list[#list + 1] = b64(SECRET):sub(1, 16)
  return list
end

local function assert_clean(text, where)
  for _, f in ipairs(forms()) do
    assert.is_nil(text:find(f, 1, true), where .. " holds " .. f)
  end
end

describe("secrets an adapter kept from an earlier call", function()
  it("are scrubbed from later calls' results, errors and logs, in their simple forms", function()
    local url = T.newdb("spec_secret_cache")
    local dir = P.dir()
    P.add(dir, "cacher", T.source("tests/providers/cacher.lua"))
    local env = { SPINE_PROVIDERS = dir, SPINE_SECRET_CACHER_API_KEY = SECRET }
    local code, out, err = T.spine(url, { "run", "tests/playbooks/secret_cache.lua", "--json" },
                                   env)
    assert.are.equal(0, code, err .. out)
    local wf = T.json.decode(out)
    assert.are.equal("completed", wf.status)

    -- `spine run --json`: the result, each form replaced
    local shown = wf.result.shown
    for _, k in ipairs({ "plain", "upper", "lower", "b64", "url", "hex" }) do
      assert.are.equal("[secret]", shown[k], k)
    end
    assert.matches("^Basic .*%[secret%]", shown.basic)
    assert.are.equal("refused for [secret]", wf.result.refused)
    assert.are.same({ key = "[secret]", hex = "[secret]" }, wf.result.details)
    assert_clean(out, "spine run --json")

    -- the log: the adapter's line is there, its secret is not
    assert.matches('"msg":"kept [secret]"', err, 1, true)
    assert_clean(err, "the log")

    -- the step records, as spine show --json has them
    local _, show = T.spine(url, { "show", wf.id, "--json" })
    local steps = T.json.decode(show).steps
    local names = {}
    for _, s in ipairs(steps) do
      if s.kind == "provider" then names[#names + 1] = s.name .. ":" .. s.status end
    end
    assert.are.same({ "cacher.remember:completed", "cacher.reveal:completed",
                      "cacher.reveal_error:failed" }, names)
    assert.are.same(shown, steps[2].result)
    assert.are.equal("refused for [secret]", steps[3].error.message)
    assert.are.same({ key = "[secret]", hex = "[secret]" }, steps[3].error.details)
    assert_clean(show, "spine show --json")

    -- and nothing of it in the database
    local _, dump = T.sh("pg_dump --data-only " .. T.q(url))
    assert.is_truthy(dump:find("refused for [secret]", 1, true), "the dump has the steps")
    assert_clean(dump, "the database")
  end)
end)
