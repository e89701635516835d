/* Playbook sources and their declarations (playbook.h). Synchronous file reads: never from a
 * loop callback except the first use of a playbook, which is cached by the engine. */
#include "playbook.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calendar.h"
#include "duration.h"
#include "sandbox.h"
#include "sha256.h"

#define MAX_PLAYBOOK_BYTES (4 << 20)

static char *read_file(const char *path, size_t *len, spine_err *e) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    spine_err_set(e, SPINE_ENOTFOUND, path, NULL, "no such playbook file");
    return NULL;
  }
  char *data = malloc(MAX_PLAYBOOK_BYTES + 1);
  size_t n = data ? fread(data, 1, MAX_PLAYBOOK_BYTES + 1, f) : 0;
  int bad = ferror(f);
  fclose(f);
  if (!data || bad || n > MAX_PLAYBOOK_BYTES) {
    free(data);
    spine_err_set(e, bad ? SPINE_EIO : SPINE_EINVAL, path, NULL,
                  bad ? "cannot read playbook" : "playbook larger than 4 MB");
    return NULL;
  }
  data[n] = '\0';
  *len = n;
  return data;
}

int spine_playbook_is_path(const char *name_or_path) {
  size_t n = strlen(name_or_path);
  return strchr(name_or_path, '/') || (n > 4 && !strcmp(name_or_path + n - 4, ".lua"));
}

int spine_playbook_read(const char *name_or_path, const char *dir, spine_playbook_src *out,
                        spine_err *e) {
  memset(out, 0, sizeof *out);
  int is_path = spine_playbook_is_path(name_or_path);
  char path[1024];
  if (is_path)
    snprintf(path, sizeof path, "%s", name_or_path);
  else
    snprintf(path, sizeof path, "%s/%s.lua", dir ? dir : "playbooks", name_or_path);
  out->source = read_file(path, &out->len, e);
  if (!out->source) {
    if (!is_path)
      spine_err_set(e, SPINE_ENOTFOUND, path, NULL, "no playbook named \"%s\"", name_or_path);
    return e ? e->code : SPINE_ENOTFOUND;
  }
  out->path = strdup(path);
  spine_sha256_hex(out->source, out->len, out->hash);
  return 0;
}

void spine_playbook_src_free(spine_playbook_src *p) {
  free(p->path);
  free(p->source);
  memset(p, 0, sizeof *p);
}

static const char *const types[] = {"string", "number", "integer", "boolean", "table", "date"};

static int known_type(const char *t, size_t len) {
  for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
    if (strlen(types[i]) == len && !strncmp(types[i], t, len)) return 1;
  return 0;
}

int spine_playbook_compile(lua_State *L, const char *src, size_t len, const char *path,
                           int64_t instructions, spine_err *e) {
  char chunk[1100];
  snprintf(chunk, sizeof chunk, "@%s", path);
  int rc = spine_sandbox_load(L, src, len, chunk, instructions, e);
  if (rc) return rc;
  int m = lua_gettop(L);
  if (!lua_istable(L, m)) {
    lua_pop(L, 1);
    return spine_err_set(e, SPINE_EINVAL, path, NULL,
                         "a playbook must return a table with a run function");
  }
  if (lua_getfield(L, m, "run") != LUA_TFUNCTION) {
    lua_pop(L, 2);
    return spine_err_set(e, SPINE_EINVAL, path, "run",
                         "missing run function (run = function(ctx, input) ... end)");
  }
  lua_pop(L, 1);
  int t = lua_getfield(L, m, "name");
  lua_pop(L, 1);
  if (t != LUA_TNIL && t != LUA_TSTRING) {
    lua_pop(L, 1);
    return spine_err_set(e, SPINE_EINVAL, path, "name", "must be a string");
  }
  t = lua_getfield(L, m, "calendar");
  if (t != LUA_TNIL) {
    spine_calendar_holidays c;
    spine_err ce;
    if (t != LUA_TSTRING || spine_calendar_find(lua_tostring(L, -1), &c, &ce)) {
      lua_pop(L, 2);
      return spine_err_set(e, SPINE_EINVAL, path, "calendar",
                           "not a holiday calendar (" SPINE_CALENDAR_NAMES ")");
    }
  }
  lua_pop(L, 1);
  t = lua_getfield(L, m, "input");
  if (t == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      size_t tl;
      const char *ty = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &tl) : NULL;
      if (ty && tl && ty[tl - 1] == '?') tl--;
      if (lua_type(L, -2) != LUA_TSTRING || !ty || !known_type(ty, tl)) {
        char field[64];
        snprintf(field, sizeof field, "input.%s",
                 lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?");
        lua_pop(L, 4);
        return spine_err_set(e, SPINE_EINVAL, path, field,
                             "bad type (expected string, number, integer, boolean, table or "
                             "date, optionally followed by ?)");
      }
      lua_pop(L, 1);
    }
  } else if (t != LUA_TNIL) {
    lua_pop(L, 2);
    return spine_err_set(e, SPINE_EINVAL, path, "input", "must be a table of field = type");
  }
  lua_pop(L, 1);
  return 0;
}

