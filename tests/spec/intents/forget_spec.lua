-- ForgetCustomer: no personal field of the customer is readable anywhere in the database
-- afterwards (every text and JSON column of every table is searched), and the ledger is intact.
local T = require("spine_test")
local L = require("lifecycle_test")

local url = T.newdb("spec_intents_forget")

local PERSON = { customer_id = "fg-1", name = "Quirinus Zamolxis", email = "q.zamolxis@example.org",
                 phone = "+49 30 98765432", iban = "DE44500105175407324931",
                 street = "Wolkenkuckucksweg 17", postcode = "10999", city = "Berlin" }
local OTHER = { customer_id = "fg-2", name = "Henrike Ostermann", email = "h.ostermann@example.org",
                phone = "+49 40 1234567", iban = "DE89370400440532013000",
                street = "Elbchaussee 99", postcode = "22763", city = "Hamburg" }

-- Every (schema.table.column) of a text, varchar, json or jsonb column containing one of the
-- values, case-insensitively.
local function where_found(values)
  local patterns = {}
  for _, v in ipairs(values) do patterns[#patterns + 1] = "%" .. v .. "%" end
  local arr = "ARRAY['" .. table.concat(patterns, "','") .. "']"
  local union = T.sql(url, "SELECT string_agg(format('SELECT %L FROM %I.%I WHERE %I::text" ..
    " ILIKE ANY (%L::text[])', table_schema || '.' || table_name || '.' || column_name," ..
    " table_schema, table_name, column_name, " .. arr .. "::text), ' UNION ALL ')" ..
    " FROM information_schema.columns c JOIN pg_class k ON k.relname = c.table_name" ..
    " JOIN pg_namespace n ON n.oid = k.relnamespace AND n.nspname = c.table_schema" ..
    " WHERE k.relkind = 'r' AND c.data_type IN ('text', 'character varying', 'json', 'jsonb')" ..
    " AND c.table_schema NOT IN ('pg_catalog', 'information_schema')")
  return T.sql(url, "SELECT coalesce(string_agg(DISTINCT x, ', '), '') FROM (" .. union .. ") f(x)")
end

local function personal(p)
  return { p.name, p.email, p.phone, p.iban, p.street }
end

local function ledger(customer_id)
  return T.sql(url, "SELECT count(*) || '|' || coalesce(sum(amount_cents), 0) FROM" ..
                    " lifecycle.credits WHERE customer_id = '" .. customer_id .. "'")
end

describe("ForgetCustomer", function()
  local runs = {}
  for _, p in ipairs({ PERSON, OTHER }) do
    local code, wf = T.spine_json(url, { "run", "tests/playbooks/onboard_customer.lua",
                                         "--input", T.json.encode(p) })
    assert(code == 0 and wf.status == "completed", "onboarding failed")
    runs[p.customer_id] = wf
  end
  -- And by an operator: a note naming the customer, a credit with their name in the reason.
  L.ok(url, "CreateTask", { kind = "note", subject = PERSON.customer_id,
                            data = { text = "called " .. PERSON.name .. " on " .. PERSON.phone } })
  L.ok(url, "ApplyManualCredit", { customer_id = PERSON.customer_id, amount_cents = 333,
                                   reason = "refund to " .. PERSON.iban })
  local ledger_before = ledger(PERSON.customer_id)

  it("finds the personal data in many places before (the search works)", function()
    local found = where_found(personal(PERSON))
    for _, col in ipairs({ "lifecycle.customers.name", "lifecycle.history.after",
                           "lifecycle.tasks.data", "lifecycle.credits.reason",
                           "spine.workflows.input", "spine.workflows.result",
                           "spine.workflows.attributes" }) do
      assert.matches(col, found, 1, true)
    end
  end)

  it("leaves no personal field of the customer readable anywhere", function()
    local r = L.ok(url, "ForgetCustomer", { customer_id = PERSON.customer_id,
                                            reason = "GDPR request 2026-11" }, "ops:dpo")
    assert.are.equal(PERSON.customer_id, r.customer_id)
    assert.is_string(r.forgotten_at)
    assert.are.equal("", where_found(personal(PERSON)))
  end)

  it("keeps the ledger and its totals", function()
    assert.are.equal(ledger_before, ledger(PERSON.customer_id))
    assert.are.equal("1583", T.sql(url, "SELECT sum(amount_cents) FROM lifecycle.credits" ..
                                        " WHERE customer_id = 'fg-1'"))
    assert.are.equal(1583, L.ok(url, "GetCustomer", { customer_id = "fg-1" }).balance_cents)
  end)

  it("leaves other customers alone", function()
    local found = where_found(personal(OTHER))
    assert.matches("lifecycle.customers.name", found, 1, true)
    assert.matches("spine.workflows.input", found, 1, true)
    assert.are.equal(OTHER.name, L.ok(url, "GetCustomer", { customer_id = "fg-2" }).name)
  end)

  it("records that it happened, by whom and why", function()
    assert.are.equal("ops:dpo|GDPR request 2026-11", T.sql(url, "SELECT h.actor || '|' ||" ..
      " c.forgotten_reason FROM lifecycle.history h JOIN lifecycle.customers c USING" ..
      " (customer_id) WHERE h.intent = 'ForgetCustomer'"))
    assert.are.equal("1", T.sql(url, "SELECT count(*) FROM lifecycle.outbox" ..
                                     " WHERE event_type = 'CustomerForgotten'"))
  end)

  it("answers the same again, and refuses new business for the forgotten customer", function()
    local first = T.sql(url, "SELECT forgotten_at FROM lifecycle.customers WHERE customer_id = 'fg-1'")
    local again = L.ok(url, "ForgetCustomer", { customer_id = "fg-1", reason = "again" })
    assert.are.equal("fg-1", again.customer_id)
    assert.are.equal(first, T.sql(url, "SELECT forgotten_at FROM lifecycle.customers" ..
                                       " WHERE customer_id = 'fg-1'"))
    L.rejects(url, "ApplyManualCredit", { customer_id = "fg-1", amount_cents = 1, reason = "r" },
              "invalid_transition", "customer_id")
    L.rejects(url, "RegisterCustomer", { customer_id = "fg-1", name = PERSON.name,
                                         email = PERSON.email }, "conflict", "customer_id")
    L.rejects(url, "ForgetCustomer", { customer_id = "nobody", reason = "r" }, "not_found",
              "customer_id")
  end)
end)
