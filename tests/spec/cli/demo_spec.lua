-- The README's first command (`make demo` runs scripts/demo): on a fresh SPINE_HOME it starts
-- the embedded PostgreSQL, the provider simulator and a worker, dispatches a batch of contract
-- activations across the A/B variants, watches them to the end and prints the experiment
-- report. Runs the script itself; the embedded cluster is stopped and removed afterwards.
local T = require("spine_test")

describe("scripts/demo", function()
  it("runs the platform end to end on its own database and prints the experiment report", function()
    local _, dir = T.sh("mktemp -d")
    dir = dir:gsub("%s+$", "")
    local home = dir .. "/home"
    local env = "env -u SPINE_DATABASE_URL SPINE_HOME=" .. T.q(home) .. " SPINE_DEMO_CASES=12 "
    local code, out, err = T.sh("cd " .. T.q(T.src) .. " && " .. env .. "bash scripts/demo " ..
                                T.q(T.bin))
    local _, status = T.sh(env .. T.q(T.bin) .. " db status")
    local stopped = T.sh(env .. T.q(T.bin) .. " db stop")
    -- the cluster's data may live beside its socket (root, a home out of postgres's reach)
    local datadir = status:match("\ndatadir:%s+(%S+)")
    os.execute("rm -rf " .. T.q(dir))
    if datadir and datadir:match("^/tmp/spine%-%x+/pgdata$") then
      os.execute("rm -rf " .. T.q(datadir:gsub("/pgdata$", "")))
    end
    assert.are.equal(0, code, "the demo failed:\n" .. out .. err)
    assert.are.equal(0, stopped)
    -- the virtual-clock case, the live view to its last frame, the report with both variants
    assert.matches("welcome_call.done", out, 1, true)
    assert.matches("0 under way, 12 in all", out, 1, true)
    assert.matches("contract_activation  experiment activation-polling-2026-03", out, 1, true)
    local control = out:match("\n  control +(%d+) +(%d+)")
    assert.is_truthy(control, "a control row in the report")
    local started, done = out:match("\n  control +(%d+) +(%d+)")
    assert.are.equal(started, done)
    assert.matches('"state": "active"', out, 1, true)
  end)
end)
