-- Customers, meter points, providers, the credit ledger and human tasks.
local T = require("spine_test")
local L = require("lifecycle_test")

local url = T.newdb("spec_intents_customers")

local ADDRESS = { street = "Lindenallee 3", postcode = "50667", city = "Köln" }

describe("RegisterCustomer", function()
  it("stores the customer and address, with history and a CustomerRegistered event", function()
    local r = L.ok(url, "RegisterCustomer", { customer_id = "rc1", name = "Erika Mustermann",
      email = "erika@example.org", phone = "+49 221 555", iban = "DE02120300000000202051",
      address = ADDRESS })
    assert.are.same({ customer_id = "rc1" }, r)
    assert.are.equal("Erika Mustermann|erika@example.org|Lindenallee 3|Köln|DE", T.sql(url,
      "SELECT c.name || '|' || c.email || '|' || a.street || '|' || a.city || '|' || a.country" ..
      " FROM lifecycle.customers c JOIN lifecycle.addresses a USING (customer_id)" ..
      " WHERE c.customer_id = 'rc1'"))
    assert.are.equal("RegisterCustomer|ops:spec|Lindenallee 3", T.sql(url, "SELECT intent || '|'" ..
      " || actor || '|' || (after->'address'->>'street') FROM lifecycle.history" ..
      " WHERE entity = 'customer' AND entity_id = 'rc1'"))
    assert.are.equal('CustomerRegistered|{"customer_id": "rc1"}', T.sql(url,
      "SELECT event_type || '|' || payload FROM lifecycle.outbox WHERE ordering_key = 'rc1'"))
  end)

  it("returns the same result again for the same arguments, and nothing more is written", function()
    local before = L.snapshot(url)
    local r = L.ok(url, "RegisterCustomer", { customer_id = "rc1", name = "Erika Mustermann",
      email = "erika@example.org", phone = "+49 221 555", iban = "DE02120300000000202051",
      address = ADDRESS })
    assert.are.same({ customer_id = "rc1" }, r)
    assert.are.equal(before, L.snapshot(url))
  end)

  it("is a conflict with the same id and other arguments", function()
    L.rejects(url, "RegisterCustomer", { customer_id = "rc1", name = "Erika Musterfrau",
                                         email = "erika@example.org" }, "conflict", "customer_id")
  end)

  it("rejects a bad email, a missing name, an incomplete address", function()
    L.rejects(url, "RegisterCustomer", { name = "X", email = "not-an-email" }, "invalid_argument",
              "email")
    L.rejects(url, "RegisterCustomer", { email = "x@example.org" }, "invalid_argument", "name")
    L.rejects(url, "RegisterCustomer", { name = "X", email = "x@example.org",
                                         address = { street = "A 1", city = "B" } },
              "invalid_argument", "address.postcode")
  end)
end)

describe("RegisterMeterPoint", function()
  it("registers a meter point with its address", function()
    local r = L.ok(url, "RegisterMeterPoint", { customer_id = "rc1", meter_id = "DE0001",
      commodity = "gas", address = ADDRESS })
    assert.are.equal("gas|Lindenallee 3", T.sql(url, "SELECT m.commodity || '|' || a.street" ..
      " FROM lifecycle.meter_points m JOIN lifecycle.addresses a ON a.customer_id = m.customer_id" ..
      " AND a.address_id = m.address_id WHERE m.meter_point_id = '" .. r.meter_point_id .. "'"))
    assert.are.same(r, L.ok(url, "RegisterMeterPoint", { customer_id = "rc1", meter_id = "DE0001",
                                                         commodity = "gas", address = ADDRESS }))
  end)

  it("refuses a meter of another customer, other arguments, unknown customers and commodities", function()
    L.ok(url, "RegisterCustomer", { customer_id = "rc2", name = "Hans", email = "h@example.org" })
    L.rejects(url, "RegisterMeterPoint", { customer_id = "rc2", meter_id = "DE0001",
                                           commodity = "gas" }, "conflict", "meter_id")
    L.rejects(url, "RegisterMeterPoint", { customer_id = "rc1", meter_id = "DE0001",
                                           commodity = "electricity" }, "conflict", "meter_id")
    L.rejects(url, "RegisterMeterPoint", { customer_id = "nobody", meter_id = "DE0002",
                                           commodity = "gas" }, "not_found", "customer_id")
    L.rejects(url, "RegisterMeterPoint", { customer_id = "rc1", meter_id = "DE0002",
                                           commodity = "water" }, "invalid_argument", "commodity")
  end)
end)

