-- `spine new playbook|adapter NAME`: the scaffolds run as they are, their specs pass (run for
-- real with busted), the commands the guides show work, and nothing is ever overwritten.
local T = require("spine_test")

local BUSTED = (function()
  local p = io.popen("command -v busted")
  local path = p:read("l")
  p:close()
  return assert(path, "busted is not on the PATH")
end)()

local function tempdir()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. T.q(dir)))
  return dir
end

-- Runs a shell command in `dir` with the test's spine and database; returns code, out, err.
local function sh_in(dir, url, cmd)
  return T.sh("cd " .. T.q(dir) .. " && SPINE_BIN=" .. T.q(T.bin) .. " SPINE_DATABASE_URL=" ..
              T.q(url) .. " " .. cmd)
end

-- `spine ARGS` in `dir`.
local function spine_in(dir, url, args)
  local cmd = T.q(T.bin)
  for _, a in ipairs(args) do cmd = cmd .. " " .. T.q(a) end
  return sh_in(dir, url, cmd)
end

local function busted_in(dir, url, spec)
  return sh_in(dir, url, "lua5.4 " .. T.q(BUSTED) .. " " .. T.q(spec))
end

-- A project as a designer has it: Spine's .busted and tests/lib (spine.testing), and the
-- spine under test as build/spine.
local function project()
  local dir = tempdir()
  assert(os.execute("cp " .. T.q(T.src .. "/.busted") .. " " .. T.q(dir) .. " && mkdir -p " ..
                    T.q(dir .. "/tests") .. " " .. T.q(dir .. "/build") .. " && ln -s " ..
                    T.q(T.src .. "/tests/lib") .. " " .. T.q(dir .. "/tests/lib") .. " && ln -s " ..
                    T.q(T.bin) .. " " .. T.q(dir .. "/build/spine")))
  return dir
end