static int check_value(lua_State *L, const char *ty, size_t tl) {
  int lt = lua_type(L, -1);
  if (!strncmp(ty, "string", tl)) return lt == LUA_TSTRING;
  if (!strncmp(ty, "number", tl)) return lt == LUA_TNUMBER;
  if (!strncmp(ty, "integer", tl)) return lua_isinteger(L, -1);
  if (!strncmp(ty, "boolean", tl)) return lt == LUA_TBOOLEAN;
  if (!strncmp(ty, "table", tl)) return lt == LUA_TTABLE;
  if (!strncmp(ty, "date", tl)) {
    int64_t ms;
    return lt == LUA_TSTRING && spine_duration_parse_time(lua_tostring(L, -1), &ms, NULL) == 0;
  }
  return 0;
}

int spine_playbook_check_input(lua_State *L, int module, int input, const char *path,
                               spine_err *e) {
  module = lua_absindex(L, module);
  input = lua_absindex(L, input);
  if (lua_getfield(L, module, "input") != LUA_TTABLE) {
    lua_pop(L, 1);
    return 0;
  }
  /* Sorted field order, so the first error reported does not depend on hashing. */
  lua_newtable(L);
  int nkeys = 0;
  lua_pushnil(L);
  while (lua_next(L, -3)) {
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_rawseti(L, -3, ++nkeys);
  }
  lua_getglobal(L, "table");
  int rc = 0;
  if (lua_istable(L, -1)) {
    lua_getfield(L, -1, "sort");
    lua_pushvalue(L, -3);
    lua_pcall(L, 1, 0, 0);
  }
  lua_pop(L, 1);
  for (int i = 1; i <= nkeys && rc == 0; i++) {
    lua_rawgeti(L, -1, i);
    const char *key = lua_tostring(L, -1);
    lua_pushvalue(L, -1);
    lua_rawget(L, -4);
    size_t tl;
    const char *ty = lua_tolstring(L, -1, &tl);
    int optional = tl && ty[tl - 1] == '?';
    if (optional) tl--;
    lua_getfield(L, input, key);
    char field[96];
    snprintf(field, sizeof field, "input.%s", key);
    if (lua_isnil(L, -1)) {
      if (!optional)
        rc = spine_err_set(e, SPINE_EINVAL, path, field, "required %.*s is missing", (int)tl, ty);
    } else if (!check_value(L, ty, tl)) {
      rc = spine_err_set(e, SPINE_EINVAL, path, field, "expected %.*s, got %s", (int)tl, ty,
                         luaL_typename(L, -1));
    }
    lua_pop(L, 3);
  }
  lua_pop(L, 2);
  return rc;
}
