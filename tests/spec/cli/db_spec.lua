-- `spine db`: the embedded cluster's life cycle through the CLI, each describe in a fresh
-- SPINE_HOME inside a `mktemp -d` directory (mode 0700, so as root the `postgres` user cannot
-- reach it and the data directory goes beside the socket). The `it`s of a describe run in order
-- on one cluster; teardown stops it and removes its files even when a test failed.
local cjson = require("cjson")

local bin = assert(os.getenv("SPINE_BIN"), "SPINE_BIN is not set (a built spine binary)")

local T = require("spine_test")
local q, read_all, sh = T.q, T.read, T.sh

-- One line of a command's output (popen; p:close() gives the same triple as os.execute).
local function line(cmd)
  local p = assert(io.popen(cmd))
  local s = p:read("l")
  local ok, _, code = p:close()
  assert(ok, cmd .. " exited with " .. tostring(code))
  return s
end

local is_root = line("id -u") == "0"

-- A throwaway SPINE_HOME: `spine db` runs against it with SPINE_DATABASE_URL unset.
local function new_home(mode)
  local dir = line("mktemp -d")
  if mode then assert(os.execute("chmod " .. mode .. " " .. q(dir))) end
  local h = { dir = dir, home = dir .. "/home" }

  -- The shell command running `spine db <args>` on this home (every spine call names its home:
  -- a call without one would use ./.spine in the current directory).
  function h.cmd(args)
    return "env -u SPINE_DATABASE_URL SPINE_HOME=" .. q(h.home) .. " " .. q(bin) .. " db " .. args
  end

  function h.spine(args)
    return sh("cd / && " .. h.cmd(args))
  end

  -- Runs `spine db <args> --json`; returns exit code, the decoded object (or nil), stderr.
  function h.json(args)
    local code, out, err = h.spine(args .. " --json")
    local ok, obj = pcall(cjson.decode, out)
    return code, ok and obj or nil, err
  end

  -- Stops the cluster (by its data directory, should `spine db stop` fail) and removes it all.
  function h.cleanup()
    local _, st = h.json("status")
    h.spine("stop")
    if st and st.datadir and read_all(st.datadir .. "/postmaster.pid") ~= "" then
      local pg_ctl = (os.getenv("SPINE_PGBIN") or "/usr/lib/postgresql/15/bin") .. "/pg_ctl"
      local as = is_root and "runuser -u postgres -- " or ""
      sh("cd / && " .. as .. q(pg_ctl) .. " -D " .. q(st.datadir) .. " stop -m immediate -w")
    end
    if st and st.socket_dir and st.socket_dir:match("^/tmp/spine%-%x+$") then
      sh("rm -rf " .. q(st.socket_dir))
    end
    sh("rm -rf " .. q(h.dir))
  end

  return h
end

