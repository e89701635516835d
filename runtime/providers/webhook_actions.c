/* What an adapter's webhook(p, request) returned, checked and written as the JSON array of
 * actions that providers.h describes. Reads the returned tables raw (no metamethods: this runs
 * on the engine's thread, without an instruction budget); owns nothing. */
#include "webhook_actions.h"

#include <lauxlib.h>
#include <string.h>

#include "codec.h"

typedef struct actions_ctx {
  spine_buf *out;
  const char *where;
} actions_ctx;

/* t[key] without metamethods: the engine's thread has no budget to stop an __index loop. */
static int rawfield(lua_State *L, int idx, const char *key) {
  idx = lua_absindex(L, idx);
  lua_pushstring(L, key);
  return lua_rawget(L, idx);
}

static int only_keys(lua_State *L, int idx, const char *const *keys) {
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    int ok = 0;
    for (int i = 0; keys[i] && !ok; i++)
      ok = lua_type(L, -1) == LUA_TSTRING && !strcmp(lua_tostring(L, -1), keys[i]);
    if (!ok) {
      const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "(not a string)";
      lua_pop(L, 1);
      lua_pushstring(L, k);
      return 0; /* the unknown key on top */
    }
  }
  return 1;
}

/* Sets out[kind] to the action's name, on top, and refuses the fields of the table at `idx`
 * (action number `n`) that are not in `keys`. */
static void name_and_fields(lua_State *L, int idx, int out, const char *kind,
                            const char *const *keys, const char *expected, int n,
                            const char *where) {
  lua_setfield(L, out, kind);
  if (!only_keys(L, idx, keys))
    luaL_error(L, "%s: webhook: action %d: unknown field \"%s\" (expected %s)", where, n,
               lua_tostring(L, -1), expected);
}

/* Pushes the normalized action made of the table at `idx` (action number `n`). */
static void check_action(lua_State *L, int idx, int n, const char *where) {
  static const char *const signal_keys[] = {"signal", "workflow_id", "contract_id", "payload",
                                            NULL};
  static const char *const start_keys[] = {"start", "input", "idempotency_key", NULL};
  if (!lua_istable(L, idx))
    luaL_error(L, "%s: webhook: action %d is a %s (expected a table)", where, n,
               luaL_typename(L, idx));
  lua_createtable(L, 0, 3);
  int out = lua_gettop(L), is_signal = 0;
  if (rawfield(L, idx, "signal") != LUA_TNIL) {
    if (lua_type(L, -1) != LUA_TSTRING || !lua_rawlen(L, -1))
      luaL_error(L, "%s: webhook: action %d: signal must be a name", where, n);
    name_and_fields(L, idx, out, "signal", signal_keys, "workflow_id or contract_id, payload", n,
                    where);
    int wf = rawfield(L, idx, "workflow_id"), ct = rawfield(L, idx, "contract_id");
    if ((wf == LUA_TNIL) == (ct == LUA_TNIL) || (wf != LUA_TNIL && wf != LUA_TSTRING) ||
        (ct != LUA_TNIL && ct != LUA_TSTRING))
      luaL_error(L,
                 "%s: webhook: action %d: a signal needs workflow_id or contract_id (one "
                 "string)",
                 where, n);
    lua_setfield(L, out, "contract_id");
    lua_setfield(L, out, "workflow_id");
    rawfield(L, idx, "payload");
    is_signal = 1;
  } else {
    lua_pop(L, 1);
    if (rawfield(L, idx, "start") != LUA_TSTRING || !lua_rawlen(L, -1))
      luaL_error(L, "%s: webhook: action %d needs signal or start (a name)", where, n);
    name_and_fields(L, idx, out, "start", start_keys, "input, idempotency_key", n, where);
    int k = rawfield(L, idx, "idempotency_key");
    if (k != LUA_TNIL && k != LUA_TSTRING)
      luaL_error(L, "%s: webhook: action %d: idempotency_key must be a string", where, n);
    lua_setfield(L, out, "idempotency_key");
    rawfield(L, idx, "input");
  }
  const char *what = is_signal ? "payload" : "input";
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_newtable(L);
  } else if (!lua_istable(L, -1)) {
    luaL_error(L, "%s: webhook: action %d: %s must be a table", where, n, what);
  }
  lua_setfield(L, out, what);
}

