/* Canonical JSON: exact texts for round trips, key order and escapes; refusals naming their
 * field; decode errors naming their byte. Values are built by plain Lua (luaL_newstate), since
 * the codec must work on any state. */
#include <lauxlib.h>
#include <lualib.h>
#include <math.h>

#include "codec.h"
#include "test.h"

static lua_State *new_state(void) {
  lua_State *L = luaL_newstate();
  ASSERT(L != NULL);
  luaL_openlibs(L);
  return L;
}

/* Pushes the value of the Lua expression `expr`. */
static void push_lua(lua_State *L, const char *expr) {
  char src[4096];
  snprintf(src, sizeof src, "return %s", expr);
  if (luaL_dostring(L, src) != LUA_OK) TEST_FAIL_("lua: %s", lua_tostring(L, -1));
}

/* Encodes the value of `expr` into b (emptied first); returns the code. */
static int encode_expr(lua_State *L, const char *expr, spine_buf *b, spine_err *e) {
  push_lua(L, expr);
  int top = lua_gettop(L);
  spine_buf_reset(b);
  spine_err_clear(e);
  int rc = spine_codec_encode(L, -1, "root", b, e);
  ASSERT_EQ(lua_gettop(L), top);
  lua_pop(L, 1);
  return rc;
}

static const char *encoded(lua_State *L, const char *expr, spine_buf *b) {
  spine_err e;
  int rc = encode_expr(L, expr, b, &e);
  if (rc) TEST_FAIL_("encode %s: %s: %s", expr, e.field, e.msg);
  return spine_buf_str(b);
}

/* Decodes json then encodes the result again. */
static const char *reencoded(lua_State *L, const char *json, spine_buf *b) {
  spine_err e;
  spine_err_clear(&e);
  int top = lua_gettop(L);
  if (spine_codec_decode(L, json, strlen(json), &e)) TEST_FAIL_("decode %s: %s", json, e.msg);
  ASSERT_EQ(lua_gettop(L), top + 1);
  spine_buf_reset(b);
  if (spine_codec_encode(L, -1, "root", b, &e)) TEST_FAIL_("encode: %s: %s", e.field, e.msg);
  lua_pop(L, 1);
  return spine_buf_str(b);
}

