-- Workflows under `spine serve` racing to change one contract (and one customer's ledger):
-- exactly the allowed ones win, the others are rejected, no update is lost, and the history
-- matches the state.
local T = require("spine_test")
local L = require("lifecycle_test")

local TERMINATIONS, SWITCHES, CREDITS = 40, 10, 30

describe("racing intents under spine serve", function()
  it("lets exactly the allowed ones win and keeps history, outbox and ledger consistent", function()
    local url = T.newdb("spec_intents_race")
    local ids = L.active_contract(url, "race") -- contract race-k, active, version 3
    local code, first = T.spine_json(url, { "start", "tests/playbooks/contract_race.lua",
      "--input", T.json.encode({ action = "RequestTermination",
                                 args = { contract_id = ids.contract, reason = "r1" } }) })
    assert.are.equal(0, code)
    T.sql(url, ([[INSERT INTO spine.workflows (id, process, playbook, version, status, input,
      trace_id, wake_at)
      SELECT 'race-' || g, w.process, w.playbook, w.version, 'pending',
        CASE WHEN g <= %d THEN jsonb_build_object('action', 'RequestTermination',
               'args', jsonb_build_object('contract_id', 'race-k', 'reason', 'r' || g))
             WHEN g <= %d THEN jsonb_build_object('action', 'RequestSwitch',
               'args', jsonb_build_object('contract_id', 'race-k', 'tariff', 'saver',
                                          'expected_version', 3))
             ELSE jsonb_build_object('action', 'ApplyManualCredit',
               'args', jsonb_build_object('customer_id', 'race-cu', 'amount_cents', 100,
                                          'reason', 'race')) END,
        md5(g::text), now()
      FROM generate_series(2, %d) g, spine.workflows w WHERE w.id = '%s']]):format(
      TERMINATIONS, TERMINATIONS + SWITCHES, TERMINATIONS + SWITCHES + CREDITS, first.id))
    T.sql(url, "NOTIFY spine, 'w'")
    local total = TERMINATIONS + SWITCHES + CREDITS
    local srv = T.serve(url)
    T.wait_until(function()
      return tonumber(T.sql(url, "SELECT count(*) FROM spine.workflows WHERE status IN" ..
        " ('completed', 'failed', 'stuck', 'compensated', 'cancelled')")) == total
    end, 120, "all racing workflows to end")
    T.kill(srv, "TERM")
    assert.are.equal(tostring(total), T.sql(url, "SELECT count(*) FROM spine.workflows" ..
                                                 " WHERE status = 'completed'"))

    -- Outcomes per action: winners, and the codes of the losers.
    local rows = T.sql(url, "SELECT input->>'action' || '|' || (result->>'won') || '|' ||" ..
      " coalesce(result->>'kind', '') || '|' || coalesce(result->>'code', '')" ..
      " FROM spine.workflows ORDER BY id")
    local won, lost = {}, {}
    for line in rows:gmatch("[^\n]+") do
      local action, w, kind, c = line:match("^(.-)|(.-)|(.-)|(.-)$")
      if w == "true" then
        won[action] = (won[action] or 0) + 1
      else
        assert.are.equal("rejected", kind)
        lost[action .. ":" .. c] = (lost[action .. ":" .. c] or 0) + 1
      end
    end
    local switch_won = won.RequestSwitch or 0
    assert.are.equal(1, won.RequestTermination)
    assert.is_true(switch_won <= 1)
    assert.are.equal(TERMINATIONS - 1, lost["RequestTermination:invalid_transition"])
    assert.are.equal(SWITCHES - switch_won, lost["RequestSwitch:conflict"])
    assert.are.equal(CREDITS, won.ApplyManualCredit)

    -- State, history and outbox agree: one row and one event per win, versions consecutive.
    local winners = 1 + switch_won
    assert.are.equal("termination_requested:" .. (3 + winners), L.state(url, ids.contract))
    local versions = { "1", "2", "3", "4" }
    if switch_won == 1 then versions[5] = "5" end
    assert.are.equal(table.concat(versions, ","), T.sql(url, "SELECT string_agg(after->>'version'," ..
      " ',' ORDER BY history_id) FROM lifecycle.history WHERE entity = 'contract'" ..
      " AND entity_id = 'race-k'"))
    assert.are.equal("t", T.sql(url, "SELECT (SELECT after FROM lifecycle.history" ..
      " WHERE entity = 'contract' AND entity_id = 'race-k' ORDER BY history_id DESC LIMIT 1)" ..
      " = lifecycle.contract_json(c) FROM lifecycle.contracts c WHERE contract_id = 'race-k'"))
    assert.are.equal("t", T.sql(url, "SELECT bool_and((before->>'version')::int + 1 =" ..
      " (after->>'version')::int) FROM lifecycle.history WHERE entity = 'contract'" ..
      " AND entity_id = 'race-k' AND before IS NOT NULL"))
    assert.are.equal(tostring(3 + winners), T.sql(url, "SELECT count(*) FROM lifecycle.outbox" ..
                                                       " WHERE ordering_key = 'race-k'"))
    assert.are.equal(tostring(winners), T.sql(url, "SELECT count(DISTINCT workflow_id) FROM" ..
      " lifecycle.history WHERE entity_id = 'race-k' AND workflow_id IS NOT NULL"))

    -- The ledger: no lost update, each running balance exactly once.
    assert.are.equal(CREDITS .. "|" .. CREDITS .. "|" .. (CREDITS * 100) .. "|" .. (CREDITS * 100),
      T.sql(url, "SELECT count(*) || '|' || count(DISTINCT balance_cents) || '|' ||" ..
                 " max(balance_cents) || '|' || sum(amount_cents) FROM lifecycle.credits" ..
                 " WHERE customer_id = 'race-cu'"))
  end)
end)
