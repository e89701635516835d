/* The sandbox: what an environment sees and refuses, the instruction budget (which a
 * playbook's pcall cannot swallow), memory limits per resume and per state, and load errors
 * carrying "file:line:". */
#include <lauxlib.h>

#include "sandbox.h"
#include "test.h"

#define CHUNK "@playbooks/t.lua"

static int load(lua_State *L, const char *src, int64_t instructions, spine_err *e) {
  spine_err_clear(e);
  int top = lua_gettop(L);
  int rc = spine_sandbox_load(L, src, strlen(src), CHUNK, instructions, e);
  ASSERT_EQ(lua_gettop(L), top + (rc == 0));
  /* The budget was the load's alone: the main thread is left without hook or limits. */
  ASSERT(lua_gethook(L) == NULL);
  ASSERT(spine_sandbox_limits(L) == NULL);
  return rc;
}

/* Loads src, which must succeed, and returns its value as a string (it must be one). */
static const char *load_str(lua_State *L, const char *src) {
  spine_err e;
  int rc = load(L, src, 1000000, &e);
  if (rc) TEST_FAIL_("load %s: %s", src, e.msg);
  const char *s = lua_tostring(L, -1);
  ASSERT(s != NULL);
  lua_pop(L, 1); /* the string stays interned long enough for one comparison */
  return s;
}

static void load_fails(lua_State *L, const char *src, int code, const char *msg) {
  spine_err e;
  int rc = load(L, src, 1000000, &e);
  if (rc != code) TEST_FAIL_("load %s: rc %d (%s)", src, rc, e.msg);
  ASSERT_EQ(e.code, code);
  ASSERT_STR_EQ(e.msg, msg);
  ASSERT_STR_EQ(e.where, "");
}

/* Runs the function returned by `src` in a new coroutine attached to lim, as the scheduler
 * does; leaves the coroutine's results (or error) on its stack and the coroutine on L's. */
static lua_State *run_co(lua_State *L, spine_limits *lim, const char *src, int64_t instructions,
                         int64_t mem_limit, int *status) {
  spine_err e;
  if (load(L, src, 1000000, &e)) TEST_FAIL_("load: %s", e.msg);
  ASSERT_EQ(lua_type(L, -1), LUA_TFUNCTION);
  lua_State *co = lua_newthread(L);
  ASSERT(spine_sandbox_limits(co) == NULL); /* not inherited from the main thread */
  lua_insert(L, -2);
  lua_xmove(L, co, 1);
  memset(lim, 0xff, sizeof *lim); /* begin must set every field */
  spine_sandbox_attach(co, lim);
  ASSERT(spine_sandbox_limits(co) == lim);
  spine_sandbox_begin(co, instructions, mem_limit);
  ASSERT_EQ(lim->tripped, SPINE_LIMIT_NONE);
  ASSERT_EQ(lim->mem_used, 0);
  int nres = 0;
  *status = lua_resume(co, L, 0, &nres);
  spine_sandbox_end(co);
  return co;
}

static int yield_c(lua_State *L) {
  return lua_yield(L, 0);
}

typedef struct dumped {
  char data[4096];
  size_t len;
} dumped;

static int dump_writer(lua_State *L, const void *p, size_t sz, void *ud) {
  (void)L;
  dumped *d = ud;
  if (d->len + sz > sizeof d->data) return 1;
  memcpy(d->data + d->len, p, sz);
  d->len += sz;
  return 0;
}

