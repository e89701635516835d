/* Lua error tables (lerror.h): the fields every error of ctx and p has, set in one place, and
 * where in a script an error happened. Allocates nothing of its own: the message of a raise is
 * formatted on the C stack. */
#include "lerror.h"

#include <lauxlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "codec.h"
#include "log.h"

void spine_lerror_push(lua_State *L, const char *kind, const char *code, const char *message,
                       const char *field) {
  lua_createtable(L, 0, 4);
  lua_pushstring(L, kind);
  lua_setfield(L, -2, "kind");
  lua_pushstring(L, code);
  lua_setfield(L, -2, "code");
  lua_pushstring(L, message);
  lua_setfield(L, -2, "message");
  if (field && *field) {
    lua_pushstring(L, field);
    lua_setfield(L, -2, "field");
  }
}

int spine_lerror_raise(lua_State *L, const char *kind, const char *code, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  luaL_where(L, 1);
  lua_pushstring(L, msg);
  lua_concat(L, 2);
  spine_lerror_push(L, kind, code, lua_tostring(L, -1), NULL);
  lua_remove(L, -2);
  return lua_error(L);
}

int spine_lerror_where(lua_State *co, char *out, size_t size) {
  lua_Debug ar;
  for (int level = 0; lua_getstack(co, level, &ar); level++)
    if (lua_getinfo(co, "Sl", &ar) && ar.currentline > 0 && ar.source[0] == '@') {
      snprintf(out, size, "%s:%d", ar.short_src, ar.currentline);
      return 1;
    }
  if (size) out[0] = '\0';
  return 0;
}

void spine_lerror_encode(lua_State *L, int idx, spine_buf *out) {
  spine_err e;
  spine_err_clear(&e);
  spine_buf_reset(out);
  if (spine_codec_encode(L, idx, "error", out, &e) == 0) return;
  spine_buf_reset(out);
  spine_buf_puts(out, "{\"kind\":\"runtime\",\"code\":\"bad_error\",\"message\":");
  char msg[400];
  snprintf(msg, sizeof msg, "the error cannot be recorded: %s%s%s", e.field, e.field[0] ? ": " : "",
           e.msg);
  spine_log_json_string(out, msg, strlen(msg));
  spine_buf_putc(out, '}');
}

/* Pushes t[name] of the table at `idx`, read raw; returns its type. */
static int raw_field(lua_State *L, int idx, const char *name) {
  lua_pushstring(L, name);
  return lua_rawget(L, idx);
}

/* Whether `key` names a field of an error record that must be text. */
static int is_text_field(const char *key) {
  static const char *const texts[] = {"kind", "code", "message", "where", "field"};
  for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
    if (!strcmp(key, texts[i])) return 1;
  return 0;
}

/* Replaces the table on top of `co` with a new plain one holding its string-keyed fields, read
 * raw: an error may carry a metatable whose every metamethod raises or loops, and it is read
 * after the coroutine died, outside any protected call (a Lua panic would abort the worker),
 * and again whenever the failure is recorded. The copy is the engine's alone: no playbook code
 * can give it a metatable later. kind, code, message, where and field keep only text (a
 * number as its text); other fields (details, a provider's attempts) keep their values, which
 * the codec reads raw. */
static void copy_error(lua_State *co) {
  int src = lua_gettop(co);
  lua_checkstack(co, 4);
  lua_createtable(co, 0, 8);
  lua_pushnil(co);
  while (lua_next(co, src)) {
    int vt = lua_type(co, -1);
    if (lua_type(co, -2) != LUA_TSTRING ||
        (is_text_field(lua_tostring(co, -2)) && vt != LUA_TSTRING && vt != LUA_TNUMBER)) {
      lua_pop(co, 1);
      continue;
    }
    if (vt == LUA_TNUMBER && is_text_field(lua_tostring(co, -2)))
      lua_tostring(co, -1); /* the value's slot only: lua_next reads the key */
    lua_pushvalue(co, -2);
    lua_insert(co, -2);
    lua_rawset(co, src + 1);
  }
  lua_replace(co, src);
}

/* The playbook's frames of the dead coroutine, innermost first: "pb.lua:2 in open_task <
 * pb.lua:8 in run"; "" when there are fewer than two (where says it all then). A helper's line
 * alone does not say which of its callers failed. */
static void traceback(lua_State *co, char *out, size_t size) {
  lua_Debug ar;
  size_t len = 0;
  int frames = 0;
  out[0] = '\0';
  for (int level = 0; lua_getstack(co, level, &ar) && frames < 8; level++) {
    if (!lua_getinfo(co, "Sln", &ar) || ar.currentline <= 0 || ar.source[0] != '@') continue;
    int n = snprintf(out + len, size - len, "%s%s:%d%s%s", frames ? " < " : "", ar.short_src,
                     ar.currentline, ar.name ? " in " : "", ar.name ? ar.name : "");
    if (n < 0 || (size_t)n >= size - len) break;
    len += (size_t)n;
    frames++;
  }
  if (frames < 2) out[0] = '\0';
}

void spine_lerror_normalize(lua_State *co, int status, const spine_limits *lim) {
  char where[300], trace[600];
  spine_lerror_where(co, where, sizeof where);
  traceback(co, trace, sizeof trace);
  if (lim->tripped == SPINE_LIMIT_INSTRUCTIONS || lim->tripped == SPINE_LIMIT_MEMORY ||
      status == LUA_ERRMEM) {
    int mem = lim->tripped != SPINE_LIMIT_INSTRUCTIONS;
    char msg[400];
    if (mem)
      snprintf(msg, sizeof msg,
               "%s%smemory limit exceeded (the workflow would hold more than %lld MB)", where,
               where[0] ? ": " : "", (long long)(lim->mem_limit >> 20));
    else
      snprintf(msg, sizeof msg, "%s%sinstruction budget exceeded (an endless loop?)", where,
               where[0] ? ": " : "");
    lua_pop(co, 1);
    spine_lerror_push(co, "limit", mem ? "memory_limit" : "instruction_budget", msg, NULL);
  } else if (lua_type(co, -1) == LUA_TTABLE) {
    copy_error(co);
    if (raw_field(co, lua_gettop(co), "kind") != LUA_TSTRING) {
      lua_pushliteral(co, "runtime");
      lua_setfield(co, -3, "kind");
      lua_pushliteral(co, "error");
      lua_setfield(co, -3, "code");
    }
    lua_pop(co, 1);
  } else {
    int t = lua_type(co, -1);
    const char *s = t == LUA_TSTRING || t == LUA_TNUMBER ? lua_tostring(co, -1) : NULL;
    char msg[600];
    snprintf(msg, sizeof msg, "%s", s ? s : "error (a non-string error value)");
    lua_pop(co, 1);
    spine_lerror_push(co, "runtime", "runtime_error", msg, NULL);
  }
  /* From here on the table is the engine's own (made above): plain, no metatable. */
  if (trace[0]) {
    lua_pushstring(co, trace);
    lua_setfield(co, -2, "traceback");
  }
  if (where[0]) {
    int has = raw_field(co, lua_gettop(co), "where") != LUA_TNIL;
    lua_pop(co, 1);
    if (!has) {
      lua_pushstring(co, where);
      lua_setfield(co, -2, "where");
    }
  }
}
