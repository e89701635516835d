-- docs/playbooks.md, the designer's guide: every shell command it shows runs as written, in
-- order, as one script in a copy of the project (a worker running), so that a newcomer who
-- follows it from the top gets what it says. (The scaffolding commands are run by
-- tests/spec/cli/new_spec.lua, the test kit's example by docs_spec.lua; the processes' cases
-- need contracts and providers: processes_doc_spec.lua starts them, tests/spec/playbooks/ runs
-- them.)
local T = require("spine_test")

local SKIP = { ["## Scaffolding"] = true, ["## Testing a playbook on the virtual clock"] = true,
               ["## The platform's processes"] = true }

-- The guide's ```sh blocks outside SKIP, in order, continuation lines joined.
local function script()
  local lines, section, inside, n = {}, nil, false, 0
  for line in (T.source("docs/playbooks.md") .. "\n"):gmatch("([^\n]*)\n") do
    if line:match("^## ") then section = line end
    if line == "```sh" then
      inside = not SKIP[section]
      if inside then n = n + 1 end
    elseif line:match("^```") then
      inside = false
    elseif inside then
      lines[#lines + 1] = line
    end
  end
  return table.concat(lines, "\n"):gsub("\\\n%s*", " "), n
end

describe("the designer's guide", function()
  it("has shell commands that run as written, from the top", function()
    local body, blocks = script()
    assert.is_true(blocks >= 5, "expected the guide's command blocks, found " .. blocks)
    for _, cmd in ipairs({ "run", "start", "signal", "show", "replay", "manifests check",
                           "watch", "experiments", "explain" }) do
      assert.matches("build/spine " .. cmd, body, 1, true)
    end
    local url = T.newdb("spec_playbooks_guide")
    local _, ws = T.sh("mktemp -d")
    ws = ws:gsub("%s+$", "")
    assert.are.equal(0, (T.sh("cd " .. T.q(T.src) .. " && cp -r playbooks manifests providers " ..
                              "types " .. T.q(ws) .. " && mkdir " .. T.q(ws .. "/build") ..
                              " && ln -s " .. T.q(T.product_bin) .. " " ..
                              T.q(ws .. "/build/spine"))))
    local log = ws .. "/serve.log"
    local p = io.popen("cd " .. T.q(ws) .. " && SPINE_DATABASE_URL=" .. T.q(url) ..
                       " SPINE_LISTEN=127.0.0.1:0 setsid build/spine serve >" .. log ..
                       " 2>&1 </dev/null & echo $!")
    local srv = { pid = T.track(tonumber(p:read("l"))), log = log }
    p:close()
    local path = ws .. "/guide.sh"
    local f = assert(io.open(path, "wb"))
    f:write("set -euo pipefail\n", body, "\n")
    f:close()
    local code, out, err = T.sh("cd " .. T.q(ws) .. " && SPINE_DATABASE_URL=" .. T.q(url) ..
                                " bash " .. T.q(path))
    local regenerated = T.read(ws .. "/types/intents.lua")
    T.kill(srv, "TERM")
    os.execute("rm -rf " .. T.q(ws))
    assert.are.equal(0, code, "the guide's commands failed:\n" .. out .. err)
    assert.matches('"variant"', out, 1, true)             -- the case was routed by its manifest
    assert.matches("demo_onboarding", out, 1, true)       -- spine watch's frame
    assert.are.equal(T.source("types/intents.lua"), regenerated)
  end)
end)