TEST_IMPL(sandbox_env) {
  lua_State *L = spine_sandbox_new_state(0);
  ASSERT(L != NULL);
  spine_err e;

  /* What is absent is an undeclared global: reading it raises. */
  static const char *const absent[] = {
      "os",      "io", "debug",          "load",  "loadstring", "dofile", "loadfile", "require",
      "package", "_G", "collectgarbage", "print", "coroutine",  "module", "unpack",
  };
  for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++) {
    char src[128], msg[160];
    snprintf(src, sizeof src, "local x = 1\nreturn %s", absent[i]);
    snprintf(msg, sizeof msg, "playbooks/t.lua:2: undeclared global '%s'", absent[i]);
    load_fails(L, src, SPINE_ERUNTIME, msg);
  }
  load_fails(L, "return io.open('/etc/passwd')", SPINE_ERUNTIME,
             "playbooks/t.lua:1: undeclared global 'io'");
  /* Writing any global raises too; locals are fine. */
  load_fails(L, "local y = 2\nx = 1", SPINE_ERUNTIME, "playbooks/t.lua:2: undeclared global 'x'");
  load_fails(L, "function f() end", SPINE_ERUNTIME, "playbooks/t.lua:1: undeclared global 'f'");
  load_fails(L, "_ENV[1] = true", SPINE_ERUNTIME,
             "playbooks/t.lua:1: undeclared global (a number key)");
  ASSERT_STR_EQ(load_str(L, "local t = {} t.x = 1 local function f() return t.x end "
                            "return tostring(f())"),
                "1");

  /* Removed library functions, also through the string metatable. */
  ASSERT_STR_EQ(load_str(L, "return tostring(string.dump == nil and ('').dump == nil and "
                            "math.random == nil and math.randomseed == nil)"),
                "true");
  /* Libraries are read-only, and their metatables (and the env's) are out of reach. */
  load_fails(L, "string.upper = nil", SPINE_ERUNTIME,
             "playbooks/t.lua:1: attempt to modify read-only table 'string'");
  load_fails(L, "\nmath.pi = 3", SPINE_ERUNTIME,
             "playbooks/t.lua:2: attempt to modify read-only table 'math'");
  load_fails(L, "table.insert = print", SPINE_ERUNTIME,
             "playbooks/t.lua:1: undeclared global 'print'");
  load_fails(L, "table.insert = nil", SPINE_ERUNTIME,
             "playbooks/t.lua:1: attempt to modify read-only table 'table'");
  ASSERT_STR_EQ(load_str(L, "return tostring(getmetatable('')) .. tostring(getmetatable(string))"
                            " .. tostring(getmetatable(_ENV))"),
                "falsefalsefalse");
  load_fails(L, "setmetatable(_ENV, nil)", SPINE_ERUNTIME,
             "playbooks/t.lua:1: cannot change a protected metatable");
  load_fails(L, "setmetatable(string, {})", SPINE_ERUNTIME,
             "playbooks/t.lua:1: cannot change a protected metatable");
  /* No finalizers: one could run later, in a thread without a budget. */
  load_fails(L, "setmetatable({}, {__gc = function() while true do end end})", SPINE_ERUNTIME,
             "playbooks/t.lua:1: bad argument #2 to 'setmetatable' (__gc metamethods are not "
             "allowed)");
  ASSERT_STR_EQ(load_str(L, "local t = setmetatable({}, {__index = function(_, k) return k end})"
                            " return t.hello"),
                "hello");

  /* What is there works. */
  ASSERT_STR_EQ(load_str(L, "return ('abc'):upper() .. string.format('%d', 42) .. "
                            "table.concat({1, 2}, ',') .. utf8.char(228) .. "
                            "tostring(math.floor(3.7)) .. select('#', 1, 2) .. type(next) .. "
                            "tostring(tonumber('0x10')) .. rawlen({1, 2, 3}) .. "
                            "tostring(rawequal(string, string)) .. tostring(math.maxinteger)"),
                "ABC421,2\xc3\xa4"
                "32function163true9223372036854775807");
  ASSERT_STR_EQ(load_str(L, "local ok, err = pcall(error, {code = 1}) "
                            "local n = 0 for _ in pairs({a = 1, b = 2}) do n = n + 1 end "
                            "for _, v in ipairs({5, 6}) do n = n + v end "
                            "assert(xpcall(function() return true end, function() end)) "
                            "return tostring(ok) .. err.code .. n .. tostring(rawget(_ENV, 'x'))"),
                "false113nil");

  /* A playbook's rawset reaches only its own environment and proxies. */
  ASSERT_STR_EQ(load_str(L, "rawset(string, 'upper', function() return 'evil' end) "
                            "rawset(_ENV, 'y', 'mine') return string.upper('a') .. y"),
                "evilmine");
  ASSERT_STR_EQ(load_str(L, "return string.upper('a') .. ('b'):upper() .. tostring(rawget(_ENV, "
                            "'y'))"),
                "ABnil");
  /* The engine's own globals are untouched. */
  lua_getglobal(L, "string");
  ASSERT_EQ(lua_getfield(L, -1, "dump"), LUA_TFUNCTION);
  lua_pop(L, 2);
  lua_getglobal(L, "os");
  ASSERT_EQ(lua_type(L, -1), LUA_TNIL); /* never opened */
  lua_pop(L, 1);

  /* push_env on its own: a fresh table each time. */
  spine_sandbox_push_env(L);
  spine_sandbox_push_env(L);
  ASSERT(lua_topointer(L, -1) != lua_topointer(L, -2));
  ASSERT_EQ(lua_getfield(L, -1, "pcall"), LUA_TFUNCTION);
  lua_pop(L, 3);
  (void)e;
  ASSERT_EQ(lua_gettop(L), 0);
  lua_close(L);
  return 0;
}

