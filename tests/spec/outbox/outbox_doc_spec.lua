-- docs/operations.md, "The outbox relay": every command of its shell example runs as written
-- (against a test database, with a dead letter to re-queue), `spine outbox --dead` answers
-- in the form the guide shows, and its subscriber's signature check in Python accepts what
-- Spine signs and refuses a stale, forged or unsigned request.
local T = require("spine_test")
local L = require("lifecycle_test")

local function section()
  local doc = T.source("docs/operations.md")
  return assert(doc:match("\n## The outbox relay\n(.-)\n## "), "no outbox section")
end

-- The section's ```sh blocks as commands (continuation lines joined).
local function commands()
  local out = {}
  for block in section():gmatch("```sh\n(.-)\n```") do
    local joined = block:gsub("\\\n%s*", " ")
    for line in joined:gmatch("[^\n]+") do out[#out + 1] = line end
  end
  return out
end

describe("the outbox relay's guide", function()
  it("has shell commands that run as written", function()
    local url = T.newdb("spec_outbox_doc")
    assert.are.equal(0, (T.spine(url, { "db", "migrate" })))
    local cmds = commands()
    assert.is_true(#cmds >= 8, "expected the guide's commands, found " .. #cmds)
    for _, cmd in ipairs(cmds) do
      assert.matches("^build/spine outbox", cmd)
      -- before each command, crm has a dead letter (its attempts ran out)
      T.sql(url, "UPDATE spine.outbox_deliveries SET status = 'dead', attempts = 8," ..
                 " last_error = 'HTTP 503 from crm' WHERE subscriber = 'crm'")
      local event_id = T.sql(url, "SELECT coalesce(max(event_id), 0)" ..
                                  " FROM spine.outbox_deliveries WHERE subscriber = 'crm'")
      local code, out, err = T.sh("cd " .. T.q(T.src) .. " && SPINE_DATABASE_URL=" .. T.q(url) ..
                                  " event_id=" .. event_id .. " bash -c " ..
                                  T.q((cmd:gsub("^build/spine", T.q(T.bin)))))
      assert.are.equal(0, code, cmd .. ": " .. out .. err)
      if cmd:find(" subscribe ", 1, true) then
        L.active_contract(url, "doc") -- its ContractActivated goes to crm
      end
      if (cmd:match("^[^#]*") .. " "):find(" --dead ", 1, true) then
        assert.matches("^event %d+ %(ContractActivated, key doc%-k, of [^)]+%) to crm: dead" ..
                       " after 8 attempts\n  last error: HTTP 503 from crm\n", out)
      end
    end
  end)

  it("has a signature check that takes Spine's signature and refuses stale or forged ones",
     function()
    local code = assert(section():match("```python\n(.-)\n```"), "no Python example")
    local script = os.tmpname() .. ".py"
    local f = assert(io.open(script, "wb"))
    f:write(code, "\n\nimport json, sys\n",
            "case = json.load(open(sys.argv[1]))\n",
            "print('yes' if verified(case['secret'].encode(), case['headers'],",
            " case['body'].encode()) else 'no')\n")
    f:close()
    local secret, body = "s3cret-outbox", '{"event_id":7,"type":"ContractActivated"}'
    local function check(headers, sent)
      local path = os.tmpname()
      local c = assert(io.open(path, "wb"))
      c:write(T.json.encode({ secret = secret, headers = headers, body = sent or body }))
      c:close()
      local rc, out, err = T.sh("python3 " .. T.q(script) .. " " .. T.q(path))
      os.remove(path)
      assert.are.equal(0, rc, err)
      return (out:gsub("%s+$", ""))
    end
    local function signed(stamp, text)
      return { ["X-Spine-Timestamp"] = stamp,
               ["X-Spine-Signature"] = "sha256=" .. T.hmac(secret, text) }
    end
    local now = tostring(os.time())
    local old = tostring(os.time() - 301)
    assert.are.equal("yes", check(signed(now, now .. "." .. body)))
    assert.are.equal("no", check(signed(old, old .. "." .. body)), "a stale timestamp")
    assert.are.equal("no", check(signed(now, body)), "the body alone signed")
    assert.are.equal("no", check(signed(now, now .. "." .. body), body .. " "), "another body")
    assert.are.equal("no", check({ ["X-Spine-Signature"] = signed(now, body)["X-Spine-Signature"] }),
                     "no timestamp")
    os.remove(script)
  end)
end)
