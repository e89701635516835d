/* Lua error tables (lerror.h): the fields every error of ctx and p has, set in one place, and
 * where in a script an error happened. Allocates nothing of its own: the message of a raise is
 * formatted on the C stack. */
#include "lerror.h"

#include <lauxlib.h>
#include <stdarg.h>
#include <stdio.h>

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