-- The plain `busted SPEC` a designer types in the project's root: no --lpath, no $SPINE_BIN,
-- no database URL (the kit makes its own in the test run's cluster, $SPINE_TEST_HOME).
local function plain_busted(dir, args)
  return T.sh("cd " .. T.q(dir) .. " && env -u SPINE_BIN -u SPINE_DATABASE_URL " .. T.q(BUSTED) ..
              " " .. args)
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- The commands of the first ```sh block after `heading` in a guide, as the test runs them:
-- build/spine is the spine under test, busted runs on Lua 5.4.
local function guide_commands(guide, heading)
  local text = T.source(guide)
  local at = text:find("\n" .. heading .. "\n", 1, true)
  assert.is_number(at, guide .. " has no section " .. heading)
  local block = text:match("```sh\n(.-)\n```", at)
  assert.is_string(block, guide .. ": no ```sh block in " .. heading)
  local cmds = {}
  for line in block:gmatch("[^\n]+") do
    local cmd = line:gsub("%s+#.*$", "")
    if cmd:find("^build/spine ") then
      cmd = T.q(T.bin) .. cmd:sub(#"build/spine" + 1)
    elseif cmd:find("^busted ") then
      cmd = { plain = cmd:sub(#"busted" + 2) }
    else
      error(guide .. ": unexpected command in " .. heading .. ": " .. line)
    end
    cmds[#cmds + 1] = { shown = line, run = cmd }
  end
  return cmds
end

describe("spine new playbook", function()
  local url
  setup(function() url = T.newdb("spec_new_playbook") end)

  it("writes the playbook, its manifest and its spec, and lists them with --json", function()
    local dir = tempdir()
    local code, out, err = spine_in("/", url, { "new", "playbook", "welcome_call", "--dir", dir,
                                                "--json" })
    assert.are.equal(0, code, err)
    local answer = T.json.decode(out)
    assert.are.same({ dir .. "/playbooks/welcome_call.lua", dir .. "/manifests/welcome_call.json",
                      dir .. "/tests/spec/playbooks/welcome_call_spec.lua" }, answer.created)
    for _, path in ipairs(answer.created) do assert.is_true(exists(path), path) end
    assert.matches('name = "welcome_call"', T.read(dir .. "/playbooks/welcome_call.lua"), 1, true)
  end)

  it("makes a playbook that runs to completion and a spec that passes with plain busted", function()
    local dir = project()
    assert.are.equal(0, (spine_in(dir, url, { "new", "playbook", "onboarding" })))
    local code, out, err = spine_in(dir, url, { "run", "playbooks/onboarding.lua", "--clock",
                                                "virtual", "--json" })
    assert.are.equal(0, code, err)
    assert.are.equal("completed", T.json.decode(out).status)
    code, out, err = spine_in(dir, url, { "manifests", "check", "--json" })
    assert.are.equal(0, code, out .. err)
    assert.are.same({}, T.json.decode(out).errors)
    code, out, err = plain_busted(dir, "tests/spec/playbooks/onboarding_spec.lua")
    assert.are.equal(0, code, out .. err)
    assert.matches("3 successes / 0 failures / 0 errors", out, 1, true)
  end)

  it("makes a spec that drives the case with a signal and the clock (spine.testing)", function()
    local spec = T.read(T.src .. "/templates/playbook_spec.lua")
    assert.matches('require("spine.testing")', spec, 1, true)
    assert.matches(":signal(", spec, 1, true)
    assert.matches(":advance(", spec, 1, true)
    assert.not_matches('"run"', spec, 1, true)
  end)

  it("makes a spec that fails when the playbook breaks", function()
    local dir = project()
    assert.are.equal(0, (spine_in(dir, url, { "new", "playbook", "fragile" })))
    local path = dir .. "/playbooks/fragile.lua"
    local src = T.read(path):gsub('ctx%.state%("done"%)', 'error("broken on purpose")')
    local f = assert(io.open(path, "wb"))
    f:write(src)
    f:close()
    local code, out = plain_busted(dir, "tests/spec/playbooks/fragile_spec.lua")
    assert.are_not.equal(0, code)
    assert.matches("2 failures", out, 1, true)
  end)

  it("runs the commands docs/playbooks.md shows", function()
    local dir = project()
    local cmds = guide_commands("docs/playbooks.md", "## Scaffolding")
    assert.is_true(#cmds >= 3)
    for _, c in ipairs(cmds) do
      local code, out, err
      if type(c.run) == "table" then
        code, out, err = plain_busted(dir, c.run.plain)
      else
        code, out, err = sh_in(dir, url, c.run)
      end
      assert.are.equal(0, code, c.shown .. ": " .. out .. err)
    end
  end)
end)

describe("spine new adapter", function()
  local url
  setup(function() url = T.newdb("spec_new_adapter") end)

  it("makes an adapter the registry loads and a spec that passes against the simulator", function()
    local dir = tempdir()
    local code, out, err = spine_in(dir, url, { "new", "adapter", "example_power", "--json" })
    assert.are.equal(0, code, err)
    assert.are.same({ "providers/example_power.lua", "tests/spec/providers/example_power_spec.lua" },
                    T.json.decode(out).created)
    code, out, err = busted_in(dir, url, "tests/spec/providers/example_power_spec.lua")
    assert.are.equal(0, code, out .. err)
    assert.matches("4 successes / 0 failures / 0 errors", out, 1, true)
  end)

  it("makes an adapter that loads beside the adapters Spine ships", function()
    local dir = tempdir()
    assert(os.execute("cp -r " .. T.q(T.src .. "/providers") .. " " .. T.q(dir)))
    assert.are.equal(0, (spine_in(dir, url, { "new", "adapter", "grid_east" })))
    local playbook = dir .. "/check.lua"
    local f = assert(io.open(playbook, "wb"))
    f:write("return { name = 'check', run = function(ctx)\n" ..
            "  local ok, err = pcall(ctx.provider, 'grid_east', 'no_such_operation', {})\n" ..
            "  return { ok = ok, code = err.code }\nend }\n")
    f:close()
    local code, out, err = sh_in(dir, url, "SPINE_PROVIDERS=providers " .. T.q(T.bin) ..
                                 " run check.lua --clock virtual --json")
    assert.are.equal(0, code, out .. err)
    -- the registry loaded it (an unknown adapter would be unknown_provider)
    assert.are.same({ ok = false, code = "unknown_operation" }, T.json.decode(out).result)
  end)

  it("runs the commands docs/providers.md shows", function()
    local dir = tempdir()
    local cmds = guide_commands("docs/providers.md", "## Scaffolding an adapter")
    assert.is_true(#cmds >= 2)
    for _, c in ipairs(cmds) do
      local run = type(c.run) == "table" and ("lua5.4 " .. T.q(BUSTED) .. " " .. c.run.plain) or
                  c.run
      local code, out, err = sh_in(dir, url, run)
      assert.are.equal(0, code, c.shown .. ": " .. out .. err)
    end
  end)
end)

describe("spine new refuses", function()
  it("a name that is not [a-z][a-z0-9_]*, naming it, with exit 2 and nothing written", function()
    local dir = tempdir()
    for _, name in ipairs({ "Welcome", "1st", "a-b", "a.b", "", ("x"):rep(64), "../up" }) do
      local code, _, err = spine_in(dir, "unused", { "new", "playbook", name })
      assert.are.equal(2, code, name)
      assert.matches('"' .. name:gsub("%p", "%%%0") .. '" is not a valid playbook name', err)
    end
    local code, out = spine_in(dir, "unused", { "new", "adapter", "Bad", "--json" })
    assert.are.equal(2, code)
    assert.are.equal("invalid_name", T.json.decode(out).error.code)
    assert.are.equal("", select(2, T.sh("ls -A " .. T.q(dir))))
  end)

  it("when one of the files exists, naming it, with exit 2 and nothing written", function()
    local dir = tempdir()
    assert(os.execute("mkdir -p " .. T.q(dir .. "/manifests")))
    local f = assert(io.open(dir .. "/manifests/taken.json", "wb"))
    f:write("{}")
    f:close()
    local code, _, err = spine_in("/", "unused", { "new", "playbook", "taken", "--dir", dir })
    assert.are.equal(2, code)
    assert.matches(dir .. "/manifests/taken.json already exists", err, 1, true)
    assert.is_false(exists(dir .. "/playbooks/taken.lua"))
    assert.are.equal("{}", T.read(dir .. "/manifests/taken.json"))
    local out
    code, out = spine_in(dir, "unused", { "new", "playbook", "taken", "--json" })
    assert.are.equal(2, code)
    local e = T.json.decode(out).error
    assert.are.equal("file_exists", e.code)
    assert.matches("manifests/taken.json", e.message, 1, true)
  end)

  it("a second scaffold of the same name", function()
    local dir = tempdir()
    assert.are.equal(0, (spine_in(dir, "unused", { "new", "adapter", "twice" })))
    local code, _, err = spine_in(dir, "unused", { "new", "adapter", "twice" })
    assert.are.equal(2, code)
    assert.matches("providers/twice.lua already exists", err, 1, true)
  end)

  it("a kind it does not know, and explains itself with --help", function()
    local code, _, err = spine_in("/", "unused", { "new", "workflow", "x" })
    assert.are.equal(2, code)
    assert.matches("playbook or adapter", err, 1, true)
    local out
    code, out = spine_in("/", "unused", { "new", "--help" })
    assert.are.equal(0, code)
    assert.matches("--dir DIR", out, 1, true)
  end)
end)
