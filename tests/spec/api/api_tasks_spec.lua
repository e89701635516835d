-- The HTTP API's task, intent, experiment, manifest and outbox routes (docs/api.md): a
-- manual_credit approval answered through the API completes the case; each route's refusals
-- name the field; scopes give 401/403; the caller is the actor; each POST leaves an audit row.
local T = require("spine_test")
local L = require("lifecycle_test")
local cjson = require("cjson")

local url, srv, base

local function token(subject, scopes)
  local code, out, err = T.spine_json(url, { "tokens", "create", "--subject", subject,
                                             "--scopes", scopes })
  assert(code == 0, "tokens create failed: " .. tostring(err))
  return out.token
end

local function api(method, path, tok, body, headers)
  local h = { table.unpack(headers or {}) }
  if tok then h[#h + 1] = "Authorization: Bearer " .. tok end
  if type(body) == "table" then body = cjson.encode(body) end
  local status, text = T.http(method, base .. path, { body = body, headers = h })
  local ok, obj = pcall(cjson.decode, text)
  return status, ok and obj or text
end

local function audit(route, target)
  return T.sql(url, "SELECT subject || ' ' || status || ' ' || outcome FROM spine.api_audit" ..
                    " WHERE route = '" .. route .. "' AND target = '" .. target ..
                    "' ORDER BY id DESC LIMIT 1")
end

setup(function()
  url = T.newdb("spec_api_tasks")
  L.ok(url, "RegisterCustomer", { customer_id = "cu-9", name = "Erika Mustermann",
                                  email = "erika@example.org" })
  srv = T.serve(url)
  base = "http://127.0.0.1:" .. T.http_port(srv)
end)

teardown(function()
  if srv then T.kill(srv, "TERM") end
end)

describe("tasks", function()
  it("an approval answered through the API completes its manual_credit case", function()
    local starter, reader = token("app:crm", "cases:start"), token("ops:viewer", "workflows:read")
    local bob, ann = token("ops:bob", "tasks:resolve"), token("ops:ann", "tasks:resolve")
    local s, case = api("POST", "/v1/cases", starter, { process = "manual_credit", input = {
      customer_id = "cu-9", amount_cents = 25000, reason = "billing error",
      requested_by = "ops:jane" } })
    assert.are.equal(201, s)
    local task
    T.wait_until(function()
      local _, page = api("GET", "/v1/tasks?subject=cu-9&kind=credit_approval", reader)
      task = page.items and page.items[1]
      return task ~= nil
    end, 30, "the approval task")
    assert.are.equal(case.id, task.workflow_id)
    assert.are.same({ "approved", "rejected" }, task.form.outcomes)
    assert.are.equal(401, (api("GET", "/v1/tasks", nil)))
    assert.are.equal(403, (api("POST", "/v1/tasks/" .. task.task_id .. "/claim", reader)))
    local gs, got = api("GET", "/v1/tasks/" .. task.task_id, reader)
    assert.are.equal(200, gs)
    assert.are.equal("open", got.status)
    assert.are.equal(404, (api("GET", "/v1/tasks/no-such-task", reader)))
    -- a claim: again by the same caller is fine, another claimer is refused 409
    local cs, claimed = api("POST", "/v1/tasks/" .. task.task_id .. "/claim", bob)
    assert.are.equal(200, cs)
    assert.are.equal("ops:bob", claimed.assignee)
    assert.are.equal(200, (api("POST", "/v1/tasks/" .. task.task_id .. "/claim", bob)))
    local other, ob = api("POST", "/v1/tasks/" .. task.task_id .. "/claim", ann)
    assert.are.equal(409, other)
    assert.matches("ops:bob", ob.error.message)
    local _, mine = api("GET", "/v1/tasks?assignee=ops:bob", reader)
    assert.are.equal(1, #mine.items)
    -- answers checked against the kind's form, naming the field
    local path = "/v1/tasks/" .. task.task_id .. "/resolve"
    local b1, e1 = api("POST", path, bob, { data = {} })
    assert.are.equal(400, b1)
    assert.are.equal("outcome", e1.error.field)
    local b2, e2 = api("POST", path, bob, { outcome = "maybe" })
    assert.are.equal(400, b2)
    assert.are.equal("outcome", e2.error.field)
    local b3, e3 = api("POST", path, bob, { outcome = "approved", data = { colour = "red" } })
    assert.are.equal(400, b3)
    assert.are.equal("data.colour", e3.error.field)
    local b4, e4 = api("POST", path, bob, { outcome = "approved", data = { comment = 5 } })
    assert.are.equal(400, b4)
    assert.are.equal("data.comment", e4.error.field)
    assert.are.equal(409, (api("POST", path, ann, { outcome = "approved" })))
    local rs, resolved = api("POST", path, bob, { outcome = "approved",
                                                  data = { comment = "checked the bill" } })
    assert.are.equal(200, rs, cjson.encode(resolved))
    assert.are.equal("resolved", resolved.status)
    T.wait_until(function()
      local _, wf = api("GET", "/v1/workflows/" .. case.id, reader)
      return wf.status == "completed"
    end, 30, "the case to complete")
    assert.are.equal("ops:bob", T.sql(url, "SELECT resolved_by FROM lifecycle.tasks WHERE" ..
                                           " task_id = '" .. task.task_id .. "'"))
    assert.are.equal("ops:bob", T.sql(url, "SELECT approved_by FROM lifecycle.credits WHERE" ..
                                           " customer_id = 'cu-9'"))
    assert.are.equal("ops:bob 200 ok", audit("/v1/tasks/{id}/resolve", task.task_id))
    assert.are.equal("ops:ann 409 conflict", audit("/v1/tasks/{id}/claim", task.task_id))
    local again = api("POST", path, bob, { outcome = "approved" })
    assert.are.equal(409, again)
    local bad, bb = api("GET", "/v1/tasks?due_before=soon", reader)
    assert.are.equal(400, bad)
    assert.are.equal("due_before", bb.error.field)
    bad, bb = api("GET", "/v1/tasks?cursor=zz", reader)
    assert.are.equal(400, bad)
    assert.are.equal("cursor", bb.error.field)
  end)
end)

describe("intents", function()
  it("lists the catalog and applies one with the caller as actor", function()
    local reader, applier = token("ops:viewer2", "workflows:read"), token("ops:eve", "intents:apply")
    local s, cat = api("GET", "/v1/intents", reader)
    assert.are.equal(200, s)
    local names = {}
    for _, i in ipairs(cat.items) do names[i.name] = i end
    assert.is_table(names.RegisterCustomer)
    assert.are.equal(403, (api("POST", "/v1/intents/RegisterCustomer", reader, { args = {} })))
    local as, applied = api("POST", "/v1/intents/RegisterCustomer", applier, { args = {
      customer_id = "cu-10", name = "Max Muster", email = "max@example.org" } })
    assert.are.equal(200, as, cjson.encode(applied))
    assert.are.equal("ops:eve", applied.actor)
    assert.are.equal("ops:eve", T.sql(url, "SELECT actor FROM lifecycle.history WHERE" ..
      " entity_id = 'cu-10' ORDER BY history_id LIMIT 1"))
    assert.are.equal("ops:eve 200 ok", audit("/v1/intents/{name}", "RegisterCustomer"))
    local bs, be = api("POST", "/v1/intents/RegisterCustomer", applier, { args = {
      customer_id = "cu-11", name = "Max Muster", email = "not-an-email" } })
    assert.are.equal(400, bs)
    assert.are.equal("email", be.error.field)
    local ns, ne = api("POST", "/v1/intents/NoSuchIntent", applier, { args = {} })
    assert.are.equal(404, ns)
    assert.are.equal("name", ne.error.field)
    local ts, te = api("POST", "/v1/intents/RegisterCustomer", applier, { args = 3 })
    assert.are.equal(400, ts)
    assert.are.equal("args", te.error.field)
  end)
end)

describe("an operator's ResolveTask", function()
  it("is held to the task's form whichever way it comes, and checked in its transaction", function()
    local creator = token("ops:mia", "intents:apply")
    local s, t = api("POST", "/v1/intents/CreateTask", creator, { args = {
      kind = "credit_approval", subject = "cu-9", task_id = "task-form-1" } })
    assert.are.equal(200, s, cjson.encode(t))
    local bs, be = api("POST", "/v1/intents/ResolveTask", creator, { args = {
      task_id = "task-form-1", outcome = "maybe" } })
    assert.are.equal(400, bs)
    assert.are.equal("outcome", be.error.field)
    local ds, de = api("POST", "/v1/intents/ResolveTask", creator, { args = {
      task_id = "task-form-1", outcome = "approved", data = { colour = "red" } } })
    assert.are.equal(400, ds)
    assert.are.equal("data.colour", de.error.field)
    assert.are.equal("open", T.sql(url, "SELECT status FROM lifecycle.tasks WHERE" ..
                                        " task_id = 'task-form-1'"))
    -- the CLI's `spine intent ResolveTask` is the same path
    local code, _, err = T.spine(url, { "intent", "ResolveTask", "--actor", "ops:mia", "--args",
                                        '{"task_id":"task-form-1","outcome":"maybe"}' })
    assert.are.equal(1, code)
    assert.matches("outcome must be one of approved, rejected", err, 1, true)
    local os, o = api("POST", "/v1/intents/ResolveTask", creator, { args = {
      task_id = "task-form-1", outcome = "rejected", data = { comment = "duplicate" } } })
    assert.are.equal(200, os, cjson.encode(o))
    assert.are.equal("resolved rejected ops:mia", T.sql(url, "SELECT status || ' ' || outcome" ..
      " || ' ' || resolved_by FROM lifecycle.tasks WHERE task_id = 'task-form-1'"))
  end)
end)

describe("experiments, manifests, outbox", function()
  it("answer as the CLI's --json, with scopes and refusals", function()
    local reader, operator = token("ops:r3", "workflows:read"), token("ops:o3", "workflows:operate")
    local s, ex = api("GET", "/v1/experiments?process=manual_credit", reader)
    assert.are.equal(200, s)
    assert.is_table(ex.items)
    local bad, b = api("GET", "/v1/experiments?colour=red", reader)
    assert.are.equal(400, bad)
    assert.are.equal("colour", b.error.field)
    local ms, mf = api("GET", "/v1/manifests", reader)
    assert.are.equal(200, ms)
    assert.is_table(mf.items)
    assert.are.equal(403, (api("POST", "/v1/manifests/reload", operator)))
    local admin = token("ops:root", "admin")
    local rs, rl = api("POST", "/v1/manifests/reload", admin)
    assert.are.equal(200, rs, cjson.encode(rl))
    assert.is_true(rl.loaded)
    assert.are.equal("api:ops:root", T.sql(url, "SELECT loaded_by FROM spine.manifest_loads" ..
                                                " ORDER BY id DESC LIMIT 1"))
    local ss, subs = api("GET", "/v1/outbox/subscribers", reader)
    assert.are.equal(200, ss)
    assert.is_table(subs.items)
    local ds, dead = api("GET", "/v1/outbox/dead", reader)
    assert.are.equal(200, ds)
    assert.is_table(dead.items)
    assert.are.equal(403, (api("POST", "/v1/outbox/dead/1/redeliver", reader)))
    local ns, ne = api("POST", "/v1/outbox/dead/999999/redeliver", operator)
    assert.are.equal(404, ns)
    assert.are.equal("id", ne.error.field)
    local is, ie = api("POST", "/v1/outbox/dead/abc/redeliver", operator)
    assert.are.equal(400, is)
    assert.are.equal("id", ie.error.field)
    assert.are.equal("ops:o3 404 not_found", audit("/v1/outbox/dead/{id}/redeliver", "event 999999"))
  end)
end)

describe("POST /v1/cases", function()
  it("scopes an Idempotency-Key to its caller", function()
    local a, b = token("app:one", "cases:start"), token("app:two", "cases:start")
    local key = { "Idempotency-Key: same-key" }
    local s1, c1 = api("POST", "/v1/cases", a, { process = "manual_credit", input = {
      customer_id = "cu-9", amount_cents = 100, reason = "x", requested_by = "ops:jane" } }, key)
    assert.are.equal(201, s1)
    local s2, c2 = api("POST", "/v1/cases", b, { process = "manual_credit", input = {
      customer_id = "cu-9", amount_cents = 100, reason = "x", requested_by = "ops:jane" } }, key)
    assert.are.equal(201, s2)
    assert.are_not.equal(c1.id, c2.id)
    local s3, c3 = api("POST", "/v1/cases", a, { process = "manual_credit", input = {
      customer_id = "cu-9", amount_cents = 100, reason = "x", requested_by = "ops:jane" } }, key)
    assert.are.equal(200, s3)
    assert.are.equal(c1.id, c3.id)
  end)
end)
