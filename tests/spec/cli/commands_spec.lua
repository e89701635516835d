-- The operator's CLI: help everywhere, machine output with the fields of SPEC §8, exit codes
-- 0 / 1 (rejected) / 2 (usage), and the operator actions on real workflows.
local T = require("spine_test")

local commands = { "serve", "run", "start", "signal", "show", "list", "cancel", "retry", "replay",
                   "explain", "manifests", "experiments", "intent", "intents", "simulate", "db",
                   "bench" }

describe("spine CLI", function()
  local url
  setup(function() url = T.newdb("spec_cli") end)

  it("lists every command in spine --help and answers --help for each", function()
    local code, out = T.spine(url, { "--help" })
    assert.are.equal(0, code)
    for _, c in ipairs(commands) do
      assert.truthy(out:find("\n  " .. c .. " ", 1, true), "spine --help lacks " .. c)
      local hc, hout = T.spine(url, { c, "--help" })
      assert.are.equal(0, hc, c .. " --help")
      assert.truthy(hout:find("usage: spine " .. c, 1, true), c .. " --help: " .. hout)
    end
  end)

  it("runs the tools from its own directory, and names the file when one is missing", function()
    local _, dir = T.sh("mktemp -d")
    dir = dir:gsub("%s+$", "")
    local copy = dir .. "/spine"
    assert.are.equal(0, (T.sh("cp " .. T.q(T.product_bin) .. " " .. T.q(copy))))
    local code, _, err = T.sh(T.q(copy) .. " simulate --help")
    T.sh("rm -rf " .. T.q(dir))
    assert.are.equal(1, code)
    assert.truthy(err:find(dir .. "/spine-simulate", 1, true), err)
    code = T.sh(T.q(T.product_bin) .. " simulate --help")
    assert.are.equal(0, code)
  end)

  it("exits 2 on a usage error, naming the option or command", function()
    local code, _, err = T.spine(url, { "show", "--frobnicate" })
    assert.are.equal(2, code)
    assert.truthy(err:find("frobnicate", 1, true), err)
    code, _, err = T.spine(url, { "launch-rockets" })
    assert.are.equal(2, code)
    assert.truthy(err:find("launch-rockets", 1, true), err)
    code, _, err = T.spine(url, { "show" })
    assert.are.equal(2, code)
    assert.truthy(err:find("usage: spine show", 1, true), err)
  end)

  it("answers an unknown workflow with exit 1 and a not_found error object", function()
    for _, args in ipairs({ { "show", "no-such-id" }, { "signal", "no-such-id", "go" },
                            { "cancel", "no-such-id" }, { "retry", "no-such-id" } }) do
      local code, obj, err = T.spine_json(url, args)
      assert.are.equal(1, code, args[1] .. ": " .. err)
      assert.are.equal("not_found", obj.error.kind, args[1])
      assert.is_string(obj.error.message)
    end
  end)

  it("refuses bad JSON input naming the option, and stores nothing", function()
    local before = T.sql(url, "SELECT count(*) FROM spine.workflows")
    local code, obj = T.spine_json(url, { "start", "tests/playbooks/waiter.lua", "--input",
                                          '{"broken": ' })
    assert.are.equal(1, code)
    assert.are.equal("invalid_argument", obj.error.kind)
    assert.are.equal("input", obj.error.field)
    assert.are.equal(before, T.sql(url, "SELECT count(*) FROM spine.workflows"))
  end)

  it("starts a case once per idempotency key", function()
    local c1, a = T.spine_json(url, { "start", "tests/playbooks/waiter.lua",
                                      "--idempotency-key", "order-77" })
    local c2, b = T.spine_json(url, { "start", "tests/playbooks/waiter.lua",
                                      "--idempotency-key", "order-77" })
    assert.are.equal(0, c1)
    assert.are.equal(0, c2)
    assert.are.equal(a.id, b.id)
    assert.are.equal("1", T.sql(url, "SELECT count(*) FROM spine.workflows WHERE id = '" ..
                                     a.id .. "'"))
    for _, f in ipairs({ "id", "status", "process", "playbook", "version", "created_at" }) do
      assert.is_not_nil(a[f], "start --json lacks " .. f)
    end
  end)

  it("pages through list with a cursor, each workflow exactly once", function()
    local db = T.newdb("spec_cli_list")
    local made = {}
    for i = 1, 7 do
      local code, wf = T.spine_json(db, { "run", "tests/playbooks/saga.lua", "--clock", "virtual",
                                          "--input", '{"fail": false}' })
      assert.are.equal(0, code)
      made[wf.id] = true
    end
    local seen, pages, cursor = {}, 0, nil
    repeat
      local args = { "list", "--process", "saga", "--status", "completed", "--limit", "3" }
      if cursor then args[#args + 1] = "--cursor"; args[#args + 1] = cursor end
      local code, page = T.spine_json(db, args)
      assert.are.equal(0, code)
      pages = pages + 1
      assert.is_true(#page.workflows <= 3)
      for _, wf in ipairs(page.workflows) do
        assert.is_nil(seen[wf.id], "listed twice: " .. wf.id)
        assert.are.equal("completed", wf.status)
        seen[wf.id] = true
      end
      cursor = page.next_cursor
    until cursor == nil or cursor == T.json.null
    assert.are.same(made, seen)
    assert.are.equal(3, pages)
  end)

  it("refuses to cancel a workflow that has ended", function()
    local _, wf = T.spine_json(url, { "run", "tests/playbooks/saga.lua", "--clock", "virtual",
                                      "--input", '{"fail": false}' })
    local code, obj = T.spine_json(url, { "cancel", wf.id })
    assert.are.equal(1, code)
    assert.are.equal("invalid_transition", obj.error.kind)
    local _, shown = T.spine_json(url, { "show", wf.id })
    assert.are.equal("completed", shown.status)
  end)

  it("retries a failed workflow: a worker runs it again from the failed step", function()
    local db = T.newdb("spec_cli_retry")
    local code, wf = T.spine_json(db, { "run", "tests/playbooks/saga.lua", "--clock", "virtual",
                                        "--input", '{"fail": true}' })
    assert.are.equal(1, code)
    assert.are.equal("compensated", wf.status)
    code = T.spine_json(db, { "retry", wf.id })
    assert.are.equal(1, code) -- its compensations ran: it cannot run again
    code, wf = T.spine_json(db, { "run", "tests/playbooks/bad_runtime.lua", "--clock", "virtual" })
    assert.are.equal(1, code)
    assert.are.equal("failed", wf.status)
    local steps_before = #wf.steps
    local rc, retried = T.spine_json(db, { "retry", wf.id })
    assert.are.equal(0, rc)
    assert.are.equal(wf.id, retried.id)
    local _, shown = T.spine_json(db, { "show", wf.id })
    assert.are.equal(T.json.null, shown.error)
    assert.are_not.equal("failed", shown.status)
    local srv = T.serve(db)
    local ended = T.wait_until(function()
      local _, w = T.spine_json(db, { "show", wf.id })
      return w and w.status == "failed" and w
    end, 30, "the retried workflow to run again")
    T.kill(srv, "TERM")
    assert.are.equal(2, ended.attempt)
    assert.are.equal(steps_before, #ended.steps)
    assert.truthy(ended.error.message:find("bad_runtime.lua:6", 1, true))
  end)

  it("cancels in bulk with --where: a dry run first, then only the matching workflows", function()
    local db = T.newdb("spec_cli_bulk")
    T.start_many(db, "tests/playbooks/waiter.lua", 5)
    local _, other = T.spine_json(db, { "start", "tests/playbooks/saga.lua" })
    local code, dry = T.spine_json(db, { "cancel", "--where", "process=waiter status=pending" })
    assert.are.equal(0, code)
    assert.is_true(dry.dry_run)
    assert.are.equal(5, dry.matched)
    assert.are.equal("0", T.sql(db, "SELECT count(*) FROM spine.workflows WHERE cancel_requested"))
    local _, done = T.spine_json(db, { "cancel", "--where", "process=waiter status=pending", "--yes" })
    assert.is_false(done.dry_run)
    assert.are.equal(5, #done.workflows)
    assert.are.equal("5", T.sql(db, "SELECT count(*) FROM spine.workflows WHERE cancel_requested"
                                    .. " AND process = 'waiter'"))
    assert.are.equal("f", T.sql(db, "SELECT cancel_requested FROM spine.workflows WHERE id = '"
                                    .. other.id .. "'"))
    code = T.spine(db, { "cancel", "--where", "colour=red" })
    assert.are.equal(2, code)
    code = T.spine(db, { "cancel", "some-id", "--where", "status=pending" })
    assert.are.equal(2, code)
  end)
end)