describe("spine db in a fresh home", function()
  local h, first_pid

  setup(function()
    h = new_home()
  end)

  teardown(function()
    h.cleanup()
  end)

  it("reports the cluster absent before the first start", function()
    local code, st, err = h.json("status")
    assert.are.equal(0, code, err)
    assert.are.equal("absent", st.status)
    assert.are.equal(h.home, st.home)
    assert.truthy(st.socket_dir:match("^/tmp/spine%-%x%x%x%x%x%x%x%x%x%x%x%x$"), st.socket_dir)
  end)

  it("starts a fresh cluster and reports it running", function()
    local code, st, err = h.json("start")
    assert.are.equal(0, code, err)
    assert.are.equal("running", st.status)
    assert.are.equal("host=" .. st.socket_dir .. " port=5432 user=spine dbname=spine", st.url)
    first_pid = read_all(st.datadir .. "/postmaster.pid"):match("^(%d+)")
    assert.truthy(first_pid)
  end)

  it("keeps the data directory out of a home the postgres user cannot reach", function()
    local _, st = h.json("status")
    if is_root then
      assert.are.equal(st.socket_dir .. "/pgdata", st.datadir)
      assert.are.equal(st.datadir .. "\n", read_all(h.home .. "/pgdata.path"))
    else
      assert.are.equal(h.home .. "/pgdata", st.datadir)
    end
  end)

  it("treats a second start as a no-op that leaves the same server running", function()
    local code, st, err = h.json("start")
    assert.are.equal(0, code, err)
    assert.are.equal("running", st.status)
    assert.are.equal(first_pid, read_all(st.datadir .. "/postmaster.pid"):match("^(%d+)"))
  end)

  it("prints a url on one line that psql can query database spine with", function()
    local code, out, err = h.spine("url")
    assert.are.equal(0, code, err)
    local url = out:match("^([^\n]+)\n$")
    assert.truthy(url, "expected one line, got: " .. out)
    local qcode, qout, qerr = sh("psql " .. q(url) .. " -XAtc 'select 1, current_database()'")
    assert.are.equal(0, qcode, qerr)
    assert.are.equal("1|spine\n", qout)
  end)

  it("stops the cluster and reports it stopped", function()
    local code, st, err = h.json("stop")
    assert.are.equal(0, code, err)
    assert.are.equal("stopped", st.status)
    local scode, st2 = h.json("status")
    assert.are.equal(0, scode)
    assert.are.equal("stopped", st2.status)
  end)

  it("exits 2 with the usage on stderr for an unknown subcommand or option", function()
    local code, out, err = h.spine("frobnicate")
    assert.are.equal(2, code)
    assert.are.equal("", out)
    assert.truthy(err:find("usage: spine db", 1, true), err)
    code, _, err = h.spine("status --frob")
    assert.are.equal(2, code)
    assert.truthy(err:find("--frob", 1, true), err)
  end)

  it("prints the usage on stdout and exits 0 for --help", function()
    local code, out = h.spine("start --help")
    assert.are.equal(0, code)
    assert.truthy(out:find("usage: spine db", 1, true), out)
  end)

  it("refuses to manage a cluster when SPINE_DATABASE_URL is set", function()
    local url = "host=/nonexistent dbname=x"
    local env = "cd / && SPINE_DATABASE_URL=" .. q(url) .. " SPINE_HOME=" .. q(h.home) .. " "
    local code, _, err = sh(env .. q(bin) .. " db start")
    assert.are.equal(1, code)
    assert.truthy(err:find("SPINE_DATABASE_URL is set", 1, true), err)
    local ucode, uout = sh(env .. q(bin) .. " db url")
    assert.are.equal(0, ucode)
    assert.are.equal(url .. "\n", uout)
  end)
end)

describe("spine db in a home the postgres user can reach", function()
  local h

  setup(function()
    h = new_home("755")
  end)

  teardown(function()
    h.cleanup()
  end)

  it("lets two starts race on a fresh home and both succeed", function()
    local script = "cd /; " .. h.cmd("start") .. " >/dev/null 2>&1 & a=$!; " .. h.cmd("start") ..
                   " >/dev/null 2>&1 & b=$!; wait $a; ra=$?; wait $b; rb=$?; echo $ra $rb"
    local code, out, err = sh(script)
    assert.are.equal(0, code, err)
    assert.are.equal("0 0\n", out)
    local _, st = h.json("status")
    assert.are.equal("running", st.status)
  end)

  it("keeps the data directory and the log inside SPINE_HOME", function()
    local _, st = h.json("status")
    assert.are.equal(h.home .. "/pgdata", st.datadir)
    assert.are.equal(h.home .. "/postgres.log", st.log)
    local qcode, qout, qerr = sh("psql " .. q(st.url) .. " -XAtc 'select 1'")
    assert.are.equal(0, qcode, qerr)
    assert.are.equal("1\n", qout)
  end)

  it("stops the cluster and reports it stopped", function()
    local code, st, err = h.json("stop")
    assert.are.equal(0, code, err)
    assert.are.equal("stopped", st.status)
  end)
end)