TEST_IMPL(sandbox_budget) {
  lua_State *L = spine_sandbox_new_state(0);
  ASSERT(L != NULL);
  spine_err e;

  /* A chunk's top level is budgeted too. */
  ASSERT_EQ(load(L, "local n = 0\nwhile true do n = n + 1 end", 100000, &e), SPINE_ELIMIT);
  ASSERT_STR_EQ(e.msg, "playbooks/t.lua:2: instruction budget exceeded");
  ASSERT_EQ(load(L, "while true do pcall(function() while true do end end) end", 100000, &e),
            SPINE_ELIMIT);
  ASSERT_STR_EQ(e.msg, "playbooks/t.lua:1: instruction budget exceeded");
  ASSERT_EQ(load(L, "local n = 0 for i = 1, 10 do n = n + i end return n", 1000, &e), 0);
  ASSERT_EQ(lua_tointeger(L, -1), 55);
  lua_pop(L, 1);
  ASSERT_EQ(load(L, "for i = 1, 10000 do end", 1000, &e), SPINE_ELIMIT);

  /* In a coroutine: pcall cannot swallow the trip, not even in a loop around it... */
  spine_limits lim;
  int st;
  lua_State *co = run_co(
      L, &lim, "return function() while true do pcall(function() while true do end end) end end",
      1000000, 16 << 20, &st);
  ASSERT_EQ(st, LUA_ERRRUN);
  ASSERT_EQ(lim.tripped, SPINE_LIMIT_INSTRUCTIONS);
  ASSERT_LE(lim.instructions_left, 0);
  ASSERT_STR_EQ(lua_tostring(co, -1), "playbooks/t.lua:1: instruction budget exceeded");
  lua_pop(L, 1);

  /* ...nor a message handler that loops itself. */
  co = run_co(L, &lim,
              "return function()\n"
              "  local ok = xpcall(function() while true do end end,\n"
              "                    function(m) while true do end end)\n"
              "  return 'survived'\n"
              "end",
              1000000, 16 << 20, &st);
  ASSERT(st != LUA_OK && st != LUA_YIELD);
  ASSERT_EQ(lim.tripped, SPINE_LIMIT_INSTRUCTIONS);
  lua_pop(L, 1);

  /* Within budget: counted (in hook strides), not tripped. */
  co = run_co(L, &lim,
              "return function() local n = 0 for i = 1, 10000 do n = n + i end "
              "return n end",
              1000000, 16 << 20, &st);
  ASSERT_EQ(st, LUA_OK);
  ASSERT_EQ(lua_tointeger(co, -1), 50005000);
  ASSERT_EQ(lim.tripped, SPINE_LIMIT_NONE);
  ASSERT_GE(1000000 - lim.instructions_left, 10000);
  ASSERT_LE(1000000 - lim.instructions_left, 30000);
  lua_pop(L, 1);
  /* The same work over a smaller budget trips. */
  co = run_co(L, &lim,
              "return function() local n = 0 for i = 1, 10000 do n = n + i end "
              "return n end",
              5000, 16 << 20, &st);
  ASSERT_EQ(st, LUA_ERRRUN);
  ASSERT_EQ(lim.tripped, SPINE_LIMIT_INSTRUCTIONS);
  lua_pop(L, 1);

  /* The budget is per resume: begin refills it after each yield. Three stretches of ~6000
   * instructions pass under a budget of 10000 each. */
  spine_err_clear(&e);
  ASSERT_EQ(load(L,
                 "return function(y) for r = 1, 3 do local n = 0 "
                 "for i = 1, 3000 do n = n + 1 end y() end return 'done' end",
                 1000, &e),
            0);
  co = lua_newthread(L);
  lua_insert(L, -2);
  lua_xmove(L, co, 1);
  lua_pushcfunction(co, yield_c);
  spine_sandbox_attach(co, &lim);
  int nargs = 1, nres = 0;
  for (int r = 0; r < 4; r++) {
    spine_sandbox_begin(co, 10000, 16 << 20);
    st = lua_resume(co, L, nargs, &nres);
    spine_sandbox_end(co);
    ASSERT_EQ(lim.tripped, SPINE_LIMIT_NONE);
    nargs = 0;
    if (r < 3) {
      ASSERT_LT(lim.instructions_left, 10000 - 5000); /* each stretch counted afresh */
      ASSERT_EQ(st, LUA_YIELD);
      lua_pop(co, nres);
    }
  }
  ASSERT_EQ(st, LUA_OK);
  ASSERT_STR_EQ(lua_tostring(co, -1), "done");
  lua_pop(L, 1);

  /* A thread made after all this starts without limits. */
  lua_State *fresh = lua_newthread(L);
  ASSERT(spine_sandbox_limits(fresh) == NULL);
  lua_pop(L, 1);
  ASSERT_EQ(lua_gettop(L), 0);
  lua_close(L);
  return 0;
}