TEST_IMPL(codec_roundtrip) {
  lua_State *L = new_state();
  spine_buf b = SPINE_BUF_INIT;
  static const char *const canonical[] = {
      "null",
      "true",
      "0",
      "-9223372036854775808",
      "9223372036854775807",
      "3.0",
      "-0.0",
      "0.10000000000000001",
      "1.0000000000000001e+300",
      "\"\"",
      "{}",
      "{\"a\":[1,2.5,-3,true,false,null,\"x\"],\"b\":{\"c\":{}},\"d\":\"\\u0001\\\"\\\\\\n\\t\","
      "\"e\":\"\xc3\xa9\xf0\x9f\x98\x80\"}",
      "[[[[]]]]", /* inner empty arrays come back as {} */
  };
  for (size_t i = 0; i < sizeof canonical / sizeof canonical[0] - 1; i++)
    ASSERT_STR_EQ(reencoded(L, canonical[i], &b), canonical[i]);
  ASSERT_STR_EQ(reencoded(L, "[[[[]]]]", &b), "[[[{}]]]");

  /* Whitespace and escapes normalise; \u escapes become UTF-8, surrogate pairs one char. */
  ASSERT_STR_EQ(reencoded(L, " {\n\t\"b\" : [ 1 , 2 ] ,\r\"a\":{ } } ", &b),
                "{\"a\":{},\"b\":[1,2]}");
  ASSERT_STR_EQ(reencoded(L, "\"\\u00e9\\ud83d\\ude00\\/\\b\\f\\u0041\\u001F\"", &b),
                "\"\xc3\xa9\xf0\x9f\x98\x80/\\b\\fA\\u001f\"");

  /* Number types survive: integers stay integers, anything with '.' or 'e' is a float, and
   * integers past lua_Integer become floats. */
  const char *nums = "[1, 1.0, 1e2, -0, 9223372036854775808, -9223372036854775809, 2E-3]";
  ASSERT_EQ(spine_codec_decode(L, nums, strlen(nums), NULL), 0);
  static const int is_int[] = {1, 0, 0, 1, 0, 0, 0};
  for (int i = 1; i <= 7; i++) {
    ASSERT_EQ(lua_rawgeti(L, -1, i), LUA_TNUMBER);
    ASSERT_EQ(lua_isinteger(L, -1), is_int[i - 1]);
    lua_pop(L, 1);
  }
  lua_rawgeti(L, -1, 3);
  ASSERT(lua_tonumber(L, -1) == 100.0);
  lua_pop(L, 2);
  ASSERT_STR_EQ(reencoded(L, nums, &b),
                "[1,1.0,100.0,0,9.2233720368547758e+18,-9.2233720368547758e+18,0.002]");

  /* Input need not be NUL-terminated: only len bytes are read. */
  ASSERT_EQ(spine_codec_decode(L, "123456", 3, NULL), 0);
  ASSERT_EQ(lua_tointeger(L, -1), 123);
  ASSERT_EQ(spine_codec_decode(L, "[1.25]xx", 6, NULL), 0);
  ASSERT_EQ(lua_rawgeti(L, -1, 1), LUA_TNUMBER);
  ASSERT(lua_tonumber(L, -1) == 1.25);
  lua_pop(L, 3);

  /* A long escaped string (past luaL_Buffer's inline size) and a long number (past the
   * stack copy for strtod). */
  spine_buf big = SPINE_BUF_INIT;
  spine_buf_putc(&big, '"');
  for (int i = 0; i < 3000; i++)
    spine_buf_puts(&big, "a\\n");
  spine_buf_putc(&big, '"');
  ASSERT_EQ(spine_codec_decode(L, big.data, big.len, NULL), 0);
  size_t n;
  const char *s = lua_tolstring(L, -1, &n);
  ASSERT_EQ(n, 6000);
  ASSERT(s[0] == 'a' && s[1] == '\n' && s[5999] == '\n');
  lua_pop(L, 1);
  spine_buf_reset(&big);
  spine_buf_puts(&big, "0.");
  for (int i = 0; i < 100; i++)
    spine_buf_putc(&big, '0');
  spine_buf_puts(&big, "125");
  ASSERT_EQ(spine_codec_decode(L, big.data, big.len, NULL), 0);
  ASSERT(!lua_isinteger(L, -1));
  ASSERT(fabs(lua_tonumber(L, -1) / 1.25e-101 - 1) < 1e-15);
  lua_pop(L, 1);
  spine_buf_free(&big);

  /* Duplicate keys: the last wins; null members are absent. */
  ASSERT_STR_EQ(reencoded(L, "{\"a\":1,\"a\":2,\"b\":null}", &b), "{\"a\":2}");

  /* The step result the benchmark measures. */
  ASSERT_STR_EQ(encoded(L, "{reference = 'abc-123', amount = 1234, ok = true}", &b),
                "{\"amount\":1234,\"ok\":true,\"reference\":\"abc-123\"}");
  ASSERT_STR_EQ(reencoded(L, spine_buf_str(&b), &b),
                "{\"amount\":1234,\"ok\":true,\"reference\":\"abc-123\"}");

  ASSERT_EQ(lua_gettop(L), 0);
  spine_buf_free(&b);
  lua_close(L);
  return 0;
}

