-- The catalog: `spine intents`, `spine intent` as a command, and docs/intents.md.
local T = require("spine_test")
local L = require("lifecycle_test")

local SPEC_INTENTS = { "RegisterCustomer", "RegisterMeterPoint", "CreateContract",
  "RequestActivation", "ConfirmActivation", "CancelActivation", "ReportPriceIncrease",
  "RequestSwitch", "ConfirmSwitch", "RequestTermination", "ConfirmTermination",
  "ApplyManualCredit", "CreateTask", "ResolveTask", "ForgetCustomer", "GetContract",
  "GetCustomer" }

describe("spine intents", function()
  it("lists every intent of SPEC §5 with a description and its arguments", function()
    local code, out = T.spine_json("unused", { "intents" }, nil, T.product_bin)
    assert.are.equal(0, code)
    local by_name = {}
    for _, i in ipairs(out.intents) do by_name[i.name] = i end
    for _, name in ipairs(SPEC_INTENTS) do
      local i = by_name[name]
      assert.is_table(i, name .. " is missing from the catalog")
      assert.is_true(#i.description > 20, name .. " has no real description")
      assert.is_true(#i.args > 0, name .. " lists no arguments")
    end
    local args = {}
    for _, a in ipairs(by_name.ConfirmActivation.args) do args[a.name] = a end
    assert.are.same({ name = "activation_date", type = "date", required = true },
                    args.activation_date)
    assert.are.same({ name = "provider_reference", type = "string", required = false },
                    args.provider_reference)
  end)

  it("keeps docs/intents.md equal to `spine intents --markdown`", function()
    local code, out = T.spine("unused", { "intents", "--markdown" }, nil, T.product_bin)
    assert.are.equal(0, code)
    local f = assert(io.open(T.src .. "/docs/intents.md", "rb"))
    local doc = f:read("a")
    f:close()
    assert.are.equal(out, doc,
                     "docs/intents.md is stale: run `build/spine intents --markdown > docs/intents.md`")
  end)

  it("leaves out BenchRecord, the bench's intent, and its table stays out of the database",
     function()
    local _, out = T.spine_json("unused", { "intents" }, nil, T.product_bin)
    for _, i in ipairs(out.intents) do assert.are_not.equal("BenchRecord", i.name) end
    local url = T.newdb("spec_catalog_product")
    assert.are.equal(0, (T.spine(url, { "db", "migrate" }, nil, T.product_bin)))
    assert.are.equal("t", T.sql(url, "SELECT to_regclass('spine.bench_effects') IS NULL"))
  end)

  it("explains itself with --help", function()
    local code, out = T.spine("unused", { "intent", "--help" })
    assert.are.equal(0, code)
    assert.matches("--actor WHO", out, 1, true)
    code, out = T.spine("unused", { "intents", "--help" })
    assert.are.equal(0, code)
    assert.matches("--markdown", out, 1, true)
  end)
end)

describe("spine intent", function()
  local url = T.newdb("spec_intent_cli")

  it("refuses to run without --actor (usage error, exit 2)", function()
    local code, _, err = T.spine(url, { "intent", "GetContract", "--args", '{"contract_id":"x"}' })
    assert.are.equal(2, code)
    assert.matches("--actor is required", err, 1, true)
  end)

  it("rejects an unknown intent name", function()
    local code, out = L.apply(url, "NoSuchIntent", {})
    assert.are.equal(1, code)
    assert.are.equal("unknown_intent", out.error.code)
  end)

  it("rejects --args that are not a JSON object, naming --args", function()
    local code, out = T.spine_json(url, { "intent", "GetContract", "--args", "[1,", "--actor", "x" })
    assert.are.equal(1, code)
    assert.are.equal("invalid_argument", out.error.kind)
    assert.are.equal("--args", out.error.field)
  end)

  it("records the operator as actor, with a trace id and no workflow", function()
    local code, out = L.apply(url, "RegisterCustomer", { customer_id = "cli-1", name = "Ann Op",
                                                        email = "ann@example.org" }, "ops:jane")
    assert.are.equal(0, code)
    assert.are.same({ customer_id = "cli-1" }, out.result)
    assert.are.equal("ops:jane|" .. out.trace_id .. "|true", T.sql(url,
      "SELECT actor || '|' || trace_id || '|' || (workflow_id IS NULL) FROM lifecycle.history" ..
      " WHERE entity_id = 'cli-1'"))
  end)

  it("prints the result alone without --json and exits 1 with the message on a rejection", function()
    local code, out = T.spine(url, { "intent", "GetCustomer", "--args", '{"customer_id":"cli-1"}',
                                     "--actor", "ops:jane" })
    assert.are.equal(0, code)
    assert.are.equal("cli-1", T.json.decode(out).customer_id)
    local err
    code, out, err = T.spine(url, { "intent", "GetCustomer", "--args", '{"customer_id":"nobody"}',
                                    "--actor", "ops:jane" })
    assert.are.equal(1, code)
    assert.matches("GetCustomer: customer_id: no customer nobody", err, 1, true)
  end)
end)