describe("RegisterProvider", function()
  it("registers a provider once and updates its display name", function()
    L.ok(url, "RegisterProvider", { provider = "acme_energy" })
    L.ok(url, "RegisterProvider", { provider = "acme_energy", display_name = "ACME" })
    assert.are.equal("1|ACME", T.sql(url, "SELECT count(*) || '|' || max(display_name)" ..
                                          " FROM lifecycle.providers"))
    L.rejects(url, "RegisterProvider", { provider = "has space" }, "invalid_argument", "provider")
  end)
end)

describe("ApplyManualCredit", function()
  it("appends ledger entries in cents and returns the running balance", function()
    local a = L.ok(url, "ApplyManualCredit", { customer_id = "rc1", amount_cents = 1500,
                                               reason = "outage", approved_by = "lead:kim" })
    assert.are.equal(1500, a.balance_cents)
    assert.are.equal("EUR", a.currency)
    local b = L.ok(url, "ApplyManualCredit", { customer_id = "rc1", amount_cents = 250,
                                               reason = "goodwill" })
    assert.are.equal(1750, b.balance_cents)
    assert.are.equal("2|1750|ops:spec", T.sql(url, "SELECT count(*) || '|' || sum(amount_cents)" ..
      " || '|' || min(actor) FROM lifecycle.credits WHERE customer_id = 'rc1'"))
    assert.are.equal("CreditApplied CreditApplied", T.sql(url, "SELECT string_agg(event_type, ' '" ..
      " ORDER BY event_id) FROM lifecycle.outbox WHERE event_type = 'CreditApplied'"))
  end)

  it("is idempotent on a caller-supplied credit_id", function()
    local args = { customer_id = "rc1", amount_cents = 100, reason = "r", credit_id = "cr-1" }
    local first = L.ok(url, "ApplyManualCredit", args)
    assert.are.same(first, L.ok(url, "ApplyManualCredit", args))
    assert.are.equal("1850", T.sql(url, "SELECT sum(amount_cents) FROM lifecycle.credits"))
    args.amount_cents = 200
    L.rejects(url, "ApplyManualCredit", args, "conflict", "credit_id")
  end)

  it("keeps balances per currency", function()
    local r = L.ok(url, "ApplyManualCredit", { customer_id = "rc1", amount_cents = 999,
                                               currency = "CHF", reason = "r" })
    assert.are.equal(999, r.balance_cents)
    local cu = L.ok(url, "GetCustomer", { customer_id = "rc1" })
    assert.are.same({ EUR = 1850, CHF = 999 }, cu.balances)
    assert.are.equal(1850, cu.balance_cents)
  end)

  it("refuses non-positive or fractional amounts, bad currencies, a contract of someone else", function()
    L.rejects(url, "ApplyManualCredit", { customer_id = "rc1", amount_cents = 0, reason = "r" },
              "invalid_argument", "amount_cents")
    L.rejects(url, "ApplyManualCredit", { customer_id = "rc1", amount_cents = -100, reason = "r" },
              "invalid_argument", "amount_cents")
    L.rejects(url, "ApplyManualCredit", { customer_id = "rc1", amount_cents = 10.5, reason = "r" },
              "invalid_argument", "amount_cents")
    L.rejects(url, "ApplyManualCredit", { customer_id = "rc1", amount_cents = 10, reason = "r",
                                          currency = "euro" }, "invalid_argument", "currency")
    L.rejects(url, "ApplyManualCredit", { customer_id = "nobody", amount_cents = 10, reason = "r" },
              "not_found", "customer_id")
    local ids = L.contract(url, "other")
    L.rejects(url, "ApplyManualCredit", { customer_id = "rc1", amount_cents = 10, reason = "r",
                                          contract_id = ids.contract }, "not_found", "contract_id")
  end)

  it("refuses a direct UPDATE or DELETE of a ledger entry", function()
    local code = T.sh("psql " .. T.q(url) .. " -qAtX -v ON_ERROR_STOP=1 -c " ..
                      T.q("UPDATE lifecycle.credits SET amount_cents = 1"))
    assert.are_not.equal(0, code)
    code = T.sh("psql " .. T.q(url) .. " -qAtX -v ON_ERROR_STOP=1 -c " ..
                T.q("DELETE FROM lifecycle.credits"))
    assert.are_not.equal(0, code)
    assert.are.equal("1850", T.sql(url, "SELECT sum(amount_cents) FROM lifecycle.credits" ..
                                        " WHERE currency = 'EUR'"))
  end)
end)