/* Whether a string of the value at `idx`, keys included, holds a NUL byte. Only for a value
 * that encoded: no cycle, at most SPINE_CODEC_MAX_DEPTH deep. */
static int holds_nul(lua_State *L, int idx) {
  if (lua_type(L, idx) == LUA_TSTRING) {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    return memchr(s, '\0', len) != NULL;
  }
  if (lua_type(L, idx) != LUA_TTABLE) return 0;
  idx = lua_absindex(L, idx);
  luaL_checkstack(L, 3, "nested too deep");
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (holds_nul(L, -1) || holds_nul(L, -2)) {
      lua_pop(L, 2);
      return 1;
    }
    lua_pop(L, 1);
  }
  return 0;
}

/* Protected: (result, light actions_ctx) -> writes the JSON array. */
static int build_actions(lua_State *L) {
  actions_ctx *c = lua_touserdata(L, 2);
  lua_settop(L, 1);
  lua_newtable(L);
  int n = 0;
  if (lua_istable(L, 1)) {
    int single = rawfield(L, 1, "signal") != LUA_TNIL || rawfield(L, 1, "start") != LUA_TNIL;
    lua_settop(L, 2);
    if (single) {
      check_action(L, 1, 1, c->where);
      lua_rawseti(L, 2, ++n);
    } else {
      lua_Integer len = (lua_Integer)lua_rawlen(L, 1);
      lua_pushnil(L);
      while (lua_next(L, 1)) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > len)
          luaL_error(L,
                     "%s: webhook returned a table that is neither an action nor a list of "
                     "them",
                     c->where);
      }
      for (lua_Integer i = 1; i <= len; i++) {
        lua_rawgeti(L, 1, i);
        check_action(L, lua_gettop(L), (int)i, c->where);
        lua_rawseti(L, 2, ++n);
        lua_pop(L, 1);
      }
    }
  } else if (!lua_isnil(L, 1)) {
    luaL_error(L, "%s: webhook returned a %s (expected an action, a list of them, or nil)",
               c->where, luaL_typename(L, 1));
  }
  spine_err e;
  if (n == 0) return spine_buf_puts(c->out, "[]") ? luaL_error(L, "out of memory") : 0;
  if (spine_codec_encode(L, 2, "actions", c->out, &e))
    luaL_error(L, "%s: webhook: %s: %s", c->where, e.field, e.msg);
  /* JSON can hold "\u0000", PostgreSQL's jsonb (where serve stores the actions) cannot: such an
   * answer would fail every time it is stored, and the provider would retry it for ever. */
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, 2, i);
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      if (holds_nul(L, -1))
        luaL_error(L,
                   "%s: webhook: action %d: %s holds a NUL character (\\u0000), which "
                   "PostgreSQL cannot store",
                   c->where, i, lua_tostring(L, -2));
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  return 0;
}

int spine_webhook_actions_encode(lua_State *L, const char *where, spine_buf *out, spine_err *e) {
  actions_ctx c = {out, where};
  size_t start = out->len;
  lua_pushcfunction(L, build_actions);
  lua_insert(L, -2);
  lua_pushlightuserdata(L, &c);
  if (lua_pcall(L, 2, 0, 0) == LUA_OK) return 0;
  out->len = start;
  if (out->data) out->data[start] = '\0';
  const char *msg = lua_tostring(L, -1);
  spine_err_set(e, SPINE_EINVAL, NULL, NULL, "%s", msg ? msg : "out of memory");
  lua_pop(L, 1);
  return SPINE_EINVAL;
}