TEST_IMPL(codec_canonical) {
  lua_State *L = new_state();
  spine_buf b = SPINE_BUF_INIT;

  /* Keys sort bytewise: "" < "B" < "a" < "aa" < "b" < "z" < "é" (0xC3 > 'z'). */
  ASSERT_STR_EQ(encoded(L, "{b = 1, a = 2, B = 3, aa = 4, [''] = 5, z = 6, ['\xc3\xa9'] = 7}", &b),
                "{\"\":5,\"B\":3,\"a\":2,\"aa\":4,\"b\":1,\"z\":6,\"\xc3\xa9\":7}");
  /* Insertion order and deleted keys do not matter. */
  const char *order1 = "(function() local t = {} for i = 1, 20 do t['k' .. i] = i end "
                       "t.gone = 1 t.gone = nil return t end)()";
  const char *order2 = "(function() local t = {} for i = 20, 1, -1 do t['k' .. i] = i end "
                       "return t end)()";
  char first[1024];
  snprintf(first, sizeof first, "%s", encoded(L, order1, &b));
  ASSERT_STR_EQ(encoded(L, order2, &b), first);
  ASSERT_STR_CONTAINS(first, "{\"k1\":1,\"k10\":10,\"k11\":11,");

  /* More keys than the on-stack array holds: 100 keys inserted backwards. */
  spine_buf want = SPINE_BUF_INIT;
  spine_buf_putc(&want, '{');
  for (int i = 1; i <= 100; i++)
    spine_buf_printf(&want, "%s\"k%03d\":%d", i > 1 ? "," : "", i, i);
  spine_buf_putc(&want, '}');
  ASSERT_STR_EQ(encoded(L,
                        "(function() local t = {} for i = 100, 1, -1 do "
                        "t[string.format('k%03d', i)] = i end return t end)()",
                        &b),
                spine_buf_str(&want));
  spine_buf_free(&want);

  /* Escapes: control characters as \u00XX (short forms where JSON has them), quote and
   * backslash escaped, '/' and DEL and UTF-8 passed through; a NUL only in JSON for the wire
   * (spine_codec_encode_json), never in what is stored. */
  ASSERT_STR_EQ(encoded(L, "'\\1\\8\\9\\10\\12\\13\\31\\127\"\\\\/\xc3\xa9'", &b),
                "\"\\u0001\\b\\t\\n\\f\\r\\u001f\x7f\\\"\\\\/\xc3\xa9\"");
  push_lua(L, "'a\\0b'");
  spine_buf_reset(&b);
  ASSERT_EQ(spine_codec_encode_json(L, -1, "root", &b, NULL), 0);
  ASSERT_STR_EQ(spine_buf_str(&b), "\"a\\u0000b\"");
  lua_pop(L, 1);
  ASSERT_STR_EQ(encoded(L, "{['a\"\\n'] = 1}", &b), "{\"a\\\"\\n\":1}");

  /* Lists: keys 1..n; holes become null; the empty table is {}. */
  ASSERT_STR_EQ(encoded(L, "{1, 'two', {3}}", &b), "[1,\"two\",[3]]");
  ASSERT_STR_EQ(encoded(L, "{}", &b), "{}");
  ASSERT_STR_EQ(encoded(L, "{1, nil, 3}", &b), "[1,null,3]");
  ASSERT_STR_EQ(encoded(L, "{[2] = 'x'}", &b), "[null,\"x\"]");

  /* Numbers: integers as integers; floats with %.17g, integral ones with ".0". */
  ASSERT_STR_EQ(encoded(L, "{3.0, -0.0, 1e16, 2^53, 0.1, 1/3, math.mininteger, 42}", &b),
                "[3.0,-0.0,10000000000000000.0,9007199254740992.0,0.10000000000000001,"
                "0.33333333333333331,-9223372036854775808,42]");
  ASSERT_STR_EQ(encoded(L, "1e300 * 10", &b), "1.0000000000000001e+301");

  /* Metamethods are never called: raw contents only. */
  ASSERT_STR_EQ(encoded(L,
                        "setmetatable({a = 1}, {__index = function() error('x') end, "
                        "__pairs = function() error('x') end, __len = function() error('x') "
                        "end})",
                        &b),
                "{\"a\":1}");
  ASSERT_STR_EQ(encoded(L, "setmetatable({}, {__index = {a = 1}})", &b), "{}");
  /* A table reached twice (not a cycle) is encoded twice. */
  ASSERT_STR_EQ(encoded(L, "(function() local s = {1} return {a = s, b = s} end)()", &b),
                "{\"a\":[1],\"b\":[1]}");

  /* Metatables are not looked at: values are read raw (an error table may carry metamethods
   * that raise, and the engine encodes errors outside any protected call). */
  const char *hostile = "setmetatable({kind = 'k', list = setmetatable({1, 2}, getmetatable(_G) or "
                        "{__index = error, __len = error, __pairs = error, __newindex = error}), "
                        "n = 1}, {__index = error, __newindex = error, __pairs = error, "
                        "__len = error, __tostring = error, __eq = error, __lt = error, "
                        "__metatable = 'locked'})";
  ASSERT_STR_EQ(encoded(L, hostile, &b), "{\"kind\":\"k\",\"list\":[1,2],\"n\":1}");

  /* Encoding appends to what the buffer holds. */
  spine_buf_reset(&b);
  spine_buf_puts(&b, "x=");
  lua_pushboolean(L, 0);
  ASSERT_EQ(spine_codec_encode(L, -1, "v", &b, NULL), 0);
  lua_pop(L, 1);
  ASSERT_STR_EQ(spine_buf_str(&b), "x=false");

  ASSERT_EQ(lua_gettop(L), 0);
  spine_buf_free(&b);
  lua_close(L);
  return 0;
}