describe("tasks", function()
  it("CreateTask opens a task on a contract or a customer", function()
    local r = L.ok(url, "CreateTask", { kind = "activation_overdue", subject = "other-k",
      data = { days = 14 }, due = "2026-12-24T12:00:00Z", task_id = "t-1" })
    assert.are.same({ task_id = "t-1", status = "open" }, r)
    assert.are.equal("open|other-cu|14", T.sql(url, "SELECT status || '|' || customer_id || '|' ||" ..
      " (data->>'days') FROM lifecycle.tasks WHERE task_id = 't-1'"))
    r = L.ok(url, "CreateTask", { kind = "call_back", subject = "rc1" })
    assert.are.equal("rc1", T.sql(url, "SELECT customer_id FROM lifecycle.tasks WHERE task_id = '" ..
                                       r.task_id .. "'"))
    assert.are.equal("TaskCreated", T.sql(url, "SELECT event_type FROM lifecycle.outbox" ..
                                               " WHERE ordering_key = 'other-k' ORDER BY event_id DESC LIMIT 1"))
  end)

  it("CreateTask refuses an unknown subject, a bad due time and a reused task id", function()
    L.rejects(url, "CreateTask", { kind = "k", subject = "nobody" }, "not_found", "subject")
    L.rejects(url, "CreateTask", { kind = "k", subject = "rc1", due = "soon" }, "invalid_argument",
              "due")
    L.rejects(url, "CreateTask", { kind = "other", subject = "rc1", task_id = "t-1" }, "conflict",
              "task_id")
  end)

  it("ResolveTask resolves once, recording outcome and resolver", function()
    local r = L.ok(url, "ResolveTask", { task_id = "t-1", outcome = "confirmed",
                                         data = { activation_date = "2026-12-28" } }, "ops:olga")
    assert.are.same({ task_id = "t-1", status = "resolved", outcome = "confirmed" }, r)
    assert.are.equal("resolved|ops:olga|2026-12-28", T.sql(url, "SELECT status || '|' ||" ..
      " resolved_by || '|' || (resolution->>'activation_date') FROM lifecycle.tasks" ..
      " WHERE task_id = 't-1'"))
    assert.are.equal("open>resolved", T.sql(url, "SELECT (before->>'status') || '>' ||" ..
      " (after->>'status') FROM lifecycle.history WHERE entity = 'task' AND entity_id = 't-1'" ..
      " AND intent = 'ResolveTask'"))
    L.rejects(url, "ResolveTask", { task_id = "t-1", outcome = "again" }, "invalid_transition")
    L.rejects(url, "ResolveTask", { task_id = "t-404", outcome = "x" }, "not_found", "task_id")
  end)

  it("GetTask reads a task with its outcome and who resolved it", function()
    local t = L.ok(url, "GetTask", { task_id = "t-1" })
    assert.are.same({ "resolved", "confirmed", "ops:olga", "activation_overdue", "other-k",
                      "other-cu", 14, "2026-12-28" },
                    { t.status, t.outcome, t.resolved_by, t.kind, t.subject, t.customer_id,
                      t.data.days, t.resolution.activation_date })
    assert.is_nil(t.args_digest)
    local open = L.ok(url, "CreateTask", { kind = "call_back", subject = "rc1", task_id = "t-2" })
    local o = L.ok(url, "GetTask", { task_id = open.task_id })
    assert.are.equal("open", o.status)
    assert.are.equal(T.json.null, o.resolved_by)
    L.rejects(url, "GetTask", { task_id = "t-404" }, "not_found", "task_id")
  end)

  it("ResolveTask signals task.resolved to the workflow that opened the task, and only to it",
     function()
    -- a case that is not run (no spine serve): the workflow CreateTask is applied for
    local code, wf = T.spine_json(url, { "start", "tests/playbooks/contract_race.lua", "--input",
      T.json.encode({ action = "GetTask", args = {} }) })
    assert.are.equal(0, code)
    T.sql(url, "SELECT lifecycle.create_task('{\"kind\": \"credit_approval\"," ..
      " \"subject\": \"rc1\", \"task_id\": \"t-wf\"}', lifecycle.meta('CreateTask'," ..
      " 'workflow', '" .. wf.id .. "', 1, 'trace'))")
    assert.are.equal(wf.id, T.sql(url, "SELECT workflow_id FROM lifecycle.tasks" ..
                                       " WHERE task_id = 't-wf'"))
    -- an operator's answer is held to the kind's form (a credit_approval takes a comment)
    L.rejects(url, "ResolveTask", { task_id = "t-wf", outcome = "approved",
                                    data = { note = "ok" } }, "invalid_argument", "data.note")
    L.ok(url, "ResolveTask", { task_id = "t-wf", outcome = "approved", data = { comment = "ok" } },
         "ops:bob")
    local sig = T.json.decode(T.sql(url, "SELECT json_build_object('n', count(*), 'name'," ..
      " min(name), 'payload', min(payload::text)::json) FROM spine.signals" ..
      " WHERE workflow_id = '" .. wf.id .. "'"))
    assert.are.equal(1, sig.n)
    assert.are.equal("task.resolved", sig.name)
    assert.are.same({ task_id = "t-wf", kind = "credit_approval", subject = "rc1",
                      outcome = "approved", data = { comment = "ok" }, resolved_by = "ops:bob" },
                    sig.payload)
    -- a task an operator opened (t-2, above) has no workflow: resolving it signals no one
    assert.are.equal(T.json.null, L.ok(url, "GetTask", { task_id = "t-2" }).workflow_id)
    local before = T.sql(url, "SELECT count(*) FROM spine.signals")
    L.ok(url, "ResolveTask", { task_id = "t-2", outcome = "done" }, "ops:olga")
    assert.are.equal(before, T.sql(url, "SELECT count(*) FROM spine.signals"))
  end)
end)

describe("GetCustomer", function()
  it("reads a customer with contracts and balances, and as they were at a past time", function()
    local cu = L.ok(url, "GetCustomer", { customer_id = "other-cu" })
    assert.are.equal("Erika Mustermann", cu.name)
    assert.are.same({ { contract_id = "other-k", state = "draft", provider = "acme_energy",
                        tariff = "green" } }, cu.contracts)
    local t0 = T.sql(url, "SELECT max(at) FROM lifecycle.history WHERE customer_id = 'other-cu'")
    L.ok(url, "RequestActivation", { contract_id = "other-k" })
    L.ok(url, "ApplyManualCredit", { customer_id = "other-cu", amount_cents = 700, reason = "r" })
    local now = L.ok(url, "GetCustomer", { customer_id = "other-cu" })
    assert.are.equal("pending_activation", now.contracts[1].state)
    assert.are.equal(700, now.balance_cents)
    local past = L.ok(url, "GetCustomer", { customer_id = "other-cu", as_of = t0 })
    assert.are.equal("draft", past.contracts[1].state)
    assert.are.equal(0, past.balance_cents)
    L.rejects(url, "GetCustomer", { customer_id = "nobody" }, "not_found", "customer_id")
  end)
end)
