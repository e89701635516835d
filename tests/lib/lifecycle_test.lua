-- Helpers for the intent specs: apply intents through `spine intent`, snapshot the system of
-- record, and assert that a rejection changed nothing.
local T = require("spine_test")
local assert = require("luassert")

local L = {}

-- Applies an intent as an operator; returns exit code and the decoded --json object.
function L.apply(url, name, args, actor)
  return T.spine_json(url, { "intent", name, "--args", T.json.encode(args or {}),
                             "--actor", actor or "ops:spec" })
end

-- Applies an intent that must succeed; returns its result.
function L.ok(url, name, args, actor)
  local code, obj, err, out = L.apply(url, name, args, actor)
  assert(code == 0 and obj and obj.result,
         name .. " failed (exit " .. tostring(code) .. "): " .. tostring(out) .. tostring(err))
  return obj.result
end

local TABLES = { "providers", "directory", "customers", "addresses", "meter_points", "contracts",
                 "price_changes", "credits", "tasks", "history", "outbox" }

-- Every table's row count and every contract's state and version, as one string.
function L.snapshot(url)
  local parts = {}
  for _, t in ipairs(TABLES) do
    parts[#parts + 1] = ("'%s=' || (SELECT count(*) FROM lifecycle.%s)"):format(t, t)
  end
  parts[#parts + 1] = "coalesce((SELECT string_agg(contract_id || ':' || state || ':' ||" ..
                      " version, ',' ORDER BY contract_id) FROM lifecycle.contracts), '')"
  return T.sql(url, "SELECT " .. table.concat(parts, " || ' ' || "))
end

-- Applies an intent that must be rejected with `kind` (and `field`, if given) and must change
-- nothing; returns the error object.
function L.rejects(url, name, args, kind, field)
  local before = L.snapshot(url)
  local code, obj, err, out = L.apply(url, name, args)
  assert.are.equal(1, code, name .. " was not rejected: " .. tostring(out) .. tostring(err))
  assert.is_table(obj and obj.error, "no error object: " .. tostring(out))
  assert.are.equal(kind, obj.error.kind, obj.error.message)
  if field then assert.are.equal(field, obj.error.field, obj.error.message) end
  assert.are.equal(before, L.snapshot(url), name .. " changed the system of record")
  return obj.error
end

-- A provider, a customer with a meter point, and a draft contract; returns their ids.
function L.contract(url, p)
  L.ok(url, "RegisterProvider", { provider = "acme_energy", display_name = "ACME Energy" })
  L.ok(url, "RegisterProvider", { provider = "cheap_power" })
  L.ok(url, "RegisterCustomer", { customer_id = p .. "-cu", name = "Erika Mustermann",
                                   email = p .. "@example.org" })
  L.ok(url, "RegisterMeterPoint", { customer_id = p .. "-cu", meter_id = p .. "-meter",
                                     commodity = "electricity", meter_point_id = p .. "-mp" })
  L.ok(url, "CreateContract", { customer_id = p .. "-cu", provider = "acme_energy",
                                 tariff = "green", meter_point_id = p .. "-mp",
                                 contract_id = p .. "-k" })
  return { customer = p .. "-cu", contract = p .. "-k", meter_point = p .. "-mp" }
end

-- The same, activated (version 3).
function L.active_contract(url, p)
  local ids = L.contract(url, p)
  L.ok(url, "RequestActivation", { contract_id = ids.contract })
  L.ok(url, "ConfirmActivation", { contract_id = ids.contract, activation_date = "2026-12-01" })
  return ids
end

function L.state(url, contract_id)
  return T.sql(url, ("SELECT state || ':' || version FROM lifecycle.contracts" ..
                     " WHERE contract_id = '%s'"):format(contract_id))
end

return L
