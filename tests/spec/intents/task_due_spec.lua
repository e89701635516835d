-- CreateTask as a designer writes it (issue 15 §0): `due` as a duration from now on the
-- engine's clock, errors that name the field once, a catalog that says the subject must exist,
-- and a playbook's intent error that names the line that called its helper too.
local T = require("spine_test")

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

describe("CreateTask", function()
  local url
  setup(function()
    url = T.newdb("spec_task_due")
    assert.are.equal(0, (T.spine(url, { "intent", "RegisterCustomer", "--args",
      '{"customer_id": "cu-1", "name": "Ada", "email": "ada@example.org"}', "--actor", "t" })))
    -- the engine's clock, as a manual one keeps it: spine.now() reads it
    T.sql(url, "INSERT INTO spine.clock (now_ms) VALUES (1772355600000)") -- 2026-03-01T09:00Z
  end)

  it("takes due as a duration from now on the engine's clock", function()
    local code, res = T.spine_json(url, { "intent", "CreateTask", "--args",
      '{"kind": "estimate", "subject": "cu-1", "due": "14d"}', "--actor", "t" })
    assert.are.equal(0, code)
    assert.are.equal("2026-03-15T09:00:00Z", T.sql(url, "SELECT to_char(due AT TIME ZONE 'UTC'," ..
      " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM lifecycle.tasks WHERE task_id = '" ..
      res.result.task_id .. "'"))
    code = T.spine(url, { "intent", "CreateTask", "--args",
      '{"kind": "estimate", "subject": "cu-1", "due": "2026-04-01T00:00:00Z"}', "--actor", "t" })
    assert.are.equal(0, code)
  end)

  it("refuses a due that is neither, naming the field once", function()
    local code, _, err = T.spine(url, { "intent", "CreateTask", "--args",
      '{"kind": "estimate", "subject": "cu-1", "due": "14"}', "--actor", "t" })
    assert.are.equal(1, code)
    assert.matches("^spine: CreateTask: due: not a time %(ISO 8601", err)
    assert.matches('or a duration from now (as "14d"', err, 1, true)
    local _, ans = T.spine_json(url, { "intent", "CreateTask", "--args",
      '{"kind": "estimate", "subject": "cu-1", "due": "soon"}', "--actor", "t" })
    assert.are.equal("due", ans.error.field)
  end)

  it("says in the catalog that the subject must exist", function()
    local _, cat = T.spine_json("unused", { "intents" }, nil, T.product_bin)
    local desc
    for _, i in ipairs(cat.intents) do
      if i.name == "CreateTask" then desc = i.description end
    end
    assert.matches("the id of one that exists, else not_found", desc, 1, true)
    assert.matches('a duration from now on the workflow\'s clock ("14d")', desc, 1, true)
  end)

  it("fails a playbook naming the helper's line and the line that called the helper", function()
    local file = T.tmpfile() .. ".lua"
    write(file, table.concat({
      "local function open_task(ctx, subject)",
      '  return ctx.intent("CreateTask", { kind = "estimate", subject = subject, due = "14d" })',
      "end",
      "return { name = \"estimate\", run = function(ctx)",
      '  local task = open_task(ctx, "nobody")',
      "  return task",
      "end }",
    }, "\n"))
    local _, wf = T.spine_json(url, { "run", file, "--clock", "virtual" })
    os.remove(file)
    assert.are.equal("failed", wf.status)
    assert.are.equal("not_found", wf.error.code)
    assert.are.equal(file .. ":2", wf.error.where)
    assert.are.equal(file .. ":2 in open_task < " .. file .. ":5", wf.error.traceback)
    local _, out = T.spine(url, { "explain", wf.id })
    assert.matches("(at " .. file .. ":2 in open_task < " .. file .. ":5)", out, 1, true)
  end)
end)
