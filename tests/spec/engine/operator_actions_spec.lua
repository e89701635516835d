-- The operator actions are SQL functions (runtime/sql/0010_operator_actions.sql) that the CLI
-- calls and that psql or the HTTP API may call as the role Spine works as: called directly they
-- change the rows, wake the workers and refuse exactly as `spine cancel|retry|skip` do.
local T = require("spine_test")

-- Runs one statement in psql as the spec's role (spine, not a superuser), the SQLSTATE shown;
-- returns exit code, output, stderr.
local function psql(url, query)
  return T.sh("psql " .. T.q(url) .. " -qAtX -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -c " ..
              T.q(query))
end

local function show(url, id)
  local _, wf = T.spine_json(url, { "show", id })
  return wf
end

describe("operator actions in SQL", function()
  it("cancels a waiting workflow from psql: its worker compensates and it ends cancelled",
     function()
    local url = T.newdb("spec_ops_cancel")
    assert.are.equal("f", T.sql(url, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"))
    local srv = T.serve(url)
    local _, started = T.spine_json(url, { "start", "tests/playbooks/cancellable.lua" })
    T.wait_until(function()
      local w = show(url, started.id)
      return w and w.status == "waiting"
    end, 30, "the workflow to wait")
    local answer = T.json.decode(T.sql(url, ("SELECT spine.cancel_workflow('%s', 'http alice')")
                                            :format(started.id)))
    local wf = T.wait_until(function()
      local w = show(url, started.id)
      return w and w.status == "cancelled" and w
    end, 30, "the workflow to end cancelled")
    T.kill(srv, "TERM")
    assert.are.same({ id = started.id, status = "waiting" }, answer)
    assert.are.equal("cancelled", wf.error.kind)
    assert.are.equal("1,-1", T.sql(url, "SELECT string_agg(n::text, ',' ORDER BY seq) FROM " ..
                                        "spine.bench_effects"))
  end)

  it("refuses what the CLI refuses with its message, SPIT0 or SPNF0, changing nothing",
     function()
    local url = T.newdb("spec_ops_refuse")
    local _, done = T.spine_json(url, { "run", "tests/playbooks/saga.lua", "--clock", "virtual",
                                        "--input", '{"fail": false}' })
    assert.are.equal("completed", done.status)
    local before = T.sql(url, "SELECT updated_at FROM spine.workflows WHERE id = '" .. done.id ..
                              "'")
    for _, case in ipairs({
      { sql = "SELECT spine.cancel_workflow('%s')", cli = { "cancel", done.id }, state = "SPIT0",
        message = "cannot cancel workflow " .. done.id .. ": it is completed" },
      { sql = "SELECT spine.skip_step('%s', '{}')", cli = { "skip", done.id }, state = "SPIT0",
        message = "cannot skip a step of workflow " .. done.id .. ": it is completed, not paused" },
      { sql = "SELECT spine.retry_workflow('no-such-%s')", cli = { "retry", "no-such-" .. done.id },
        state = "SPNF0", message = "no workflow no-such-" .. done.id },
    }) do
      local code, _, err = psql(url, case.sql:format(done.id))
      local ccode, obj = T.spine_json(url, case.cli)
      assert.are_not.equal(0, code, case.sql)
      assert.truthy(err:find("ERROR:  " .. case.state .. ": " .. case.message .. "\n", 1, true),
                    err)
      assert.are.equal(1, ccode)
      assert.are.equal(case.message, obj.error.message)
      assert.are.equal("id", obj.error.field)
    end
    assert.are.equal(before, T.sql(url, "SELECT updated_at FROM spine.workflows WHERE id = '" ..
                                        done.id .. "'"))
  end)

  it("retries a failed workflow from psql from its failed step, with a fresh attempt", function()
    local url = T.newdb("spec_ops_retry")
    local _, failed = T.spine_json(url, { "run", "tests/playbooks/bad_runtime.lua", "--clock",
                                          "virtual" })
    assert.are.equal("failed", failed.status)
    local answer = T.json.decode(T.sql(url, ("SELECT spine.retry_workflow('%s', 'http alice')")
                                            :format(failed.id)))
    local wf = show(url, failed.id)
    assert.are.same({ id = failed.id, status = "running" }, answer)
    assert.are.equal("running", wf.status)
    assert.are.equal(2, wf.attempt)
    assert.are.equal(T.json.null, wf.error)
    local kept = 0 -- the steps before the failed one stay; it and those after it go
    while failed.steps[kept + 1] and failed.steps[kept + 1].status ~= "failed" do
      kept = kept + 1
    end
    assert.is_true(kept < #failed.steps, "the failed run has no failed step")
    assert.are.equal(kept, #wf.steps)
    assert.are.equal("0", T.sql(url, "SELECT count(*) FROM spine.workflows WHERE owner IS NOT" ..
                                     " NULL OR wake_at IS NULL"))
  end)

  it("starts a workflow once per idempotency key through spine.start_workflow", function()
    local url = T.newdb("spec_ops_start")
    assert.are.equal(0, (T.spine(url, { "db", "migrate" })))
    local source = "return { name = 'tiny', run = function(ctx, input) return input end }"
    local function start(id)
      return T.sql(url, ("SELECT spine.start_workflow('%s', 'tiny', 'tiny', 'hash-tiny', '{}'," ..
        " 'trace-1', idempotency_key => 'order-9', path => 'tiny.lua', source => '%s')")
        :format(id, (source:gsub("'", "''"))))
    end
    assert.are.equal("wf-a", start("wf-a"))
    assert.are.equal("wf-a", start("wf-b"))
    assert.are.equal("wf-a|pending|t|tiny", T.sql(url, "SELECT w.id, w.status, w.wake_at IS NOT" ..
      " NULL, v.name FROM spine.workflows w JOIN spine.playbook_versions v ON v.hash = w.version"))
  end)
end)
