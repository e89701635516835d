/* The secrets handed to adapters, their forms, and their scrubbing: a byte search over plain
 * text (a bitmap of the forms' first 8 bytes skips the positions where none starts, so a
 * registry's whole set costs about one pass), and for JSON a decode, a walk over every string
 * (keys too) and a canonical encode, so that a form is found whatever escaping the text used.
 * Never copies a secret anywhere but its own list. */
#include "secrets.h"

#include <ctype.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "codec.h"

#define REDACTED SPINE_SECRETS_REDACTED
#define HEAD     8 /* bytes of a form the bitmap hashes; shorter forms are searched everywhere */

static int has_escapable(const char *s, size_t len) {
  for (size_t i = 0; i < len; i++)
    if (s[i] == '"' || s[i] == '\\' || (unsigned char)s[i] < 0x20) return 1;
  return 0;
}

static unsigned head_of(const char *p) {
  uint64_t k;
  memcpy(&k, p, sizeof k);
  return (unsigned)((k * 0x9E3779B97F4A7C15ull) >> 52); /* 12 bits: heads[64] */
}

static int has_head(const spine_secrets *s, const char *p) {
  unsigned h = head_of(p);
  return (int)((s->heads[h >> 6] >> (h & 63)) & 1);
}

/* The form v[len] if the set holds it, else NULL. */
static const char *held(const spine_secrets *s, const char *v, size_t len) {
  for (int i = 0; i < s->n; i++)
    if (s->len[i] == len && !memcmp(s->v[i], v, len)) return s->v[i];
  return NULL;
}

/* Keeps a copy of v[len], longest first; returns it (or the one held), NULL without memory. */
static const char *keep(spine_secrets *s, const char *v, size_t len) {
  const char *old = held(s, v, len);
  if (old) return old;
  if (s->n == s->cap) {
    int cap = s->cap ? 2 * s->cap : 16;
    char **nv = realloc(s->v, (size_t)cap * sizeof *nv);
    if (nv) s->v = nv;
    size_t *nl = nv ? realloc(s->len, (size_t)cap * sizeof *nl) : NULL;
    if (nl) s->len = nl;
    if (!nv || !nl) return NULL;
    s->cap = cap;
  }
  char *copy = malloc(len + 1);
  if (!copy) return NULL;
  memcpy(copy, v, len);
  copy[len] = '\0';
  int at = s->n;
  while (at > 0 && s->len[at - 1] < len) {
    s->v[at] = s->v[at - 1];
    s->len[at] = s->len[at - 1];
    at--;
  }
  s->v[at] = copy;
  s->len[at] = len;
  s->n++;
  if (len >= HEAD) {
    unsigned h = head_of(copy);
    s->heads[h >> 6] |= (uint64_t)1 << (h & 63);
  }
  return copy;
}

/* Keeps a form unless it is too short to scrub safely; 0, or -1 without memory. */
static int keep_form(spine_secrets *s, const char *v, size_t len) {
  if (len < SPINE_SECRETS_MIN_FORM) return 0;
  return keep(s, v, len) ? 0 : -1;
}

/* Every form of v[len] but v itself, into the set. `tmp` has room for the hex (2 * len + 1)
 * and the base64 of len + 2 bytes; `shifted` for len + 2 bytes. */
static int keep_forms(spine_secrets *s, const char *v, size_t len, char *tmp,
                      unsigned char *shifted) {
  int rc = 0;
  for (int upper = 0; upper < 2 && !rc; upper++) {
    for (size_t i = 0; i < len; i++)
      tmp[i] = (char)(upper ? toupper((unsigned char)v[i]) : tolower((unsigned char)v[i]));
    rc = keep_form(s, tmp, len);
  }
  for (int url = 0; url < 2 && !rc; url++) {
    for (int pad = 0; pad < 2 && !rc; pad++)
      rc = keep_form(s, tmp, spine_base64_encode((const unsigned char *)v, len, url, pad, tmp));
    /* v after k other bytes in a longer text: the characters made of v's bits alone, those of
     * bits [8k, 8(k + len)), are the same whatever comes before and after. */
    for (size_t k = 0; k < 3 && !rc; k++) {
      memset(shifted, 0, k);
      memcpy(shifted + k, v, len);
      spine_base64_encode(shifted, k + len, url, 0, tmp);
      size_t from = (8 * k + 5) / 6, to = 8 * (k + len) / 6;
      rc = keep_form(s, tmp + from, to - from);
    }
  }
  static const char hex[2][17] = {"0123456789abcdef", "0123456789ABCDEF"};
  for (int upper = 0; upper < 2 && !rc; upper++) {
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
      tmp[o++] = hex[upper][(unsigned char)v[i] >> 4];
      tmp[o++] = hex[upper][(unsigned char)v[i] & 15];
    }
    rc = keep_form(s, tmp, o);
  }
  return rc;
}

const char *spine_secrets_remember(spine_secrets *s, const char *v, size_t len) {
  if (len == 0) return "";
  const char *old = held(s, v, len);
  if (old) return old;
  if (s->secrets >= SPINE_SECRETS_MAX) return NULL;
  size_t room = 2 * len + 4 * (len + 4) / 3 + 16; /* hex, or base64 of len + 2 bytes */
  char *tmp = malloc(room);
  unsigned char *shifted = malloc(len + 3);
  const char *copy = tmp && shifted ? keep(s, v, len) : NULL;
  int rc = copy ? keep_forms(s, v, len, tmp, shifted) : -1;
  if (tmp) memset(tmp, 0, room);
  if (shifted) memset(shifted, 0, len + 3);
  free(tmp);
  free(shifted);
  if (rc) return NULL; /* the forms kept so far stay: more scrubbing, never less */
  s->secrets++;
  return copy;
}

void spine_secrets_free(spine_secrets *s) {
  for (int i = 0; i < s->n; i++) {
    memset(s->v[i], 0, s->len[i]);
    free(s->v[i]);
  }
  free(s->v);
  free(s->len);
  memset(s, 0, sizeof *s);
}

/* The first form in text[from, len): its length, with its offset in *at; 0 if none. Forms are
 * kept longest first, so at one offset the longest wins. */
static size_t find_secret(const spine_secrets *s, const char *text, size_t len, size_t from,
                          size_t *at) {
  if (!s || !s->n) return 0;
  int shorts = s->n; /* the first form shorter than HEAD: those are tried everywhere */
  while (shorts > 0 && s->len[shorts - 1] < HEAD)
    shorts--;
  for (size_t i = from; i < len; i++) {
    int k = len - i >= HEAD && has_head(s, text + i) ? 0 : shorts;
    for (; k < s->n; k++)
      if (s->len[k] <= len - i && !memcmp(text + i, s->v[k], s->len[k])) {
        *at = i;
        return s->len[k];
      }
  }
  return 0;
}

int spine_secrets_contains(const spine_secrets *s, const char *text, size_t len) {
  size_t at;
  return find_secret(s, text, len, 0, &at) != 0;
}

/* Appends text[len] to out with every form replaced. */
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

/* Pushes text[len] with every form replaced (a Lua buffer: nothing leaks if it raises). */
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
  /* Spine's JSON escapes quotes, backslashes and control bytes (codec.c): a form holding one
   * is not found by a byte search in the text, so it takes the decode, as does one found. */
  int maybe = s && s->n && spine_secrets_contains(s, spine_buf_str(json), json->len);
  for (int k = 0; s && k < s->n && !maybe; k++)
    maybe = has_escapable(s->v[k], s->len[k]);
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
