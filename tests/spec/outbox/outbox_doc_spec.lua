-- docs/operations.md, "The outbox relay": every command of its shell example runs as written
-- (against a test database, with a dead letter to re-queue), and `spine outbox --dead` answers
-- in the form the guide shows.
local T = require("spine_test")
local L = require("lifecycle_test")

-- The section's ```sh blocks as commands (continuation lines joined).
local function commands()
  local doc = T.source("docs/operations.md")
  local section = assert(doc:match("\n## The outbox relay\n(.-)\n## "), "no outbox section")
  local out = {}
  for block in section:gmatch("```sh\n(.-)\n```") do
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
end)
