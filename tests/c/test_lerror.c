/* lerror.c: the error tables ctx and p raise ({kind, code, message, field?}), a raise that
 * says where in the script it happened, and where a coroutine's Lua code stopped. */
#include <lauxlib.h>
#include <lualib.h>

#include "lerror.h"
#include "test.h"

/* The string t[name] of the table on top, or NULL. */
static const char *text_field(lua_State *L, const char *name, char *out, size_t size) {
  int t = lua_getfield(L, -1, name);
  if (t == LUA_TSTRING) snprintf(out, size, "%s", lua_tostring(L, -1));
  lua_pop(L, 1);
  return t == LUA_TSTRING ? out : NULL;
}

static int raise_boom(lua_State *L) {
  return spine_lerror_raise(L, "rejected", "bad_thing", "boom %d", (int)luaL_checkinteger(L, 1));
}

TEST_IMPL(lerror_tables) {
  lua_State *L = luaL_newstate();
  ASSERT(L);
  luaL_openlibs(L);
  char buf[256];

  spine_lerror_push(L, "rejected", "invalid_argument", "no such customer", "customer_id");
  ASSERT_STR_EQ(text_field(L, "kind", buf, sizeof buf), "rejected");
  ASSERT_STR_EQ(text_field(L, "code", buf, sizeof buf), "invalid_argument");
  ASSERT_STR_EQ(text_field(L, "message", buf, sizeof buf), "no such customer");
  ASSERT_STR_EQ(text_field(L, "field", buf, sizeof buf), "customer_id");
  ASSERT(!lua_getmetatable(L, -1));
  lua_pop(L, 1);

  /* no field, NULL or "" */
  spine_lerror_push(L, "transient", "timeout", "timed out", NULL);
  ASSERT(text_field(L, "field", buf, sizeof buf) == NULL);
  lua_pop(L, 1);
  spine_lerror_push(L, "transient", "timeout", "timed out", "");
  ASSERT(text_field(L, "field", buf, sizeof buf) == NULL);
  lua_pop(L, 1);

  /* a raise from C called by a script: the message says the script's file and line */
  lua_register(L, "raise_boom", raise_boom);
  const char *src = "local x = 1\nraise_boom(7)\n";
  ASSERT_EQ(luaL_loadbuffer(L, src, strlen(src), "@playbooks/boom.lua"), LUA_OK);
  ASSERT_EQ(lua_pcall(L, 0, 0, 0), LUA_ERRRUN);
  ASSERT(lua_istable(L, -1));
  ASSERT_STR_EQ(text_field(L, "kind", buf, sizeof buf), "rejected");
  ASSERT_STR_EQ(text_field(L, "code", buf, sizeof buf), "bad_thing");
  ASSERT_STR_EQ(text_field(L, "message", buf, sizeof buf), "playbooks/boom.lua:2: boom 7");
  lua_pop(L, 1);
  ASSERT_EQ(lua_gettop(L), 0);
  lua_close(L);
  return 0;
}

TEST_IMPL(lerror_where) {
  lua_State *L = luaL_newstate();
  ASSERT(L);
  luaL_openlibs(L);
  char where[64];

  /* suspended in a function of a file: its line, also under a C function (coroutine.yield) */
  const char *src = "return function()\n  local a = 1\n  coroutine.yield(a)\n  error('x')\nend\n";
  ASSERT_EQ(luaL_loadbuffer(L, src, strlen(src), "@providers/acme.lua"), LUA_OK);
  ASSERT_EQ(lua_pcall(L, 0, 1, 0), LUA_OK);
  lua_State *co = lua_newthread(L);
  lua_pushvalue(L, -2);
  lua_xmove(L, co, 1);
  int nres = 0;
  ASSERT_EQ(lua_resume(co, L, 0, &nres), LUA_YIELD);
  lua_pop(co, nres);
  ASSERT_EQ(spine_lerror_where(co, where, sizeof where), 1);
  ASSERT_STR_EQ(where, "providers/acme.lua:3");

  /* dead by an error: its stack stays readable until it is reset */
  ASSERT_EQ(lua_resume(co, L, 0, &nres), LUA_ERRRUN);
  ASSERT_EQ(spine_lerror_where(co, where, sizeof where), 1);
  ASSERT_STR_EQ(where, "providers/acme.lua:4");

  /* a string chunk has no file: "" */
  src = "return function() coroutine.yield() end";
  ASSERT_EQ(luaL_loadbuffer(L, src, strlen(src), "=inline"), LUA_OK);
  ASSERT_EQ(lua_pcall(L, 0, 1, 0), LUA_OK);
  co = lua_newthread(L);
  lua_pushvalue(L, -2);
  lua_xmove(L, co, 1);
  ASSERT_EQ(lua_resume(co, L, 0, &nres), LUA_YIELD);
  strcpy(where, "stale");
  ASSERT_EQ(spine_lerror_where(co, where, sizeof where), 0);
  ASSERT_STR_EQ(where, "");

  /* a coroutine not started has no frame at all */
  ASSERT_EQ(spine_lerror_where(lua_newthread(L), where, sizeof where), 0);
  ASSERT_STR_EQ(where, "");
  lua_close(L);
  return 0;
}