TEST_IMPL(sandbox_memory) {
  lua_State *L = spine_sandbox_new_state(0);
  ASSERT(L != NULL);
  int64_t mb16 = 16 << 20;
  spine_limits lim;
  int st;

  /* The memory bomb trips the limit; the budget is not what stops it. */
  lua_State *co = run_co(L, &lim,
                         "return function() local t = {} for i = 1, 1e8 do t[i] = i end "
                         "return #t end",
                         1000000000, mb16, &st);
  ASSERT_EQ(st, LUA_ERRMEM);
  ASSERT_EQ(lim.tripped, SPINE_LIMIT_MEMORY);
  ASSERT_LE(lim.mem_used, mb16);
  ASSERT_GT(lim.mem_used, mb16 / 4);
  ASSERT_GT(lim.instructions_left, 0);
  lua_pop(L, 1);

  /* pcall cannot swallow it either: the next instructions raise. */
  co = run_co(L, &lim,
              "return function()\n"
              "  local ok = pcall(function() local t = {} for i = 1, 1e8 do t[i] = i end end)\n"
              "  return ok\n"
              "end",
              1000000000, mb16, &st);
  ASSERT(st != LUA_OK && st != LUA_YIELD);
  ASSERT_EQ(lim.tripped, SPINE_LIMIT_MEMORY);
  lua_pop(L, 1);

  /* Garbage is not growth: churning through far more than the limit, with little alive at any
   * time, passes (the emergency collection makes room and the trip is withdrawn). */
  co = run_co(L, &lim,
              "return function() local n = 0 for i = 1, 400 do "
              "n = n + #string.rep('x', 100000 + i) end return n end",
              1000000000, mb16, &st);
  ASSERT_EQ(st, LUA_OK);
  ASSERT_EQ(lim.tripped, SPINE_LIMIT_NONE);
  ASSERT_EQ(lua_tointeger(co, -1), 400 * 100000 + 400 * 401 / 2);
  lua_pop(L, 1);

  /* The state is still usable: collect, then a normal resume and a load. */
  lua_gc(L, LUA_GCCOLLECT);
  co = run_co(L, &lim,
              "return function() local t = {} for i = 1, 1000 do t[i] = i end return #t end",
              1000000, mb16, &st);
  ASSERT_EQ(st, LUA_OK);
  ASSERT_EQ(lua_tointeger(co, -1), 1000);
  ASSERT_EQ(lim.tripped, SPINE_LIMIT_NONE);
  ASSERT_GT(lim.mem_used, 1000 * 8);
  lua_pop(L, 1);
  /* Outside a resume nothing is charged. */
  int64_t grown = lim.mem_used;
  lua_createtable(L, 100000, 0);
  lua_pop(L, 1);
  ASSERT_EQ(lim.mem_used, grown);
  spine_err e;
  ASSERT_EQ(load(L, "return 1", 1000, &e), 0);
  lua_pop(L, 1);

  /* A chunk's top level has its own limit. */
  ASSERT_EQ(load(L, "local t = {} for i = 1, 1e8 do t[i] = i end", 1000000000, &e), SPINE_ELIMIT);
  ASSERT_STR_EQ(e.msg, "playbooks/t.lua: memory limit exceeded (the top level allocated over "
                       "64 MB)");
  ASSERT_EQ(lua_gettop(L), 0);
  lua_close(L);

  /* The state limit bounds everything, resumes or not. */
  L = spine_sandbox_new_state(4 << 20);
  ASSERT(L != NULL);
  ASSERT_EQ(load(L, "local t = {} for i = 1, 1e8 do t[i] = i end", 1000000000, &e), SPINE_ELIMIT);
  ASSERT_STR_EQ(e.msg, "playbooks/t.lua: memory limit exceeded (the state is full)");
  ASSERT_EQ(load(L, "return 'still here'", 1000, &e), 0);
  ASSERT_STR_EQ(lua_tostring(L, -1), "still here");
  lua_close(L);
  /* Too small to open: NULL, and nothing leaks (ASan would say). */
  ASSERT(spine_sandbox_new_state(2000) == NULL);
  ASSERT(spine_sandbox_new_state(16) == NULL);
  return 0;
}