static void refused(lua_State *L, const char *expr, const char *field, const char *msg) {
  spine_buf b = SPINE_BUF_INIT;
  spine_buf_puts(&b, "kept");
  push_lua(L, expr);
  int top = lua_gettop(L);
  spine_err e;
  spine_err_clear(&e);
  int rc = spine_codec_encode(L, -1, "input", &b, &e);
  if (rc != SPINE_EINVAL) TEST_FAIL_("%s: rc %d, got %s", expr, rc, spine_buf_str(&b));
  ASSERT_EQ(e.code, SPINE_EINVAL);
  ASSERT_STR_EQ(e.field, field);
  ASSERT_STR_EQ(e.msg, msg);
  ASSERT_STR_EQ(spine_buf_str(&b), "kept"); /* no partial output */
  ASSERT_EQ(b.len, 4);
  ASSERT_EQ(lua_gettop(L), top);
  /* Without an error record the answer is the same. */
  ASSERT_EQ(spine_codec_encode(L, -1, "input", &b, NULL), SPINE_EINVAL);
  ASSERT_STR_EQ(spine_buf_str(&b), "kept");
  lua_pop(L, 1);
  spine_buf_free(&b);
}

TEST_IMPL(codec_refuses) {
  lua_State *L = new_state();
  refused(L, "{items = {{name = 'a'}, {name = 'b'}, {name = print}}}", "input.items[3].name",
          "a function cannot be encoded as JSON (only nil, booleans, numbers, strings and "
          "tables)");
  refused(L, "{['a b'] = {f = io.stdout}}", "input[\"a b\"].f",
          "a userdata cannot be encoded as JSON (only nil, booleans, numbers, strings and "
          "tables)");
  refused(L, "{co = coroutine.create(print)}", "input.co",
          "a thread cannot be encoded as JSON (only nil, booleans, numbers, strings and "
          "tables)");
  refused(L, "(function() local t = {a = {}} t.a.b = t return t end)()", "input.a.b",
          "a cycle (the table contains itself)");
  refused(L, "(function() local t = {} t[1] = t return t end)()", "input[1]",
          "a cycle (the table contains itself)");
  refused(L, "{x = 0/0}", "input.x", "NaN cannot be encoded (JSON has no NaN)");
  refused(L, "{list = {1, -math.huge}}", "input.list[2]",
          "infinity cannot be encoded (JSON has no infinity)");
  refused(L, "{1, 2, x = 3}", "input",
          "a table with both list and string keys (JSON needs one or the other)");
  refused(L, "{a = {[1.5] = 1}}", "input.a",
          "a number key 1.5 (JSON objects need string keys, lists the keys 1..n)");
  refused(L, "{[0] = 'zero', 'one'}", "input",
          "a number key 0 (JSON objects need string keys, lists the keys 1..n)");
  refused(L, "{[true] = 1}", "input", "a boolean key (JSON objects need string keys)");
  refused(L, "{[100] = 1}", "input", "a sparse list (keys up to 100 but only 1 values)");
  /* What the database cannot store is refused here, naming the value, rather than failing the
   * commit of the step that holds it (the workflow would go stuck). */
  refused(L, "{body = 'ab\\0c'}", "input.body",
          "a string with a NUL byte at byte 2 (the database stores no NUL in text; encode binary "
          "data, as base64)");
  refused(L, "{list = {'ok', 'a\\255'}}", "input.list[2]",
          "a string that is not UTF-8 at byte 1 (byte 0xff; encode binary data, as base64)");
  refused(L, "{a = {['k\\0'] = 1}}", "input.a",
          "a key with a NUL byte at byte 1 (the database stores no NUL in text; encode binary "
          "data, as base64)");
  refused(L, "{s = '\\192\\175'}", "input.s", /* an overlong '/' */
          "a string that is not UTF-8 at byte 0 (byte 0xc0; encode binary data, as base64)");
  refused(L, "{s = '\\237\\160\\128'}", "input.s", /* a surrogate, U+D800 */
          "a string that is not UTF-8 at byte 0 (byte 0xed; encode binary data, as base64)");
  refused(L, "{s = '\\244\\144\\128\\128'}", "input.s", /* U+110000 */
          "a string that is not UTF-8 at byte 0 (byte 0xf4; encode binary data, as base64)");
  refused(L, "{s = 'caf\\195'}", "input.s", /* cut in the middle of é */
          "a string that is not UTF-8 at byte 3 (byte 0xc3; encode binary data, as base64)");
  {
    spine_buf ok = SPINE_BUF_INIT; /* 2-, 3- and 4-byte forms, the highest code point */
    ASSERT_STR_EQ(
        encoded(L,
                "{s = 'caf\\195\\169 \\226\\130\\172 \\240\\159\\152\\128 \\244\\143\\191\\191'}",
                &ok),
        "{\"s\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf\"}");
    spine_buf_free(&ok);
  }
  /* As deep as allowed, then one more. */
  const char *nest = "(function(n) local t = {} for i = 1, n - 1 do t = {t} end return t end)";
  char expr[256];
  spine_buf b = SPINE_BUF_INIT;
  snprintf(expr, sizeof expr, "%s(%d)", nest, SPINE_CODEC_MAX_DEPTH);
  ASSERT_EQ(strncmp(encoded(L, expr, &b), "[[[[", 4), 0);
  ASSERT_EQ(b.len, 2 * SPINE_CODEC_MAX_DEPTH - 2 + 2); /* 63 lists around one {} */
  spine_buf_free(&b);
  snprintf(expr, sizeof expr, "%s(%d)", nest, SPINE_CODEC_MAX_DEPTH + 1);
  /* The path of the 65th table, cut to fit e->field (63 characters and the NUL). */
  refused(L, expr, "input[1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][",
          "nested deeper than 64 levels");
  ASSERT_EQ(lua_gettop(L), 0);
  lua_close(L);
  return 0;
}

