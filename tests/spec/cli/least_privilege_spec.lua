-- Spine on an operator's PostgreSQL works with exactly the role docs/operations.md tells them
-- to make: the ```sql block there runs as written (password aside) on a private cluster, and
-- a workload of intents (history, outbox, the ledger) runs to the end as that role, which can
-- do nothing a superuser could.
local F = require("fault_test")
local T = require("spine_test")

-- The one ```sql block of docs/operations.md, with its line.
local function doc_sql()
  local text = T.source("docs/operations.md")
  local s, e, body = text:find("```sql\n(.-)\n%s*```")
  assert(s, "docs/operations.md has no ```sql block")
  assert(not text:find("```sql", e, true), "docs/operations.md has more than one ```sql block")
  return body
end

describe("the role docs/operations.md gives Spine", function()
  after_each(F.cleanup)

  it("runs a workload of intents to the end and can do nothing a superuser can", function()
    local pg = F.cluster()
    T.sql(pg.admin, "DROP DATABASE spine")
    local password = "lp-" .. tostring(os.time())
    local sql = doc_sql():gsub("'change%-me'", "'" .. password .. "'")
    assert.truthy(sql:find(password, 1, true), "the block's password is no longer 'change-me'")
    -- as an operator pastes it into psql: one statement after the other
    local file = os.tmpname()
    local f = assert(io.open(file, "w"))
    f:write(sql, "\n")
    f:close()
    local code, _, err = T.sh("psql " .. T.q(pg.admin) .. " -qAtX -v ON_ERROR_STOP=1 -f " ..
                              T.q(file))
    os.remove(file)
    assert.are.equal(0, code, "the documented statements failed: " .. err)
    local url = ("host=127.0.0.1 port=%d user=spine password=%s dbname=spine"):format(pg.port,
                                                                                    password)
    assert.are.equal("f|f|f|f", T.sql(url, "SELECT rolsuper, rolcreatedb, rolcreaterole," ..
      " rolbypassrls FROM pg_roles WHERE rolname = current_user"))

    local w = F.workload(url, { workflows = 40, customers = 4, credits = 5 })
    local srv = F.serve(url)
    F.wait_finished(url, w, 180, "the workload as role spine", nil, F.alive_guard(srv))
    F.check(url, w)
    -- it owns what it made, and nothing a superuser could do is open to it
    assert.are.equal("spine", T.sql(url, "SELECT string_agg(DISTINCT pg_get_userbyid(nspowner)," ..
      " ',') FROM pg_namespace WHERE nspname IN ('spine', 'lifecycle')"))
    for _, q in ipairs({ "COPY (SELECT 1) TO PROGRAM 'true'", "CREATE ROLE lp_other",
                         "CREATE DATABASE lp_other", "ALTER SYSTEM SET work_mem = '8MB'" }) do
      local qcode, _, qerr = T.sh("psql " .. T.q(url) .. " -qAtX -v ON_ERROR_STOP=1 -c " ..
                                  T.q(q))
      assert.are_not.equal(0, qcode, q .. " succeeded as role spine")
      assert.truthy(qerr:find("permission denied", 1, true) or
                    qerr:find("must be superuser", 1, true), q .. ": " .. qerr)
    end
  end)
end)