TEST_IMPL(sandbox_load_errors) {
  lua_State *L = spine_sandbox_new_state(0);
  ASSERT(L != NULL);
  load_fails(L, "local a = 1\nlocal b = 2\nlocal c = = 3\n", SPINE_ESYNTAX,
             "playbooks/t.lua:3: unexpected symbol near '='");
  load_fails(L, "return {\n  run = function()\n", SPINE_ESYNTAX,
             "playbooks/t.lua:3: 'end' expected (to close 'function' at line 2) near <eof>");
  load_fails(L, "local x = 1\nerror('boom')", SPINE_ERUNTIME, "playbooks/t.lua:2: boom");
  load_fails(L, "error('no position', 0)", SPINE_ERUNTIME, "no position");
  load_fails(L, "error({message = 'a table error'})", SPINE_ERUNTIME, "a table error");
  load_fails(L, "error()", SPINE_ERUNTIME, "(error object is a nil value)");
  /* The error is read raw: its metamethods, which raise, are never called. */
  load_fails(L,
             "local function boom() error('metamethod called') end\n"
             "error(setmetatable({message = 'raw message'}, {__index = boom, __tostring = boom, "
             "__len = boom, __newindex = boom, __pairs = boom}))",
             SPINE_ERUNTIME, "raw message");
  load_fails(L,
             "error(setmetatable({}, {__index = function() return 'made up' end, "
             "__tostring = function() return 'made up' end}))",
             SPINE_ERUNTIME, "(error object is a table value)");
  load_fails(L, "local t = nil\nreturn t.x", SPINE_ERUNTIME,
             "playbooks/t.lua:2: attempt to index a nil value (local 't')");

  /* Binary chunks are refused, named. */
  lua_State *plain = luaL_newstate();
  ASSERT_EQ(luaL_loadstring(plain, "return 1"), LUA_OK);
  dumped bin = {{0}, 0};
  ASSERT_EQ(lua_dump(plain, dump_writer, &bin, 0), 0);
  lua_close(plain);
  spine_err e;
  ASSERT_EQ(spine_sandbox_load(L, bin.data, bin.len, CHUNK, 1000, &e), SPINE_ESYNTAX);
  ASSERT_STR_EQ(e.msg, "playbooks/t.lua: attempt to load a binary chunk (mode is 't')");
  ASSERT_EQ(lua_gettop(L), 0);

  /* Success pushes exactly the one value returned (nil when none). */
  ASSERT_EQ(load(L, "return {name = 'x'}, 'ignored'", 1000, &e), 0);
  ASSERT_EQ(lua_getfield(L, -1, "name"), LUA_TSTRING);
  lua_pop(L, 2);
  ASSERT_EQ(load(L, "local x = 1", 1000, &e), 0);
  ASSERT_EQ(lua_type(L, -1), LUA_TNIL);
  lua_pop(L, 1);
  ASSERT_EQ(lua_gettop(L), 0);
  lua_close(L);
  return 0;
}

/* Runs `body` (a function body) in a coroutine under 10M instructions and 16 MB; returns the
 * limit that tripped, and its error in err (a static buffer). */
static spine_limit_kind run_body(lua_State *L, const char *body, const char **err) {
  static char msg[512], src[1024];
  snprintf(src, sizeof src, "return function()\n%s\nend", body);
  spine_limits lim;
  int st;
  lua_State *co = run_co(L, &lim, src, 10 * 1000 * 1000, 16 << 20, &st);
  snprintf(msg, sizeof msg, "%s", st == LUA_OK ? "" : lua_tostring(co, -1));
  *err = msg;
  lua_pop(L, 1);
  return lim.tripped;
}

