/* Fuzzes the canonical codec (codec.c): decode any bytes, and what decodes must round-trip.
 * Decoding either pushes one value or fails leaving the stack as it was; a decoded value either
 * encodes (as text that decodes to an equal value and encodes to the same text again: the
 * encoding is canonical) or is refused as a sparse list (decoding [null, ..., 1] leaves a table
 * the encoder will not spell with that many nulls), leaving the output buffer as it was; the
 * encoder for storage writes the same text, or refuses a string holding a NUL. Input that is
 * not UTF-8 never decodes. What
 * the encoder writes, the strict reader (jsondoc.c) reads too, unless a string holds a NUL,
 * which jsondoc refuses: serve reads an adapter's encoded actions with it. */
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#include "buf.h"
#include "codec.h"
#include "jsondoc.h"

#include "fuzz.h"

static lua_State *L;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  L = luaL_newstate();
  FUZZ_CHECK(L != NULL);
  return 0;
}

/* Whether the values at a and b (absolute indices) are equal: integers and floats apart,
 * tables member by member (raw; the codec makes plain tables). */
static int same(int a, int b, int depth) {
  int t = lua_type(L, a);
  if (t != lua_type(L, b) || depth > SPINE_CODEC_MAX_DEPTH + 1) return 0;
  if (t == LUA_TNUMBER && lua_isinteger(L, a) != lua_isinteger(L, b)) return 0;
  if (t != LUA_TTABLE) return lua_rawequal(L, a, b);
  if (!lua_checkstack(L, 4)) return 0;
  /* every key of a has an equal value in b, and b has no key a lacks */
  int ok = 1;
  lua_pushnil(L);
  while (ok && lua_next(L, a)) {
    lua_pushvalue(L, -2);
    lua_rawget(L, b);
    ok = same(lua_gettop(L) - 1, lua_gettop(L), depth + 1);
    lua_pop(L, 2);
  }
  if (!ok) {
    lua_pop(L, 1); /* the key lua_next left */
    return 0;
  }
  lua_pushnil(L);
  while (ok && lua_next(L, b)) {
    lua_pushvalue(L, -2);
    ok = lua_rawget(L, a) != LUA_TNIL;
    lua_pop(L, 2);
  }
  if (!ok) lua_pop(L, 1);
  return ok;
}

/* Whether canonical JSON text holds a NUL character: the encoder writes it as \u0000 and writes
 * every backslash of a string as an escape of its own. */
static int has_nul(const char *s, size_t n) {
  for (size_t i = 0; i + 1 < n; i++)
    if (s[i] == '\\') {
      if (s[i + 1] == 'u' && n - i >= 6 && !memcmp(s + i + 2, "0000", 4)) return 1;
      i++; /* the escaped character */
    }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  spine_err e;
  spine_err_clear(&e);
  int top = lua_gettop(L);
  int rc = spine_codec_decode(L, (const char *)data, size, &e);
  if (rc) {
    FUZZ_CHECK(rc == SPINE_EINVAL && e.code == SPINE_EINVAL && e.msg[0]);
    FUZZ_CHECK(lua_gettop(L) == top);
    return 0;
  }
  FUZZ_CHECK(lua_gettop(L) == top + 1);
  int v1 = lua_gettop(L);

  spine_buf t1 = SPINE_BUF_INIT, t2 = SPINE_BUF_INIT;
  FUZZ_CHECK(spine_buf_puts(&t1, "prefix:") == 0); /* kept as is when encoding fails */
  rc = spine_codec_encode_json(L, v1, "value", &t1, &e);
  FUZZ_CHECK(lua_gettop(L) == v1);
  if (rc) {
    FUZZ_CHECK(rc == SPINE_EINVAL && strstr(e.msg, "a sparse list"));
    FUZZ_CHECK(t1.len == 7 && !strcmp(spine_buf_str(&t1), "prefix:"));
  } else {
    /* What is stored is the same text, or refused for a NUL, and only then. */
    spine_buf st = SPINE_BUF_INIT;
    spine_err se;
    int src = spine_codec_encode(L, v1, "value", &st, &se);
    FUZZ_CHECK(lua_gettop(L) == v1);
    if (src)
      FUZZ_CHECK(src == SPINE_EINVAL && strstr(se.msg, "NUL byte") &&
                 has_nul(t1.data + 7, t1.len - 7));
    else
      FUZZ_CHECK(st.len == t1.len - 7 && !memcmp(st.data, t1.data + 7, st.len));
    spine_buf_free(&st);
    const char *text = spine_buf_str(&t1) + 7;
    size_t len = t1.len - 7;
    FUZZ_CHECK(spine_codec_decode(L, text, len, &e) == 0);
    int v2 = lua_gettop(L);
    FUZZ_CHECK(v2 == v1 + 1);
    FUZZ_CHECK(same(v1, v2, 0));
    FUZZ_CHECK(lua_gettop(L) == v2);
    FUZZ_CHECK(spine_codec_encode_json(L, v2, "value", &t2, &e) == 0);
    FUZZ_CHECK(t2.len == len && !memcmp(spine_buf_str(&t2), text, len));
    spine_jsondoc *doc = NULL;
    int line;
    spine_err_clear(&e);
    if (spine_jsondoc_parse(text, len, &doc, &line, &e) && !has_nul(text, len)) {
      fprintf(stderr, "jsondoc refuses the codec's %.*s: %s\n", (int)len, text, e.msg);
      abort();
    }
    spine_jsondoc_free(doc);
  }
  spine_buf_free(&t1);
  spine_buf_free(&t2);
  lua_settop(L, top);
  lua_gc(L, LUA_GCCOLLECT, 0);
  return 0;
}
