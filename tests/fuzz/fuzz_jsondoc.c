/* Fuzzes the JSON document reader (jsondoc.c), which reads manifests and the adapters' answers:
 * any bytes either parse into a tree that keeps its own invariants, or fail with a message and
 * a line within the text. jsondoc is the strict reader, so what it accepts the codec (codec.c)
 * must accept too, as the same value. */
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

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

/* The tree's own invariants; returns the depth of `n`. */
static int check_tree(const spine_jsondoc *n, int in_object, int line_max) {
  FUZZ_CHECK(n->line >= 1 && n->line <= line_max);
  FUZZ_CHECK(in_object ? n->key != NULL : n->key == NULL);
  FUZZ_CHECK((n->type == SPINE_JSONDOC_STRING) == (n->str != NULL));
  if (n->type != SPINE_JSONDOC_ARRAY && n->type != SPINE_JSONDOC_OBJECT) {
    FUZZ_CHECK(n->child == NULL && n->count == 0);
    return 0;
  }
  int count = 0, depth = 0;
  for (const spine_jsondoc *c = n->child; c; c = c->next) {
    int d = check_tree(c, n->type == SPINE_JSONDOC_OBJECT, line_max);
    if (d > depth) depth = d;
    if (n->type == SPINE_JSONDOC_OBJECT) {
      FUZZ_CHECK(spine_jsondoc_get(n, c->key) == c); /* keys are unique */
      FUZZ_CHECK(c->line >= n->line);
    }
    count++;
  }
  FUZZ_CHECK(count == n->count);
  return depth + 1;
}

/* The codec's value at the top of L is the same as `n`: same types, numbers, strings (a NUL
 * inside one would make its length differ) and members; a null is nil, a hole in a list. */
static void check_same(const spine_jsondoc *n) {
  switch (n->type) {
    case SPINE_JSONDOC_NULL:
      FUZZ_CHECK(lua_isnil(L, -1));
      return;
    case SPINE_JSONDOC_BOOL:
      FUZZ_CHECK(lua_isboolean(L, -1) && lua_toboolean(L, -1) == n->boolean);
      return;
    case SPINE_JSONDOC_NUMBER:
      FUZZ_CHECK(lua_type(L, -1) == LUA_TNUMBER && (double)lua_tonumber(L, -1) == n->num);
      return;
    case SPINE_JSONDOC_STRING: {
      size_t len;
      const char *s = lua_tolstring(L, -1, &len);
      FUZZ_CHECK(lua_type(L, -1) == LUA_TSTRING && len == strlen(n->str) && !strcmp(s, n->str));
      return;
    }
    case SPINE_JSONDOC_ARRAY:
    case SPINE_JSONDOC_OBJECT: {
      FUZZ_CHECK(lua_istable(L, -1));
      FUZZ_CHECK(lua_checkstack(L, 2));
      lua_Integer i = 1;
      for (const spine_jsondoc *c = n->child; c; c = c->next, i++) {
        if (n->type == SPINE_JSONDOC_ARRAY)
          lua_rawgeti(L, -1, i);
        else
          lua_getfield(L, -1, c->key); /* a plain table: no metamethods to run */
        check_same(c);
        lua_pop(L, 1);
      }
      return;
    }
    default:
      abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *text = (const char *)data;
  int lines = 1;
  for (size_t i = 0; i < size; i++)
    lines += text[i] == '\n';
  spine_jsondoc *doc = (spine_jsondoc *)1;
  int line = 0;
  spine_err e;
  spine_err_clear(&e);
  int rc = spine_jsondoc_parse(text, size, &doc, &line, &e);
  if (rc) {
    FUZZ_CHECK(rc == SPINE_EINVAL && e.code == SPINE_EINVAL && e.msg[0]);
    FUZZ_CHECK(doc == NULL);
    FUZZ_CHECK(line >= 1 && line <= lines);
    return 0;
  }
  FUZZ_CHECK(doc != NULL);
  FUZZ_CHECK(check_tree(doc, 0, lines) <= 64);
  for (size_t i = 0; i < size; i++)
    FUZZ_CHECK(text[i] != '\0'); /* a raw NUL is no JSON */

  spine_err ce;
  spine_err_clear(&ce);
  int top = lua_gettop(L);
  rc = spine_codec_decode(L, text, size, &ce);
  if (rc) fprintf(stderr, "jsondoc accepted what the codec refuses: %s\n", ce.msg);
  FUZZ_CHECK(rc == 0);
  FUZZ_CHECK(lua_gettop(L) == top + 1);
  check_same(doc);
  lua_settop(L, top);
  lua_gc(L, LUA_GCCOLLECT, 0);
  spine_jsondoc_free(doc);
  return 0;
}
