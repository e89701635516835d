-- docs/playbooks.md on the platform's processes says what the playbooks do: its excerpts are
-- the playbooks' own lines, its state tables name the states they set.
local T = require("spine_test")

local read = T.source

describe("the guide to the platform's processes", function()
  local guide = read("docs/playbooks.md")

  it("quotes playbooks verbatim where a block says `-- from playbooks/NAME.lua`", function()
    local quoted = 0
    for body in guide:gmatch("```lua\n(.-)\n```") do
      local path, excerpt = body:match("^%-%- from (playbooks/[%w_]+%.lua)\n(.*)$")
      if path then
        assert.truthy(read(path):find(excerpt .. "\n", 1, true),
                      "docs/playbooks.md quotes " .. path .. " wrongly:\n" .. excerpt)
        quoted = quoted + 1
      end
    end
    assert.is_true(quoted >= 2, "expected excerpts of the playbooks, found " .. quoted)
  end)

  it("starts cases with inputs the processes accept", function()
    local section = guide:match("\n## The platform's processes\n(.-)\n## ") or
                    guide:match("\n## The platform's processes\n(.*)$")
    local url = T.newdb("spec_processes_doc_inputs")
    local started = {}
    for process, input in section:gmatch("build/spine start ([%w_]+) %-%-input '([^']*)'") do
      local code, _, err = T.spine(url, { "start", process, "--input", input })
      assert.are.equal(0, code, "spine start " .. process .. " --input " .. input .. ": " .. err)
      started[#started + 1] = process
    end
    table.sort(started)
    assert.are.same({ "manual_credit", "price_increase", "tariff_switch" }, started)
  end)

  it("lists in its state tables only states the playbooks set, and all of them", function()
    for _, process in ipairs({ "price_increase", "tariff_switch", "manual_credit" }) do
      local section = guide:match("\n### " .. process .. "\n(.-)\n###? ")
      assert.is_string(section, "no section ### " .. process)
      local table_rows = section:match("| state | means |\n|[-|]+|\n(.-)\n\n")
      assert.is_string(table_rows, process .. ": no state table")
      local documented = {}
      for row in table_rows:gmatch("[^\n]+") do
        for state in row:match("^| ([^|]+)|"):gmatch("`([%w_]+)`") do documented[state] = true end
      end
      local set = {}
      for state in read("playbooks/" .. process .. ".lua"):gmatch('ctx%.state%("([%w_]+)"%)') do
        set[state] = true
      end
      assert.are.same(set, documented, process)
    end
  end)
end)
