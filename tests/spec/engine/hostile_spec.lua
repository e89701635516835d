-- Hostile playbooks under `spine serve` (issue 11 §4): each costs its own workflow, never the
-- worker. They run together with a well-behaved one in one serve process, whose /healthz keeps
-- answering and whose memory stays bounded.
local T = require("spine_test")

-- playbook (tests/playbooks/<name>.lua), the error kind and code it must end failed with
local hostile = {
  { "hostile_rep_empty", "limit", "instruction_budget" },
  { "hostile_rep_huge", "limit", "memory_limit" },
  { "hostile_move", "limit", "instruction_budget" },
  { "hostile_find", "limit", "instruction_budget" },
  { "hostile_match", "limit", "instruction_budget" },
  { "hostile_gmatch", "limit", "instruction_budget" },
  { "hostile_gsub", "limit", "instruction_budget" },
  { "hostile_len", "limit", "instruction_budget" },
  { "hostile_error", "business", "hostile_error" },
  { "hostile_error_late", "business", "late_hostile_error" },
  { "hostile_memory", "limit", "memory_limit" },
  { "hostile_collect", "limit", "memory_limit" },
}

local function start(url, name, input)
  local args = { "start", "tests/playbooks/" .. name .. ".lua" }
  if input then
    args[#args + 1] = "--input"
    args[#args + 1] = input
  end
  local code, started, err = T.spine_json(url, args)
  assert(code == 0 and started, "spine start " .. name .. ": " .. tostring(err))
  return started.id
end

local function show(url, id)
  local _, wf = T.spine_json(url, { "show", id })
  return wf
end

-- VmHWM (peak resident set) of a process, in MB.
local function peak_mb(pid)
  local kb = T.read("/proc/" .. pid .. "/status"):match("VmHWM:%s*(%d+)%s*kB")
  return assert(tonumber(kb), "no VmHWM for " .. pid) / 1024
end

describe("spine serve with hostile playbooks", function()
  it("fails each hostile workflow alone while a good one completes and /healthz answers", function()
    local url = T.newdb("spec_hostile")
    local srv = T.serve(url)
    local health = "http://127.0.0.1:" .. T.http_port(srv) .. "/healthz"
    local ids = {}
    for _, h in ipairs(hostile) do ids[h[1]] = start(url, h[1]) end
    local good = start(url, "churn", '{"steps": 20}') -- 400 MB of garbage in all

    -- Until every workflow has ended: the worker lives (the same process) and answers. A
    -- hostile resume may hold the loop for its whole instruction budget, over a second on a
    -- loaded machine: /healthz then says so (503, "degraded"), which is an answer too. How long
    -- the loop stalls is a figure for benchmarks, not a pass/fail line here.
    local polls = 0
    T.wait_until(function()
      local status, body = T.http("GET", health)
      local ok, h = pcall(T.json.decode, body)
      assert.is_true((status == 200 and ok and h.status == "ok") or
                     (status == 503 and ok and h.status == "degraded"),
                     "/healthz did not answer: " .. tostring(status) .. " " .. body)
      assert.is_number(h.worker, "/healthz without its worker: " .. body)
      assert.is_true(T.alive(srv), "spine serve died:\n" .. T.log_of(srv))
      polls = polls + 1
      return T.sql(url, "SELECT count(*) FROM spine.workflows WHERE status NOT IN " ..
                        "('failed', 'completed')") == "0"
    end, 300, "every workflow to end")
    assert.is_true(polls >= 1)

    for _, h in ipairs(hostile) do
      local wf = show(url, ids[h[1]])
      assert.are.equal("failed", wf.status, h[1])
      assert.are.equal(h[2], wf.error.kind, h[1] .. ": " .. T.json.encode(wf.error))
      assert.are.equal(h[3], wf.error.code, h[1] .. ": " .. T.json.encode(wf.error))
    end
    local mem = show(url, ids.hostile_memory).error
    assert.matches("hostile_memory%.lua:%d+: memory limit exceeded %(the workflow would hold " ..
                   "more than 64 MB%)", mem.message)
    assert.matches("instruction budget exceeded", show(url, ids.hostile_find).error.message)
    assert.is_table(show(url, ids.hostile_error_late).error.compensation_error)

    local wf = show(url, good)
    assert.are.equal("completed", wf.status)
    assert.are.equal(400001240, wf.result.bytes)

    -- Still the same process, still serving, and no Lua panic on its way.
    assert.is_true(T.alive(srv))
    assert.are.equal(tostring(srv.pid), T.sql(url, "SELECT string_agg(pid::text, ',') FROM " ..
                                                 "spine.workers"))
    -- A hostile resume may have stalled the loop within the last SPINE_LOOP_LAG_WINDOW (10 s):
    -- /healthz says degraded until that has passed, then healthy again, by itself.
    T.wait_until(function() return (T.http("GET", health)) == 200 end, 60,
                 "/healthz to answer 200 once the stall is out of its window")
    assert.is_nil(T.log_of(srv):find("PANIC", 1, true))
    -- Its peak memory: the two workflows that hold much (hostile_memory and churn) hold at most
    -- 64 MB each, garbage included; the rest hold next to nothing; the process itself (Lua
    -- state, libpq, HTTP server, allocator slack) well under 100 MB. Unbounded, hostile_memory
    -- alone would have kept 600 MB.
    local peak = peak_mb(srv.pid)
    assert.is_true(peak < 256, ("serve's peak RSS was %.0f MB"):format(peak))
    T.kill(srv, "TERM")
  end)
end)