TEST_IMPL(sandbox_c_loops) {
  lua_State *L = spine_sandbox_new_state(0);
  ASSERT(L != NULL);
  const char *err;

  /* Loops in C functions, which the count hook never sees, are charged before they run. */
  static const char *const loops[] = {
      "return string.rep('', 1 << 50)",
      "return (''):rep(1 << 50)",
      "return string.rep('', 1 << 50, '')",
      "return table.move({}, 1, 1 << 50, 2)",
      "return table.move({}, 1, math.maxinteger, 2)",
      "return string.find(('a'):rep(1e5), '.-.-.-.-.-b')",
      "return ('a'):rep(1e5):find('.-.-.-.-.-b')",
      "return string.match(('a'):rep(1e5), '.-.-.-.-.-b')",
      "for _ in string.gmatch(('a'):rep(1e5), '.-.-.-.-.-b') do end",
      "return string.gsub(('a'):rep(1e5), '.-.-.-.-.-b', '')",
      "return ('a'):rep(1e5):gsub('.-.-.-.-.-b', '')",
      "return string.find(('a'):rep(2e6), ('a'):rep(1e6) .. 'b', 1, true)",
      /* a border far beyond the elements, or a __len that says so */
      "local t = setmetatable({}, {__len = function() return 1 << 50 end})\n"
      "return table.remove(t, 1)",
      "local t = setmetatable({}, {__len = function() return 1 << 50 end})\n"
      "table.insert(t, 1, 'x')",
      "return table.concat(setmetatable({}, {__index = rawlen}), '', 1, 1 << 40)",
      "local t = {} for i = 1, 5e5 do t[i] = -i end table.sort(t)",
      "local t = {} for i = 1, 5e5 do t[i] = i end table.sort(t, rawequal)",
      /* a million reads and writes through C metamethods cost as 16 million instructions */
      "table.move(setmetatable({}, {__index = rawlen}), 1, 1e6, 1,\n"
      "           setmetatable({}, {__newindex = rawequal}))",
      "return table.concat(setmetatable({}, {__index = rawlen}), '', 1, 1e6)",
  };
  for (size_t i = 0; i < sizeof loops / sizeof loops[0]; i++) {
    spine_limit_kind k = run_body(L, loops[i], &err);
    if (k != SPINE_LIMIT_INSTRUCTIONS) TEST_FAIL_("%s: tripped %d: %s", loops[i], k, err);
  }
  run_body(L, "local x = 1\nreturn string.rep('', 1 << 50)", &err);
  ASSERT_STR_EQ(err, "playbooks/t.lua:3: instruction budget exceeded");
  /* pcall cannot swallow it: the next instruction raises again. */
  ASSERT_EQ(run_body(L, "pcall(string.rep, '', 1 << 50) return 'survived'", &err),
            SPINE_LIMIT_INSTRUCTIONS);
  ASSERT_STR_EQ(err, "playbooks/t.lua:2: instruction budget exceeded");

  /* A result that cannot fit is refused before any work, as a memory error. */
  static const char *const big[] = {
      "return string.rep('x', 1e9)",
      "return ('x'):rep(1e9)",
      "return ('x'):rep(1e7, ('y'):rep(10))",
      "local keep = ('x'):rep(6e6) return ('y'):rep(12e6)",
  };
  for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
    spine_limit_kind k = run_body(L, big[i], &err);
    if (k != SPINE_LIMIT_MEMORY) TEST_FAIL_("%s: tripped %d: %s", big[i], k, err);
  }
  ASSERT_EQ(run_body(L, "local ok = pcall(string.rep, 'x', 1e9) return 'survived'", &err),
            SPINE_LIMIT_MEMORY);
  /* Beyond 2 GB Lua's own error stands (a plain error, which pcall catches). */
  ASSERT_EQ(run_body(L, "return string.rep('x', 1 << 40)", &err), SPINE_LIMIT_NONE);
  ASSERT_STR_CONTAINS(err, "resulting string too large");

  /* A __len that answers differently the second time cannot stretch the loop it was charged
   * for: the library sees the first answer. */
  ASSERT_EQ(run_body(L,
                     "local calls\n"
                     "local t = setmetatable({}, {__index = rawlen, __len = function()\n"
                     "  calls = calls + 1 return calls == 1 and 10 or (1 << 31) - 2 end})\n"
                     "calls = 0 table.sort(t) assert(calls == 1)\n"
                     "calls = 0 table.insert(t, 1, 0) assert(calls == 1 and rawget(t, 1) == 0)\n"
                     "calls = 0 table.remove(t, 1) assert(calls == 1)\n"
                     "calls = 0 table.concat(t, ',') assert(calls == 1)",
                     &err),
            SPINE_LIMIT_NONE);
  ASSERT_STR_EQ(err, "");

  /* What is there works as before. */
  ASSERT_STR_EQ(load_str(L, "local t = {5, 3, 1, 4, 2} table.sort(t) table.insert(t, 1, 0) "
                            "table.insert(t, 9) assert(table.remove(t, 1) == 0) table.remove(t) "
                            "local m = table.move({1, 2, 3}, 1, 3, 2, {}) "
                            "local d = setmetatable({}, {__len = function() return 3 end, "
                            "__index = function(_, i) return i * 10 end}) "
                            "return table.concat(t, ',') .. '|' .. table.concat(m, ',', 2, 4) .. "
                            "'|' .. ('ab'):rep(3, '-') .. string.rep('x', 0) .. "
                            "table.concat(d, ',') .. '|' .. table.concat({1, 2, 3}, '', 2) .. "
                            "select(2, ('hello'):gsub('l', 'L')) .. ('k=v'):match('(%w)=(%w)') "
                            ".. #string.rep('', 1e5)"),
                "1,2,3,4,5|1,2,3|ab-ab-ab10,20,30|232k0");
  ASSERT_EQ(lua_gettop(L), 0);
  lua_close(L);
  return 0;
}

static void push_big(lua_State *co, void *data) {
  (void)data;
  luaL_Buffer b;
  luaL_buffinitsize(co, &b, 12 << 20);
  memset(luaL_prepbuffsize(&b, 12 << 20), 'x', 12 << 20);
  luaL_addsize(&b, 12 << 20);
  luaL_pushresult(&b);
}

/* Resumes co (whose function takes a yield function) until it ends or a limit trips, under
 * mem_limit each time; returns the number of resumes that yielded. */
