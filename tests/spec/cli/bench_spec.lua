-- `spine bench`: the hot-key figures come as JSON lines beside intent_steps_per_s, and a phase
-- ends at its limit however slow the engine is. Figures are reported, never asserted.
local T = require("spine_test")

local function lines(out)
  local by = {}
  for line in out:gmatch("[^\n]+") do
    local ok, obj = pcall(T.json.decode, line)
    if ok and type(obj) == "table" and obj.metric then by[obj.metric] = obj end
  end
  return by
end

describe("spine bench", function()
  it("prints intent, real and hot intent steps/s and the deadlocks, each as a spine JSON line",
     function()
    local url = T.newdb("spec_bench_hot")
    local code, out, err = T.spine(url, { "bench", "--quick", "--json", "--only",
                                          "real_intents,hot_intents", "--phase-limit", "2" })
    assert.are.equal(0, code, err)
    local by = lines(out)
    for _, m in ipairs({ "intent_steps_per_s", "real_intent_steps_per_s", "hot_intent_steps_per_s",
                         "deadlocks" }) do
      assert.is_table(by[m], "no line for " .. m .. " in: " .. out)
      assert.are.equal("spine", by[m].system)
      assert.is_number(by[m].value)
    end
    assert.is_nil(by.steps_per_s) -- --only names whole figures
    local hot = by.hot_intent_steps_per_s.params
    assert.are.equal(5, hot.customers)
    assert.are.equal(100, hot.workflows)
    assert.is_true(hot.quick)
    assert.is_boolean(hot.timed_out)
    -- past the limit the phase stops waiting: its elapsed time is bounded by it (and a margin)
    assert.is_true(hot.elapsed_s < 2 + 5, "elapsed " .. hot.elapsed_s)
    assert.are.equal(100, by.real_intent_steps_per_s.params.customers)
    assert.are.equal("real_intents,hot_intents", by.deadlocks.params.phases)
    assert.are.equal("1", by.deadlocks.unit)
    -- the bench's events are settled: no relay delivers them later
    assert.are.equal("0", T.sql(url, "SELECT count(*) FROM spine.outbox_deliveries"))
    assert.are.equal("0", T.sql(url, "SELECT count(*) FROM spine.workflows"))
  end)

  it("brings its own intent and table to a database the product's spine migrated", function()
    local url = T.newdb("spec_bench_own")
    assert.are.equal(0, (T.spine(url, { "db", "migrate" }, nil, T.product_bin)))
    assert.are.equal("t", T.sql(url, "SELECT to_regclass('spine.bench_effects') IS NULL"))
    local code, out, err = T.spine(url, { "bench", "--quick", "--json", "--only", "intents" }, nil,
                                   T.product_bin)
    assert.are.equal(0, code, err)
    assert.is_table(lines(out).intent_steps_per_s, out)
    assert.are.equal("f", T.sql(url, "SELECT to_regclass('spine.bench_effects') IS NULL"))
  end)

  it("runs each repetition for --duration after a warm-up, and says so with its spread", function()
    local url = T.newdb("spec_bench_duration")
    local code, out, err = T.spine(url, { "bench", "--quick", "--json", "--only", "steps,latency",
                                          "--duration", "300ms", "--pool", "2" })
    assert.are.equal(0, code, err)
    local by = lines(out)
    local p = by.steps_per_s.params
    assert.are.equal(0.3, p.duration_s)
    assert.are.equal(2, p.pool) -- --pool: the engine's connections
    assert.are.equal(0.075, p.warmup_s)
    assert.are.equal(1, p.reps)
    assert.are.equal(1, #p.rates)
    assert.are.equal("median", p.value)
    assert.are.equal(0, p.spread) -- one repetition
    -- the value is the repetition's rate, and a repetition is whole batches of 200
    assert.is_true(math.abs(by.steps_per_s.value - p.rates[1]) < 0.1)
    assert.are.equal(0, p.workflows[1] % 200)
    local l = by.latency_10step_p50_ms.params
    assert.is_true(l.duration_s >= 0.3, "latency ran " .. l.duration_s .. " s")
    assert.is_true(l.workflows >= 50)
    local bad, _, berr = T.spine(url, { "bench", "--duration", "soon" })
    assert.are.equal(2, bad)
    assert.truthy(berr:find("--duration", 1, true), berr)
    bad, _, berr = T.spine(url, { "bench", "--pool", "0" })
    assert.are.equal(2, bad)
    assert.truthy(berr:find("--pool", 1, true), berr)
  end)

  it("refuses an unknown figure in --only with a usage error naming it", function()
    local url = T.newdb("spec_bench_only")
    local code, _, err = T.spine(url, { "bench", "--only", "intents,hot_keys" })
    assert.are.equal(2, code)
    assert.truthy(err:find("hot_keys", 1, true), err)
  end)
end)