-- The embedded database's boundary (docs/security.md): only the system user who runs Spine
-- gets in, Spine works as a role that is no superuser, and a cluster an older Spine made (every
-- local user trusted, objects owned by `postgres`) is narrowed at its next start.
describe("who may use the embedded database", function()
  local h, st

  -- psql as another system user (root only can be someone else); returns code, out, err.
  local function psql_as(user, url, sql)
    return sh("cd / && runuser -u " .. user .. " -- psql " .. q(url) .. " -XAtc " .. q(sql))
  end

  local function psql(url, sql)
    return sh("psql " .. q(url) .. " -XAtc " .. q(sql))
  end

  local function mode(path)
    return line("stat -c %a " .. q(path))
  end

  setup(function()
    h = new_home()
    local code, err
    code, st, err = h.json("start")
    assert(code == 0, err)
  end)

  teardown(function()
    h.cleanup()
  end)

  it("listens on a socket of mode 0700 in a directory of mode 0700", function()
    assert.are.equal("700", mode(st.socket_dir))
    assert.are.equal("700", mode(st.socket_dir .. "/.s.PGSQL.5432"))
    assert.are.equal("600", mode(st.log))
  end)

  it("works as role spine, which owns its database and is no superuser", function()
    assert.are.equal("host=" .. st.socket_dir .. " port=5432 user=spine dbname=spine", st.url)
    local code, out, err = psql(st.url, "SELECT current_user, rolsuper, rolcreatedb, " ..
      "rolcreaterole, pg_get_userbyid(datdba) FROM pg_roles, pg_database " ..
      "WHERE rolname = current_user AND datname = current_database()")
    assert.are.equal(0, code, err)
    assert.are.equal("spine|f|f|f|spine\n", out)
    code, _, err = psql(st.url, "COPY (SELECT 1) TO PROGRAM 'true'")
    assert.are_not.equal(0, code)
    assert.truthy(err:find("must be superuser", 1, true), err)
  end)

  it("gives the user who runs Spine the superuser through db url --admin", function()
    local code, out, err = h.spine("url --admin")
    assert.are.equal(0, code, err)
    local admin = out:gsub("%s+$", "")
    assert.are.equal("host=" .. st.socket_dir .. " port=5432 user=postgres dbname=postgres", admin)
    code, out, err = psql(admin, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    assert.are.equal(0, code, err)
    assert.are.equal("t\n", out)
  end)

  it("refuses every other local user, at the socket and at authentication", function()
    if not is_root then
      pending("acting as another local user needs root (CI runs as root)")
      return
    end
    -- nobody cannot reach the socket at all
    local code, _, err = psql_as("nobody", st.url, "SELECT 1")
    assert.are_not.equal(0, code)
    assert.truthy(err:find("Permission denied", 1, true), err)
    -- postgres owns the socket directory (the server runs as it), and is refused all the same
    local admin = st.url:gsub("user=spine dbname=spine", "user=postgres dbname=postgres")
    for _, url in ipairs({ st.url, admin }) do
      code, _, err = psql_as("postgres", url, "SELECT 1")
      assert.are_not.equal(0, code)
      assert.truthy(err:find("Peer authentication failed", 1, true), err)
    end
  end)

  it("narrows a cluster an older Spine made: trust for all, objects owned by postgres", function()
    local _, out = h.spine("url --admin")
    local admin_spine = out:gsub("%s+$", ""):gsub("dbname=postgres", "dbname=spine")
    local code, _, err = psql(admin_spine, "CREATE SCHEMA legacy; CREATE TABLE legacy.t " ..
      "(id serial PRIMARY KEY, v text); CREATE FUNCTION legacy.f() RETURNS int LANGUAGE sql " ..
      "AS 'SELECT 1'; ALTER DATABASE spine OWNER TO postgres")
    assert.are.equal(0, code, err)
    -- what an older Spine left: pg_hba.conf trusting every local user, a 0755 directory
    local hba = st.datadir .. "/pg_hba.conf"
    local f = assert(io.open(hba, "w"))
    f:write("local all all trust\n")
    f:close()
    local pg_ctl = (os.getenv("SPINE_PGBIN") or "/usr/lib/postgresql/15/bin") .. "/pg_ctl"
    local as = is_root and "runuser -u postgres -- " or ""
    code, _, err = sh("cd / && " .. as .. q(pg_ctl) .. " reload -s -D " .. q(st.datadir))
    assert.are.equal(0, code, err)
    assert(os.execute("chmod 755 " .. q(st.socket_dir)))
    if is_root then -- the hole, open: the postgres user gets in as spine with no questions
      T.wait_until(function() return psql_as("postgres", st.url, "SELECT 1") == 0 end, 60,
                   "the trusting rules to be loaded")
    end

    -- the next start, with the server running, narrows it again
    code, _, err = h.spine("start")
    assert.are.equal(0, code, err)
    assert.are.equal("700", mode(st.socket_dir))
    assert.truthy(read_all(hba):find("\nlocal all all peer map=spine\n", 1, true), read_all(hba))
    assert.are.equal("600", mode(hba))
    if is_root then
      T.wait_until(function() return psql_as("postgres", st.url, "SELECT 1") ~= 0 end, 60,
                   "the narrowed rules to be loaded")
    end
    code, out, err = psql(st.url, "INSERT INTO legacy.t (v) VALUES ('x') RETURNING id, " ..
      "legacy.f(), (SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'spine')")
    assert.are.equal(0, code, err)
    assert.truthy(out:find("^1|1|spine\n"), out)
  end)
end)