static int resume_all(lua_State *L, const char *src, int64_t mem_limit, spine_limits *lim,
                      int collect_between) {
  spine_err e;
  if (load(L, src, 1000000, &e)) TEST_FAIL_("load: %s", e.msg);
  lua_State *co = lua_newthread(L);
  lua_insert(L, -2);
  lua_xmove(L, co, 1);
  lua_pushcfunction(co, yield_c);
  memset(lim, 0, sizeof *lim);
  spine_sandbox_attach(co, lim);
  int nargs = 1, yields = 0;
  for (;;) {
    spine_sandbox_begin(co, 100 * 1000 * 1000, mem_limit);
    int nres = 0;
    int st = lua_resume(co, L, nargs, &nres);
    spine_limit_kind k = spine_sandbox_end(co);
    ASSERT_EQ(k, lim->tripped);
    nargs = 0;
    if (st != LUA_YIELD) break;
    yields++;
    lua_pop(co, nres);
    if (collect_between) lua_gc(L, LUA_GCCOLLECT);
  }
  lua_pop(L, 1);
  return yields;
}

TEST_IMPL(sandbox_memory_held) {
  lua_State *L = spine_sandbox_new_state(0);
  ASSERT(L != NULL);
  int64_t mb16 = 16 << 20;
  spine_limits lim;

  /* What a workflow keeps across resumes counts: 5 MB more each time (10 MB at the moment
   * string.rep copies its buffer into the string) passes 16 MB at the third. */
  ASSERT_EQ(resume_all(L,
                       "return function(y) local keep = {} for i = 1, 20 do "
                       "keep[i] = string.rep('x', 5e6) y() end end",
                       mb16, &lim, 0),
            2);
  ASSERT_EQ(lim.tripped, SPINE_LIMIT_MEMORY);
  /* ...however it keeps it: in a table of the module, shared by its workflows. */
  ASSERT_EQ(resume_all(L,
                       "local cache = {} return function(y) for i = 1, 20 do "
                       "cache[#cache + 1] = ('x'):rep(5e6) .. i y() end end",
                       mb16, &lim, 0),
            2);
  ASSERT_EQ(lim.tripped, SPINE_LIMIT_MEMORY);
  /* ...or in small pieces that no single step notices. */
  ASSERT_EQ(resume_all(L,
                       "return function(y) local keep = {} for i = 1, 1000 do "
                       "for j = 1, 1000 do keep[#keep + 1] = {j} end y() end end",
                       mb16, &lim, 0) < 1000,
            1);
  ASSERT_EQ(lim.tripped, SPINE_LIMIT_MEMORY);

  /* Garbage does not count once collected, whenever that happens: 20 x 6 MB made and dropped,
   * with the collector running in the resumes or between them. */
  for (int between = 0; between < 2; between++) {
    ASSERT_EQ(resume_all(L,
                         "return function(y) local n = 0 for i = 1, 20 do "
                         "local s = string.rep('x', 6e6) n = n + #s y() end end",
                         mb16, &lim, between),
              20);
    ASSERT_EQ(lim.tripped, SPINE_LIMIT_NONE);
  }
  /* Nor does what a workflow let go of: kept over two resumes, dropped, collected. */
  ASSERT_EQ(resume_all(L,
                       "return function(y) local keep = {('x'):rep(4e6), ('y'):rep(4e6)} y() "
                       "keep = nil y() for i = 1, 3 do keep = ('z'):rep(4e6) .. i y() end end",
                       mb16, &lim, 1),
            5);
  ASSERT_EQ(lim.tripped, SPINE_LIMIT_NONE);
  ASSERT_LT(lim.mem_used, 8 << 20);

  /* A workflow's charges are its own: two alternate, each keeping 5 MB a resume, each trips
   * at its own third resume. */
  spine_err e;
  spine_limits la, lb;
  lua_State *cos[2];
  spine_limits *lims[2] = {&la, &lb};
  for (int i = 0; i < 2; i++) {
    ASSERT_EQ(load(L,
                   "return function(y) local keep = {} for i = 1, 20 do "
                   "keep[i] = string.rep('x', 5e6) y() end end",
                   1000000, &e),
              0);
    cos[i] = lua_newthread(L);
    lua_insert(L, -2);
    lua_xmove(L, cos[i], 1);
    lua_pushcfunction(cos[i], yield_c);
    memset(lims[i], 0, sizeof la);
    spine_sandbox_attach(cos[i], lims[i]);
  }
  for (int r = 0; r < 3; r++)
    for (int i = 0; i < 2; i++) {
      spine_sandbox_begin(cos[i], 100000000, mb16);
      int nres = 0;
      int st = lua_resume(cos[i], L, r == 0, &nres);
      spine_sandbox_end(cos[i]);
      ASSERT_EQ(st, r < 2 ? LUA_YIELD : LUA_ERRRUN);
      if (st == LUA_YIELD) lua_pop(cos[i], nres);
      ASSERT_EQ(lims[i]->tripped, r < 2 ? SPINE_LIMIT_NONE : SPINE_LIMIT_MEMORY);
    }
  ASSERT_NE(la.slot, lb.slot);
  lua_pop(L, 2);

  /* A value the engine builds for a workflow between its resumes is charged to it, refused
   * or not, also while another workflow runs: 12 MB pushed, then kept, leave 4 MB. */
  ASSERT_EQ(
      load(L, "return function(y) local keep = y() y() return #('x'):rep(3e6) end", 1000000, &e),
      0);
  lua_State *co = lua_newthread(L);
  lua_insert(L, -2);
  lua_xmove(L, co, 1);
  lua_pushcfunction(co, yield_c);
  memset(&la, 0, sizeof la);
  memset(&lb, 0, sizeof lb);
  spine_sandbox_attach(co, &la);
  spine_sandbox_begin(co, 100000000, mb16);
  int nres = 0;
  ASSERT_EQ(lua_resume(co, L, 1, &nres), LUA_YIELD);
  spine_sandbox_end(co);
  lua_pop(co, nres);
  int64_t before = la.mem_used;
  lua_State *other = lua_newthread(L);
  spine_sandbox_attach(other, &lb);
  spine_sandbox_begin(other, 1000, mb16); /* as if its resume were in progress */
  spine_sandbox_charged(co, push_big, NULL);
  ASSERT_GE(la.mem_used - before, 12 << 20);
  lua_createtable(L, 1000, 0); /* charged to the one running */
  ASSERT_GE(lb.mem_used, 1000 * 8);
  ASSERT_LT(lb.mem_used, 1 << 20);
  spine_sandbox_end(other);
  lua_pop(L, 2);
  spine_sandbox_begin(co, 100000000, mb16);
  ASSERT_EQ(lua_resume(co, L, 1, &nres), LUA_YIELD); /* the playbook keeps it */
  spine_sandbox_end(co);
  spine_sandbox_begin(co, 100000000, mb16);
  ASSERT(lua_resume(co, L, 0, &nres) > LUA_YIELD); /* and has too little left for 6 MB */
  spine_sandbox_end(co);
  ASSERT_EQ(la.tripped, SPINE_LIMIT_MEMORY);
  lua_pop(L, 1);
  lua_gc(L, LUA_GCCOLLECT);
  ASSERT_EQ(lua_gettop(L), 0);
  lua_close(L);
  return 0;
}

