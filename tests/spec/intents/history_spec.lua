-- The history is append-only in the database itself, and ctx.intent records who, from which
-- workflow and trace, in the same transaction as the step.
local T = require("spine_test")
local L = require("lifecycle_test")

local url = T.newdb("spec_intents_history")

local function psql_fails(sql)
  local code, _, err = T.sh("psql " .. T.q(url) .. " -qAtX -v ON_ERROR_STOP=1 -c " .. T.q(sql))
  return code ~= 0, err
end

describe("history", function()
  L.active_contract(url, "h1")
  local rows = T.sql(url, "SELECT count(*) FROM lifecycle.history")

  it("refuses a direct UPDATE", function()
    local failed, err = psql_fails("UPDATE lifecycle.history SET actor = 'mallory'")
    assert.is_true(failed)
    assert.matches("append-only", err, 1, true)
    assert.are.equal("0", T.sql(url, "SELECT count(*) FROM lifecycle.history WHERE actor = 'mallory'"))
  end)

  it("refuses a direct DELETE and TRUNCATE", function()
    assert.is_true((psql_fails("DELETE FROM lifecycle.history")))
    assert.is_true((psql_fails("TRUNCATE lifecycle.history")))
    assert.are.equal(rows, T.sql(url, "SELECT count(*) FROM lifecycle.history"))
  end)

  it("refuses an UPDATE even with the forgetting flag, unless that customer was forgotten", function()
    local failed = psql_fails("BEGIN; SELECT set_config('lifecycle.forgetting', 'h1-cu', true);" ..
                              " UPDATE lifecycle.history SET after = '{}'; COMMIT")
    assert.is_true(failed)
    assert.are.equal("0", T.sql(url, "SELECT count(*) FROM lifecycle.history WHERE after = '{}'"))
  end)
end)

describe("ctx.intent", function()
  it("returns result tables and raises catchable rejections with kind, code and field", function()
    local code, wf = T.spine_json(url, { "run", "tests/playbooks/intent_calls.lua", "--input",
                                         '{"customer_id":"pb-1"}' })
    assert.are.equal(0, code)
    assert.are.equal("completed", wf.status)
    local r = wf.result
    assert.are.equal("draft", r.contract.state)
    assert.are.equal(r.contract.contract_id, r.read.contract_id)
    assert.is_false(r.ok1)
    assert.are.equal("rejected", r.wrong_state.kind)
    assert.are.equal("invalid_transition", r.wrong_state.code)
    assert.is_false(r.ok2)
    assert.are.equal("invalid_argument", r.bad_arg.code)
    assert.are.equal("amount_cents", r.bad_arg.field)
    assert.are.equal("0", T.sql(url, "SELECT count(*) FROM lifecycle.credits"))
  end)

  it("records actor, workflow id, step and trace id in the history", function()
    local _, wf = T.spine_json(url, { "run", "tests/playbooks/intent_calls.lua", "--input",
                                      '{"customer_id":"pb-2"}' })
    assert.are.equal("completed", wf.status)
    local seqs = {}
    for _, s in ipairs(wf.steps) do
      if s.kind == "intent" and s.status == "completed" then seqs[s.name] = s.seq end
    end
    assert.are.equal(("workflow:%s|%s|%s|%d"):format(wf.id, wf.id, wf.trace_id,
                                                     seqs.RegisterCustomer),
      T.sql(url, "SELECT actor || '|' || workflow_id || '|' || trace_id || '|' || step_seq" ..
                 " FROM lifecycle.history WHERE entity = 'customer' AND entity_id = 'pb-2'"))
    assert.are.equal(wf.trace_id, T.sql(url, "SELECT trace_id FROM lifecycle.outbox" ..
                                             " WHERE ordering_key = 'pb-2'"))
  end)

  it("records a rejection as the step's outcome and writes nothing for it", function()
    local _, wf = T.spine_json(url, { "run", "tests/playbooks/intent_calls.lua", "--input",
                                      '{"customer_id":"pb-3"}' })
    local failed = {}
    for _, s in ipairs(wf.steps) do
      if s.status == "failed" then failed[#failed + 1] = s.name .. ":" .. s.error.code end
    end
    assert.are.same({ "ConfirmActivation:invalid_transition", "ApplyManualCredit:invalid_argument" },
                    failed)
    assert.are.equal("CreateContract", T.sql(url, "SELECT string_agg(intent, ',') FROM" ..
      " lifecycle.history WHERE workflow_id = '" .. wf.id .. "' AND entity = 'contract'"))
  end)
end)