static void bad_json(lua_State *L, const char *json, size_t len, const char *msg) {
  spine_err e;
  spine_err_clear(&e);
  int top = lua_gettop(L);
  ASSERT_EQ(spine_codec_decode(L, json, len, &e), SPINE_EINVAL);
  ASSERT_EQ(e.code, SPINE_EINVAL);
  ASSERT_STR_EQ(e.msg, msg);
  ASSERT_EQ(lua_gettop(L), top); /* pushes nothing */
}

#define BAD(json, msg) bad_json(L, json, sizeof json - 1, msg)

TEST_IMPL(codec_decode_errors) {
  lua_State *L = new_state();
  BAD("{\"a\" 1}", "invalid JSON at byte 5: expected ':'");
  BAD("[\"ok\", \"caf\xe9\"]", "invalid JSON at byte 11: not UTF-8"); /* Latin-1 */
  BAD("\"\xc3\"", "invalid JSON at byte 1: not UTF-8");               /* cut short */
  BAD("\"\xed\xa0\x80\"", "invalid JSON at byte 1: not UTF-8");       /* a surrogate */
  BAD("[1,]", "invalid JSON at byte 3: expected a value");
  BAD("{\"a\":1,}", "invalid JSON at byte 7: expected a string key");
  BAD("{a:1}", "invalid JSON at byte 1: expected a string key");
  BAD("[1 2]", "invalid JSON at byte 3: expected ',' or ']'");
  BAD("[1,2", "invalid JSON at byte 4: expected ',' or ']'");
  BAD("{\"a\":1 \"b\":2}", "invalid JSON at byte 7: expected ',' or '}'");
  BAD("// comment\n1", "invalid JSON at byte 0: expected a value");
  BAD("[1] /* c */", "invalid JSON at byte 4: unexpected data after the value");
  BAD("1 2", "invalid JSON at byte 2: unexpected data after the value");
  BAD("", "invalid JSON at byte 0: expected a value");
  BAD("   ", "invalid JSON at byte 3: expected a value");
  BAD("nul", "invalid JSON at byte 0: expected a value");
  BAD("[True]", "invalid JSON at byte 1: expected a value");
  BAD("NaN", "invalid JSON at byte 0: expected a value");
  BAD("01", "invalid JSON at byte 0: invalid number (leading zero)");
  BAD("-", "invalid JSON at byte 0: invalid number");
  BAD("+1", "invalid JSON at byte 0: expected a value");
  BAD(".5", "invalid JSON at byte 0: expected a value");
  BAD("1.", "invalid JSON at byte 2: invalid number (digits must follow '.')");
  BAD("[1.e5]", "invalid JSON at byte 3: invalid number (digits must follow '.')");
  BAD("1e+", "invalid JSON at byte 3: invalid number (digits must follow the exponent)");
  BAD("1e999", "invalid JSON at byte 0: number out of range");
  BAD("\"abc", "invalid JSON at byte 0: unterminated string");
  BAD("[\"abc\\", "invalid JSON at byte 1: unterminated string");
  BAD("\"a\\x\"", "invalid JSON at byte 2: invalid escape");
  BAD("\"a\x01\"", "invalid JSON at byte 2: control character in string (must be escaped)");
  BAD("\"a\nb\"", "invalid JSON at byte 2: control character in string (must be escaped)");
  BAD("\"\\u12g4\"",
      "invalid JSON at byte 1: invalid \\u escape (4 hex digits; surrogates in pairs)");
  BAD("\"\\u12\"",
      "invalid JSON at byte 1: invalid \\u escape (4 hex digits; surrogates in pairs)");
  BAD("\"x\\ud800\"",
      "invalid JSON at byte 2: invalid \\u escape (4 hex digits; surrogates in pairs)");
  BAD("\"\\ud800\\u0041\"",
      "invalid JSON at byte 1: invalid \\u escape (4 hex digits; surrogates in pairs)");
  BAD("\"\\udc00\"",
      "invalid JSON at byte 1: invalid \\u escape (4 hex digits; surrogates in pairs)");
  /* A NUL inside the given length is a byte like any other, not an end. */
  BAD("[1]\0", "invalid JSON at byte 3: unexpected data after the value");
  /* Depth: 64 nested arrays decode, 65 do not. */
  char deep[2 * SPINE_CODEC_MAX_DEPTH + 3];
  int d = SPINE_CODEC_MAX_DEPTH;
  memset(deep, '[', (size_t)d);
  memset(deep + d, ']', (size_t)d);
  ASSERT_EQ(spine_codec_decode(L, deep, 2 * (size_t)d, NULL), 0);
  lua_pop(L, 1);
  d++;
  memset(deep, '[', (size_t)d);
  memset(deep + d, ']', (size_t)d);
  bad_json(L, deep, 2 * (size_t)d, "invalid JSON at byte 64: nested deeper than 64 levels");
  /* NULL error record: same answer, nothing pushed. */
  ASSERT_EQ(spine_codec_decode(L, "[", 1, NULL), SPINE_EINVAL);
  ASSERT_EQ(lua_gettop(L), 0);
  lua_close(L);
  return 0;
}