/* Runs `src` (a function) in a coroutine under 10M instructions and 16 MB, once. */
static spine_limit_kind run_once(lua_State *L, const char *src) {
  spine_limits lim;
  int st;
  run_co(L, &lim, src, 10 * 1000 * 1000, 16 << 20, &st);
  lua_pop(L, 1);
  return lim.tripped;
}

TEST_IMPL(sandbox_forced_collections) {
  lua_State *L = spine_sandbox_new_state(0);
  ASSERT(L != NULL);
  /* A million small tables that belong to no workflow: what every full collection goes
   * through. */
  ASSERT_EQ(luaL_dostring(L, "others = {} for i = 1, 1e6 do others[i] = {i} end"), LUA_OK);

  /* Holding 15 MB of 16 and making garbage forces a full collection at nearly every
   * allocation: those are charged to its budget, and once they used it up the workflow stops
   * at its memory limit (else: a collection of the whole heap per kilobyte, for as long as it
   * likes). */
  ASSERT_EQ(run_once(L, "return function() local c = ('x'):rep(1000) local keep = {} "
                        "for i = 1, 15 do keep[i] = c:rep(1000) .. i end "
                        "local n = 0 for i = 1, 1e6 do n = n + #(c .. i) end return n end"),
            SPINE_LIMIT_MEMORY);
  ASSERT_EQ(run_once(L, "return function() local c = ('x'):rep(1000) local keep = {} "
                        "for i = 1, 15 do keep[i] = c:rep(1000) .. i end "
                        "local n = 0 for i = 1, 1e6 do n = n + #c:rep(2) end return n end"),
            SPINE_LIMIT_MEMORY);
  /* Making the same garbage while holding little: each collection frees much of it, and is
   * not charged; 100 MB of garbage in all passes. */
  ASSERT_EQ(run_once(L, "return function() local c = ('x'):rep(1000) local n = 0 "
                        "for i = 1, 1e5 do n = n + #(c .. i) end return n end"),
            SPINE_LIMIT_NONE);
  ASSERT_EQ(run_once(L, "return function() local c = ('x'):rep(1000) local n = 0 "
                        "for i = 1, 50 do n = n + #c:rep(2000) end return n end"),
            SPINE_LIMIT_NONE);
  lua_close(L);
  return 0;
}
