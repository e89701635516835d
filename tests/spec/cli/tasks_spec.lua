-- `spine tasks`: the inbox from a shell, through the API's task functions. A manual_credit
-- approval found, shown with its form, claimed and answered completes its case; refusals name
-- the field and change nothing.
local T = require("spine_test")
local L = require("lifecycle_test")

local url, srv

setup(function()
  url = T.newdb("spec_cli_tasks")
  L.ok(url, "RegisterCustomer", { customer_id = "ct-1", name = "Erika Mustermann",
                                  email = "erika@example.org" })
  srv = T.serve(url)
end)

teardown(function()
  if srv then T.kill(srv, "TERM") end
end)

local function status(id)
  return T.sql(url, "SELECT status FROM spine.workflows WHERE id = '" .. id .. "'")
end

describe("spine tasks", function()
  it("finds, shows, claims and answers a credit approval, and the case completes", function()
    local code, id = T.spine(url, { "start", "manual_credit", "--input",
      '{"customer_id":"ct-1","amount_cents":25000,"reason":"billing error",' ..
      '"requested_by":"ops:jane"}' })
    assert.are.equal(0, code)
    id = id:gsub("%s+$", "")
    local task
    T.wait_until(function()
      local _, page = T.spine_json(url, { "tasks", "--subject", "ct-1" })
      task = page and page.items and page.items[1]
      return task ~= nil
    end, 30, "the approval task")
    assert.are.equal(id, task.workflow_id)
    local _, list = T.spine(url, { "tasks", "list", "--assignee", "" })
    assert.matches(task.task_id:gsub("%p", "%%%0") .. " +credit_approval +ct%-1 +unclaimed", list)
    local _, shown = T.spine(url, { "tasks", "show", task.task_id })
    assert.matches("outcomes: approved rejected", shown, 1, true)
    assert.matches("data.comment: string\n", shown, 1, true)
    assert.matches("opened by workflow " .. id, shown, 1, true)

    -- usage: who acts is required
    assert.are.equal(2, (T.spine(url, { "tasks", "claim", task.task_id })))
    assert.are.equal(2, (T.spine(url, { "tasks", "resolve", task.task_id, "--actor", "ops:bob" })))
    local c1 = T.spine_json(url, { "tasks", "claim", task.task_id, "--actor", "ops:bob" })
    assert.are.equal(0, c1)
    local c2, other = T.spine_json(url, { "tasks", "claim", task.task_id, "--actor", "ops:ann" })
    assert.are.equal(1, c2)
    assert.are.equal("conflict", other.error.code)

    -- answers are held to the form and the claim; a refusal changes nothing
    local r1, e1 = T.spine_json(url, { "tasks", "resolve", task.task_id, "--outcome", "maybe",
                                       "--actor", "ops:bob" })
    assert.are.equal(1, r1)
    assert.are.equal("outcome", e1.error.field)
    local r2, e2 = T.spine_json(url, { "tasks", "resolve", task.task_id, "--outcome", "approved",
                                       "--data", '{"colour":"red"}', "--actor", "ops:bob" })
    assert.are.equal(1, r2)
    assert.are.equal("data.colour", e2.error.field)
    local r3, e3 = T.spine_json(url, { "tasks", "resolve", task.task_id, "--outcome", "approved",
                                       "--data", "[1]", "--actor", "ops:bob" })
    assert.are.equal(1, r3)
    assert.are.equal("--data", e3.error.field)
    local r4 = T.spine_json(url, { "tasks", "resolve", task.task_id, "--outcome", "approved",
                                   "--actor", "ops:ann" })
    assert.are.equal(1, r4)
    assert.are.equal("open", T.sql(url, "SELECT status FROM lifecycle.tasks WHERE task_id = '" ..
                                        task.task_id .. "'"))

    local ok, out = T.spine(url, { "tasks", "resolve", task.task_id, "--outcome", "approved",
                                   "--data", '{"comment":"checked the bill"}',
                                   "--actor", "ops:bob" })
    assert.are.equal(0, ok)
    assert.matches(task.task_id .. ": resolved (approved)", out, 1, true)
    T.wait_until(function() return status(id) == "completed" end, 30, "the case to complete")
    assert.are.equal("ops:bob", T.sql(url, "SELECT approved_by FROM lifecycle.credits WHERE" ..
                                           " customer_id = 'ct-1'"))
    local _, none = T.spine(url, { "tasks", "--subject", "ct-1" })
    assert.matches("no open tasks", none, 1, true)
    local again = T.spine_json(url, { "tasks", "resolve", task.task_id, "--outcome", "approved",
                                      "--actor", "ops:bob" })
    assert.are.equal(1, again)
  end)

  it("refuses a bad filter naming the option", function()
    local code, e = T.spine_json(url, { "tasks", "--due-before", "soon" })
    assert.are.equal(1, code)
    assert.are.equal("--due-before", e.error.field)
    assert.are.equal(2, (T.spine(url, { "tasks", "frobnicate", "x" })))
    local nf, ne = T.spine_json(url, { "tasks", "show", "no-such-task" })
    assert.are.equal(1, nf)
    assert.are.equal("not_found", ne.error.code)
  end)
end)
