-- The test kit itself (spine.testing): a real `spine serve` on a manual clock, a real
-- PostgreSQL, simulated providers. Days pass in one call; nothing waits for them.
local S = require("spine.testing")
local T = require("spine_test")

local DEADLINE = "tests/playbooks/deadline.lua"
local SWITCH = "tests/playbooks/provider_switch.lua"

local function millis()
  local p = io.popen("date +%s%3N")
  local v = tonumber(p:read("l"))
  p:close()
  return v
end

describe("spine.testing", function()
  local env
  setup(function()
    env = S.new({ now = "2026-03-02T09:00:00Z" })
  end)
  teardown(function()
    if env then env:close() end
  end)
  before_each(function()
    env:reset_providers()
  end)

  it("starts the clock where it is told and keeps it still", function()
    local start = env:now()
    assert.are.equal(os.time({ year = 2026, month = 3, day = 2, hour = 9 }) -
                     os.time({ year = 1970, month = 1, day = 1, hour = 0 }), start)
    env:settle()
    assert.are.equal(start, env:now())
  end)

  it("fires a 14-day timeout after advance('14d') and not after advance('13d')", function()
    local case = env:start(DEADLINE, {})
    assert.are.equal("waiting", case:state())
    env:advance("13d")
    assert.are.equal("waiting", case:status())
    local t0 = millis()
    env:advance("1d")
    local spent = millis() - t0
    assert.are.equal("completed", case:status())
    assert.are.equal("timed_out", case:state())
    assert.are.equal(14 * 86400, case:result().waited)
    assert.is_true(spent < 10000, "a day of virtual time took " .. spent .. " ms")
  end)

  it("resumes a waiting case with a signal, on the clock at that time", function()
    local case = env:start(DEADLINE, { signal = "approved" })
    env:advance("2h")
    case:signal("approved", { by = "ops:jane" })
    assert.are.equal("signalled", case:state())
    assert.are.same({ got = { by = "ops:jane" }, waited = 7200 }, case:result())
  end)

  it("writes the intents' history at the manual clock's time", function()
    local case = env:start(DEADLINE, { timeout = "3d", customer_id = "cust-kit-1" })
    local started = env:now()
    env:advance("3d")
    local rows = case:intents()
    assert.are.equal(1, #rows)
    assert.are.equal("RegisterCustomer", rows[1].intent)
    assert.are.equal(started + 3 * 86400, rows[1].at_epoch)
    assert.are.same({ "RegisterCustomer" }, case:intent_names())
    local steps = case:steps()
    assert.are.equal("wait", steps[2].kind)
    assert.are.equal("timed_out", case:state())
  end)

  it("resolves a task as an operator: ResolveTask signals the case that opened it", function()
    env:intent("RegisterCustomer", { customer_id = "cust-kit-task", name = "Ada Example",
                                     email = "ada@example.org" })
    local case = env:start("tests/playbooks/task_waiter.lua", { customer_id = "cust-kit-task" })
    assert.are.equal("waiting_for_task", case:state())
    local task = env:tasks("call_back")[1]
    assert.are.equal("cust-kit-task", task.subject)
    assert.are.same({ task_id = task.task_id, status = "resolved", outcome = "done" },
                    env:resolve_task(task.task_id, "done", { note = "called" }, "ops:olga"))
    assert.are.equal("completed", case:status())
    assert.are.same({ task_id = task.task_id, kind = "call_back", subject = "cust-kit-task",
                      outcome = "done", data = { note = "called" }, resolved_by = "ops:olga" },
                    case:result())
  end)

  it("runs SQL statements that are no query with env:exec", function()
    env:exec("CREATE TABLE kit_exec (n int); INSERT INTO kit_exec VALUES (1), (2)")
    assert.are.equal(2, env:sql1("SELECT count(*) FROM kit_exec"))
  end)

  it("retries a failing provider on the clock: not before half the backoff, by all of it",
     function()
    env:provider("gridco"):fail_next(2, 503)
    local before = env:provider("gridco"):requests()
    local case = env:start(SWITCH, { contract_id = "K-RETRY",
                                     opts = { retry = { attempts = 4, backoff = "1h",
                                                        max = "6h" } } })
    assert.are.equal("waiting", case:status())
    assert.are.equal(1, env:provider("gridco"):requests() - before)
    env:advance("29m") -- the backoff of the first retry is 30 to 60 minutes
    assert.are.equal(1, env:provider("gridco"):requests() - before)
    env:advance("31m")
    assert.are.equal(2, env:provider("gridco"):requests() - before)
    env:advance("2h") -- the second backoff: 1 to 2 hours
    assert.are.equal("completed", case:status())
    assert.are.equal(3, env:provider("gridco"):requests() - before)
    local steps = case:steps()
    assert.are.equal("provider", steps[1].kind)
    assert.are.equal(3, steps[1].attempt)
  end)

  it("answers as scripted: a refusal reaches the playbook as rejected", function()
    env:provider("gridco"):answer({ status = 422, json = { error = "unknown meter point" } })
    local case = env:start(SWITCH, { contract_id = "K-REFUSED" })
    assert.are.equal("failed", case:status())
    assert.are.equal("rejected", case:error().kind)
  end)

  it("keeps a case's calls failing through an outage until it ends", function()
    local gridco = env:provider("gridco"):outage(true)
    local case = env:start(SWITCH, { contract_id = "K-OUTAGE",
                                     opts = { retry = { attempts = 20, backoff = "10m",
                                                        max = "10m" } } })
    env:advance("30m") -- 3 to 6 attempts, 5 to 10 minutes apart
    assert.are.equal("waiting", case:status())
    gridco:outage(false)
    env:advance("10m")
    assert.are.equal("completed", case:status())
    assert.are.equal("K-OUTAGE", T.json.decode(gridco:effects().effects[#gridco:effects().effects]
                                               .request).contract)
  end)

  it("resumes a case with a signed webhook from the provider", function()
    local case = env:start(SWITCH, { contract_id = "K-HOOK", wait = "provider.switch_confirmed" })
    assert.are.equal("awaiting_confirmation", case:state())
    local key = case:steps()[1].result and (case.id .. ":1")
    local status, answer = env:webhook("gridco", { event = "switch.confirmed", id = "sw-77",
                                                   status = "confirmed", idempotency_key = key })
    assert.are.equal(202, status)
    assert.are.same({ case.id }, answer.signalled)
    assert.are.equal("completed", case:status())
    assert.are.equal("sw-77", case:result().confirmation.reference)
  end)

  it("refuses a webhook with a wrong signature, changing nothing", function()
    local case = env:start(SWITCH, { contract_id = "K-BADSIG", wait = "provider.switch_confirmed" })
    local status = env:webhook("gridco", { event = "switch.confirmed", id = "sw-1",
                                           idempotency_key = case.id .. ":1" },
                               { secret = "not-the-secret" })
    assert.are.equal(401, status)
    assert.are.equal("waiting", case:status())
  end)

  it("keeps timers across a crash of spine serve: they fire on the next advance", function()
    local case = env:start(DEADLINE, { timeout = "2d" })
    env:restart("KILL")
    env:advance("1d")
    assert.are.equal("waiting", case:status())
    env:advance("1d")
    assert.are.equal("timed_out", case:state())
    assert.is_true((case:replays()))
  end)
end)

describe("spine.testing with evictions", function()
  it("wakes a case that left memory when its deadline comes on the clock", function()
    local env = S.new({ env = { SPINE_EVICT_AFTER_MS = "1", SPINE_LEASE_MS = "1000" } })
    local ok, err = pcall(function()
      local case = env:start(DEADLINE, { timeout = "2d" })
      T.wait_until(function() -- the heartbeat (every 200 ms here) evicts it
        return env:sql1("SELECT owner IS NULL FROM spine.workflows WHERE id = " ..
                        S.literal(case.id))
      end, 30, "the case to leave memory")
      env:advance("1d")
      assert.are.equal("waiting", case:status())
      env:advance("1d")
      assert.are.equal("timed_out", case:state())
      assert.are.equal(2 * 86400, case:result().waited)
    end)
    env:close()
    assert(ok, err)
  end)

  it("leaves no process running once closed", function()
    local env = S.new()
    local pids = { env.serve_pid }
    for _, sim in pairs(env.sims) do pids[#pids + 1] = sim.pid end
    env:close()
    for _, pid in ipairs(pids) do
      local f = io.open("/proc/" .. pid .. "/stat")
      local state = f and f:read("a"):match("%) (%a)")
      if f then f:close() end
      assert.is_true(state == nil or state == "Z", "process " .. pid .. " still runs")
    end
  end)
end)

describe("the clock of spine serve", function()
  it("refuses to move a real clock, saying how to get a manual one", function()
    local url = T.newdb("spec_testing_real_clock")
    local srv = T.serve(url)
    local base = "http://127.0.0.1:" .. T.http_port(srv)
    local status, body = T.http("POST", base .. "/v1/clock/advance", { body = '{"by":"1d"}' })
    local got, clock = T.http("GET", base .. "/v1/clock")
    T.kill(srv)
    assert.are.equal(409, status)
    assert.matches("--clock manual", body, 1, true)
    assert.are.equal(200, got)
    assert.are.equal("real", T.json.decode(clock).clock)
  end)

  it("refuses a clock that would go back, naming the time it is", function()
    local env = S.new({ now = "2026-05-01T00:00:00Z" })
    local status, body = T.http("POST", env.base .. "/v1/clock/advance",
                                { body = '{"to":"2026-04-01T00:00:00Z"}' })
    local bad = T.http("POST", env.base .. "/v1/clock/advance", { body = '{"by":"soon"}' })
    env:close()
    assert.are.equal(400, status)
    assert.matches("2026-05-01T00:00:00.000Z", body, 1, true)
    assert.are.equal(400, bad)
  end)
end)
