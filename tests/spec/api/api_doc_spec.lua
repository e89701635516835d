-- docs/api.md, "Routes": its shell examples (curl) run as written, in order, against a running
-- `spine serve`, and do what the guide says (the cancel records the token's subject).
local T = require("spine_test")
local L = require("lifecycle_test")

describe("the API guide's examples", function()
  it("run as written", function()
    local doc = T.source("docs/api.md")
    local section = assert(doc:match("\n## Routes\n(.-)\n## The audit"), "no Routes section")
    local blocks = {}
    for block in section:gmatch("```sh\n(.-)\n```") do blocks[#blocks + 1] = block end
    assert.is_true(#blocks >= 6, "expected the guide's examples, found " .. #blocks)
    local url = T.newdb("spec_api_doc")
    -- the customer of the guide's case: its credit waits for a second person's approval
    L.ok(url, "RegisterCustomer", { customer_id = "cu-1", name = "Erika Mustermann",
                                    email = "erika@example.org" })
    local srv = T.serve(url)
    local base = "http://127.0.0.1:" .. T.http_port(srv)
    local script = "set -euo pipefail\nspine() { " .. T.q(T.bin) .. ' "$@"; }\n' ..
                   table.concat(blocks, "\n"):gsub("http://127%.0%.0%.1:7780", base) .. "\n" ..
                   'echo "CASE=$CASE"\n'
    local code, out, err = T.sh("cd " .. T.q(T.src) .. " && SPINE_DATABASE_URL=" .. T.q(url) ..
                                " bash -c " .. T.q(script))
    T.kill(srv, "TERM")
    assert.are.equal(0, code, out .. err)
    local id = assert(out:match("CASE=(%S+)"), out)
    assert.are.equal("ops:jane", T.sql(url, "SELECT cancelled_by FROM spine.workflows WHERE id = '" ..
                                             id .. "'"))
    assert.are.equal(2, tonumber(T.sql(url, "SELECT count(*) FROM spine.workflows WHERE" ..
                                            " process = 'manual_credit'")))
    -- the task answered in the guide: ops:jane approved a credit ops:sam asked for
    assert.are.equal("ops:jane", T.sql(url, "SELECT resolved_by FROM lifecycle.tasks WHERE" ..
                                            " kind = 'credit_approval' AND status = 'resolved'" ..
                                            " AND outcome = 'approved'"))
    assert.is_true(tonumber(T.sql(url, "SELECT count(*) FROM spine.api_audit WHERE subject =" ..
                                       " 'ops:jane' AND status < 300")) >= 6)
  end)
end)
