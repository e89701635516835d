/* Secrets held by one call and their scrubbing: a byte search over plain text, and for JSON a
 * decode, a walk over every string (keys too) and a canonical encode, so that a secret is
 * found whatever escaping the text used. Never copies a secret anywhere but its own list. */
#include "secrets.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

#define REDACTED SPINE_SECRETS_REDACTED

static int has_escapable(const char *s) {
  for (; *s; s++)
    if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20) return 1;
  return 0;
}

/* Keeps a copy of `v`, longest first (so a secret inside another is never replaced first).
 * Returns the copy kept (an earlier one when the value was already known), or NULL. */
const char *spine_secrets_remember(spine_secrets *s, const char *v, size_t len) {
  for (int i = 0; i < s->n; i++)
    if (strlen(s->v[i]) == len && !memcmp(s->v[i], v, len)) return s->v[i];
  char **nv = realloc(s->v, (size_t)(s->n + 1) * sizeof *nv);
  if (!nv) return NULL;
  s->v = nv;
  char *copy = malloc(len + 1);
  if (!copy) return NULL;
  memcpy(copy, v, len);
  copy[len] = '\0';
  int at = s->n;
  while (at > 0 && strlen(s->v[at - 1]) < len) {
    s->v[at] = s->v[at - 1];
    at--;
  }
  s->v[at] = copy;
  s->n++;
  return copy;
}

void spine_secrets_free(spine_secrets *s) {
  for (int i = 0; i < s->n; i++) {
    memset(s->v[i], 0, strlen(s->v[i]));
    free(s->v[i]);
  }
  free(s->v);
  s->v = NULL;
  s->n = 0;
}

/* The first secret in text[from, len): its length, with its offset in *at; 0 if none. Secrets
 * are kept longest first, so at one offset the longest wins. */
static size_t find_secret(const spine_secrets *s, const char *text, size_t len, size_t from,
                          size_t *at) {
  for (size_t i = from; s && i < len; i++)
    for (int k = 0; k < s->n; k++) {
      size_t n = strlen(s->v[k]);
      if (n <= len - i && !memcmp(text + i, s->v[k], n)) {
        *at = i;
        return n;
      }
    }
  return 0;
}

int spine_secrets_contains(const spine_secrets *s, const char *text, size_t len) {
  size_t at;
  return find_secret(s, text, len, 0, &at) != 0;
}

/* Appends text[len] to out with every secret replaced. */
int spine_secrets_append(const spine_secrets *s, spine_buf *out, const char *text, size_t len) {
  size_t from = 0, at, n;
  int rc = 0;
  while (!rc && (n = find_secret(s, text, len, from, &at))) {
    rc = spine_buf_append(out, text + from, at - from);
    if (!rc) rc = spine_buf_puts(out, REDACTED);
    from = at + n;
  }
  return rc ? rc : spine_buf_append(out, text + from, len - from);
}

/* Pushes text[len] with every secret replaced (a Lua buffer: nothing leaks if it raises). */
static void push_scrubbed(lua_State *L, const spine_secrets *s, const char *text, size_t len) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  size_t from = 0, at, n;
  while ((n = find_secret(s, text, len, from, &at))) {
    luaL_addlstring(&b, text + from, at - from);
    luaL_addstring(&b, REDACTED);
    from = at + n;
  }
  luaL_addlstring(&b, text + from, len - from);
  luaL_pushresult(&b);
}

void spine_secrets_scrub_text(const spine_secrets *s, char *text, size_t size) {
  size_t len = strlen(text);
  if (!spine_secrets_contains(s, text, len)) return;
  spine_buf b = SPINE_BUF_INIT;
  if (spine_secrets_append(s, &b, text, len)) {
    snprintf(text, size, "(a message that held a secret)");
  } else {
    snprintf(text, size, "%s", spine_buf_str(&b));
  }
  spine_buf_free(&b);
}

/* Replaces secrets in the strings of the table at `idx` and below (keys too). */
static void scrub_table(lua_State *L, int idx, const spine_secrets *s, int depth) {
  luaL_checkstack(L, 6, "scrub");
  idx = lua_absindex(L, idx);
  if (depth > SPINE_CODEC_MAX_DEPTH) return;
  lua_newtable(L); /* keys to rename: old key -> new key */
  int renames = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    size_t len;
    if (lua_type(L, -1) == LUA_TTABLE) {
      scrub_table(L, -1, s, depth + 1);
    } else if (lua_type(L, -1) == LUA_TSTRING) {
      const char *v = lua_tolstring(L, -1, &len);
      if (spine_secrets_contains(s, v, len)) {
        lua_pushvalue(L, -2);
        push_scrubbed(L, s, v, len);
        lua_rawset(L, idx);
      }
    }
    lua_pop(L, 1);
    const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
    if (k && spine_secrets_contains(s, k, len)) {
      lua_pushvalue(L, -1);
      push_scrubbed(L, s, k, len);
      lua_rawset(L, renames);
    }
  }
  lua_pushnil(L);
  while (lua_next(L, renames)) {
    lua_pushvalue(L, -2);
    lua_rawget(L, idx); /* the value */
    lua_pushvalue(L, -3);
    lua_pushnil(L);
    lua_rawset(L, idx); /* old key gone */
    lua_rawset(L, idx); /* new key = value */
  }
  lua_pop(L, 1);
}

/* Protected: (light json buf, light secrets) -> rewrites the buffer. */
static int scrub_json_protected(lua_State *L) {
  spine_buf *json = lua_touserdata(L, 1);
  const spine_secrets *s = lua_touserdata(L, 2);
  spine_err e;
  if (spine_codec_decode(L, spine_buf_str(json), json->len, &e)) return luaL_error(L, "%s", e.msg);
  if (lua_type(L, -1) == LUA_TTABLE) {
    scrub_table(L, -1, s, 0);
  } else if (lua_type(L, -1) == LUA_TSTRING) {
    size_t len;
    const char *v = lua_tolstring(L, -1, &len);
    push_scrubbed(L, s, v, len);
  }
  spine_buf_reset(json);
  if (spine_codec_encode(L, -1, "json", json, &e)) return luaL_error(L, "%s", e.msg);
  return 0;
}

int spine_secrets_scrub_json(lua_State *L, const spine_secrets *s, spine_buf *json) {
  int maybe = 0;
  for (int k = 0; s && k < s->n && !maybe; k++)
    maybe = has_escapable(s->v[k]) || spine_secrets_contains(s, spine_buf_str(json), json->len);
  if (!maybe) return 0;
  lua_pushcfunction(L, scrub_json_protected);
  lua_pushlightuserdata(L, json);
  lua_pushlightuserdata(L, (void *)s);
  int st = lua_pcall(L, 2, 0, 0);
  if (st == LUA_OK) return 0;
  lua_pop(L, 1);
  spine_buf_reset(json); /* never hand out what could not be scrubbed */
  return st == LUA_ERRMEM ? SPINE_ENOMEM : SPINE_EINVAL;
}
