/* Canonical JSON for Lua values: the text every durable step records and replay decodes.
 * Owns nothing but the growth of the caller's output buffer. Never runs Lua code (raw access
 * only, no metamethods), never raises while encoding, and on failure leaves neither partial
 * output nor stray stack slots behind. */
#include "codec.h"

#include <lauxlib.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsondoc.h"
#include "log.h"

/* A list may have holes (nil, encoded null: decoding [1,null,3] leaves one) as long as it has
 * no more holes than values plus this slack; past that {[1e9] = 1} would print a billion nulls. */
#define HOLE_SLACK 32
/* Object keys are sorted in a C array: on the C stack up to this many, malloc'd above. */
#define STACK_KEYS 32

/* ---- encoding ---- */

/* One level of the path from the root to the value being encoded. Frames live on the C stack;
 * the chain is walked to find cycles (a table among its own ancestors, at most
 * SPINE_CODEC_MAX_DEPTH of them) and, only when refusing, to spell the field path. */
typedef struct frame {
  const struct frame *up;
  const void *table; /* the table at this level, NULL until it is one */
  const char *key;   /* string key in the parent (the root's name at the root), or NULL */
  size_t keylen;
  lua_Integer index; /* list index in the parent when key == NULL */
} frame;

typedef struct enc {
  lua_State *L;
  spine_buf *out;
  spine_err *e;
  int nul_ok; /* JSON for the wire: a NUL is \u0000; for storage it is refused */
} enc;

typedef struct key {
  const char *s; /* borrowed from the table, which is on the stack and never modified */
  size_t len;
  int slot; /* stack slot holding the key string, for lua_rawget without re-hashing */
} key;

/* Makes room for n more bytes and the NUL; inline so the common case is one compare. */
static inline int room(spine_buf *b, size_t n) {
  if (b->len + n + 1 <= b->cap) return 0;
  return spine_buf_reserve(b, n);
}

static int put(spine_buf *b, const char *s, size_t n) {
  if (room(b, n)) return SPINE_ENOMEM;
  memcpy(b->data + b->len, s, n);
  b->len += n;
  return 0;
}

static int put_integer(spine_buf *b, lua_Integer v) {
  char tmp[24];
  char *p = tmp + sizeof tmp;
  /* Negate in unsigned arithmetic: -LUA_MININTEGER overflows lua_Integer. */
  uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
  do {
    *--p = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0) *--p = '-';
  return put(b, p, (size_t)(tmp + sizeof tmp - p));
}

/* "%.17g" round-trips every double; a float that prints like an integer gets ".0" so that
 * decoding gives a float back (3.0 stays a float, 3 an integer). Assumes the "C" numeric
 * locale, as Lua's own tostring does: the engine never calls setlocale. */
static int put_float(spine_buf *b, double d) {
  char tmp[40];
  int n = snprintf(tmp, sizeof tmp - 2, "%.17g", d);
  if (n <= 0 || (size_t)n >= sizeof tmp - 2) return SPINE_EINVAL;
  if (strspn(tmp, "-0123456789") == (size_t)n) {
    tmp[n++] = '.';
    tmp[n++] = '0';
  }
  return put(b, tmp, (size_t)n);
}

static int is_identifier(const char *s, size_t len) {
  if (len == 0 || (s[0] >= '0' && s[0] <= '9')) return 0;
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
      return 0;
  }
  return 1;
}

/* Spells the path of `fr` ("input.items[3].name", keys that are not identifiers as
 * ["a b"]) into out, truncating quietly. */
static void spell_path(const frame *fr, char *out, size_t size) {
  const frame *chain[SPINE_CODEC_MAX_DEPTH + 2];
  int n = 0;
  for (const frame *f = fr; f && n < (int)(sizeof chain / sizeof chain[0]); f = f->up)
    chain[n++] = f;
  size_t len = 0;
  out[0] = '\0';
  for (int i = n - 1; i >= 0 && len + 1 < size; i--) {
    const frame *f = chain[i];
    int w;
    if (i == n - 1)
      w = snprintf(out + len, size - len, "%.*s", (int)f->keylen, f->key);
    else if (!f->key)
      w = snprintf(out + len, size - len, "[%lld]", (long long)f->index);
    else if (is_identifier(f->key, f->keylen))
      w = snprintf(out + len, size - len, ".%.*s", (int)f->keylen, f->key);
    else
      w = snprintf(out + len, size - len, "[\"%.*s\"]", (int)f->keylen, f->key);
    if (w < 0) break;
    len += (size_t)w;
    if (len >= size) len = size - 1;
  }
}

static int refuse(enc *en, const frame *fr, const char *fmt, ...) SPINE_PRINTF(3, 4);

static int refuse(enc *en, const frame *fr, const char *fmt, ...) {
  if (!en->e) return SPINE_EINVAL;
  spine_err_set(en->e, SPINE_EINVAL, NULL, NULL, "%s", "");
  spell_path(fr, en->e->field, sizeof en->e->field);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(en->e->msg, sizeof en->e->msg, fmt, ap);
  va_end(ap);
  return SPINE_EINVAL;
}

static int key_cmp(const void *a, const void *b) {
  const key *x = a, *y = b;
  size_t n = x->len < y->len ? x->len : y->len;
  int c = memcmp(x->s, y->s, n); /* memcmp compares as unsigned char: bytewise order */
  if (c) return c;
  return (x->len > y->len) - (x->len < y->len);
}

static void sort_keys(key *k, size_t n) {
  if (n > 16) {
    qsort(k, n, sizeof *k, key_cmp);
    return;
  }
  for (size_t i = 1; i < n; i++) { /* small objects, the usual case: no call per compare */
    key t = k[i];
    size_t j = i;
    for (; j > 0 && key_cmp(&k[j - 1], &t) > 0; j--)
      k[j] = k[j - 1];
    k[j] = t;
  }
}

/* The offset of the first byte of `s` that is not well-formed UTF-8, or a NUL unless `nul_ok`;
 * `n` when there is none. */
static size_t bad_text(const unsigned char *s, size_t n, int nul_ok) {
  size_t i = 0;
  while (i < n) {
    if (s[i] < 0x80) {
      if (!s[i] && !nul_ok) return i;
      i++;
      continue;
    }
    size_t len = spine_jsondoc_utf8_len(s + i, n - i);
    if (!len) return i;
    i += len;
  }
  return n;
}

/* Refuses a string JSON cannot carry (not UTF-8), or that jsonb cannot store (a NUL): it
 * would fail the commit of whatever step holds it, and the workflow would go stuck. */
static int check_string(enc *en, const frame *fr, const char *s, size_t len, const char *what) {
  size_t at = bad_text((const unsigned char *)s, len, en->nul_ok);
  if (at == len) return 0;
  if (s[at] == '\0')
    return refuse(en, fr,
                  "%s with a NUL byte at byte %zu (the database stores no NUL in text;"
                  " encode binary data, as base64)",
                  what, at);
  return refuse(en, fr,
                "%s that is not UTF-8 at byte %zu (byte 0x%02x; encode binary data, as"
                " base64)",
                what, at, (unsigned char)s[at]);
}

static int encode_value(enc *en, int idx, int depth, frame *fr);

static int encode_list(enc *en, int idx, int depth, frame *fr, lua_Integer n) {
  lua_State *L = en->L;
  if (put(en->out, "[", 1)) return SPINE_ENOMEM;
  for (lua_Integer i = 1; i <= n; i++) {
    if (i > 1 && put(en->out, ",", 1)) return SPINE_ENOMEM;
    lua_rawgeti(L, idx, i);
    frame child = {fr, NULL, NULL, 0, i};
    int rc = encode_value(en, lua_gettop(L), depth, &child);
    lua_pop(L, 1);
    if (rc) return rc;
  }
  return put(en->out, "]", 1);
}

static int encode_object(enc *en, int idx, int depth, frame *fr, key *keys, size_t n) {
  lua_State *L = en->L;
  sort_keys(keys, n);
  if (put(en->out, "{", 1)) return SPINE_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    int bad = check_string(en, fr, keys[i].s, keys[i].len, "a key");
    if (bad) return bad;
    frame child = {fr, NULL, keys[i].s, keys[i].len, 0};
    if (i > 0 && put(en->out, ",", 1)) return SPINE_ENOMEM;
    if (spine_log_json_string(en->out, keys[i].s, keys[i].len) || put(en->out, ":", 1))
      return SPINE_ENOMEM;
    lua_pushvalue(L, keys[i].slot);
    lua_rawget(L, idx);
    int rc = encode_value(en, lua_gettop(L), depth, &child);
    lua_pop(L, 1);
    if (rc) return rc;
  }
  return put(en->out, "}", 1);
}

/* One pass of lua_next classifies the keys: string keys are kept (pointer in a C array, a copy
 * on the Lua stack), positive integer keys counted, anything else remembered for the refusal.
 * Nothing here can raise: no Lua error can skip the free of a malloc'd key array. */
static int encode_table(enc *en, int idx, int depth, frame *fr) {
  lua_State *L = en->L;
  if (depth > SPINE_CODEC_MAX_DEPTH)
    return refuse(en, fr, "nested deeper than %d levels", SPINE_CODEC_MAX_DEPTH);
  for (const frame *a = fr->up; a; a = a->up)
    if (a->table == fr->table) return refuse(en, fr, "a cycle (the table contains itself)");

  int base = lua_gettop(L);
  key stack_keys[STACK_KEYS];
  key *keys = stack_keys;
  size_t nkeys = 0, cap = STACK_KEYS, nints = 0;
  lua_Integer max = 0;
  int bad_type = LUA_TNONE, rc = 0;
  char bad_num[48] = "";
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    int kt = lua_type(L, -1);
    if (kt == LUA_TSTRING) {
      if (nkeys == cap) {
        size_t ncap = cap * 2;
        key *nk = keys == stack_keys ? malloc(ncap * sizeof *nk) : realloc(keys, ncap * sizeof *nk);
        if (!nk) {
          rc = SPINE_ENOMEM;
          break;
        }
        if (keys == stack_keys) memcpy(nk, keys, nkeys * sizeof *nk);
        keys = nk;
        cap = ncap;
      }
      if (!lua_checkstack(L, 3)) {
        rc = SPINE_ENOMEM;
        break;
      }
      keys[nkeys].s = lua_tolstring(L, -1, &keys[nkeys].len);
      keys[nkeys].slot = lua_gettop(L);
      nkeys++;
      lua_pushvalue(L, -1); /* the copy drives lua_next; the original stays in its slot */
    } else if (kt == LUA_TNUMBER && lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1) {
      lua_Integer k = lua_tointeger(L, -1);
      nints++;
      if (k > max) max = k;
    } else if (bad_type == LUA_TNONE) {
      bad_type = kt;
      if (kt == LUA_TNUMBER && lua_isinteger(L, -1))
        snprintf(bad_num, sizeof bad_num, "%lld", (long long)lua_tointeger(L, -1));
      else if (kt == LUA_TNUMBER)
        snprintf(bad_num, sizeof bad_num, "%.17g", (double)lua_tonumber(L, -1));
    }
  }
  if (rc == SPINE_ENOMEM) {
    if (en->e) spine_err_set(en->e, rc, NULL, NULL, "out of memory encoding JSON");
  } else if (bad_type == LUA_TNUMBER) {
    rc = refuse(en, fr, "a number key %s (JSON objects need string keys, lists the keys 1..n)",
                bad_num);
  } else if (bad_type != LUA_TNONE) {
    rc = refuse(en, fr, "a %s key (JSON objects need string keys)", lua_typename(L, bad_type));
  } else if (nkeys && nints) {
    rc = refuse(en, fr, "a table with both list and string keys (JSON needs one or the other)");
  } else if (nints) {
    if ((uint64_t)max - nints > nints + HOLE_SLACK)
      rc = refuse(en, fr, "a sparse list (keys up to %lld but only %zu values)", (long long)max,
                  nints);
    else
      rc = encode_list(en, idx, depth, fr, max);
  } else if (nkeys) {
    rc = encode_object(en, idx, depth, fr, keys, nkeys);
  } else {
    rc = put(en->out, "{}", 2);
  }
  if (keys != stack_keys) free(keys);
  lua_settop(L, base);
  return rc;
}

static int encode_value(enc *en, int idx, int depth, frame *fr) {
  lua_State *L = en->L;
  switch (lua_type(L, idx)) {
    case LUA_TNIL:
      return put(en->out, "null", 4);
    case LUA_TBOOLEAN:
      return lua_toboolean(L, idx) ? put(en->out, "true", 4) : put(en->out, "false", 5);
    case LUA_TNUMBER: {
      if (lua_isinteger(L, idx)) return put_integer(en->out, lua_tointeger(L, idx));
      double d = (double)lua_tonumber(L, idx);
      if (isnan(d)) return refuse(en, fr, "NaN cannot be encoded (JSON has no NaN)");
      if (isinf(d)) return refuse(en, fr, "infinity cannot be encoded (JSON has no infinity)");
      return put_float(en->out, d);
    }
    case LUA_TSTRING: {
      size_t len;
      const char *s = lua_tolstring(L, idx, &len);
      int bad = check_string(en, fr, s, len, "a string");
      return bad ? bad : spine_log_json_string(en->out, s, len);
    }
    case LUA_TTABLE:
      if (!lua_checkstack(L, 4)) {
        if (en->e) spine_err_set(en->e, SPINE_ENOMEM, NULL, NULL, "out of memory encoding JSON");
        return SPINE_ENOMEM;
      }
      fr->table = lua_topointer(L, idx);
      return encode_table(en, idx, depth + 1, fr);
    default:
      return refuse(en, fr,
                    "a %s cannot be encoded as JSON (only nil, booleans, numbers, "
                    "strings and tables)",
                    luaL_typename(L, idx));
  }
}

static int encode(lua_State *L, int idx, const char *root, spine_buf *out, spine_err *e,
                  int nul_ok) {
  idx = lua_absindex(L, idx);
  int top = lua_gettop(L);
  size_t start = out->len;
  enc en = {L, out, e, nul_ok};
  if (!root) root = "value";
  frame fr = {NULL, NULL, root, strlen(root), 0};
  int rc = encode_value(&en, idx, 0, &fr);
  lua_settop(L, top);
  if (rc == SPINE_ENOMEM && e && e->code != SPINE_ENOMEM)
    spine_err_set(e, SPINE_ENOMEM, NULL, NULL, "out of memory encoding JSON");
  if (rc) out->len = start; /* no partial output: callers may append a fallback */
  if (out->data) out->data[out->len] = '\0';
  return rc;
}

int spine_codec_encode(lua_State *L, int idx, const char *root, spine_buf *out, spine_err *e) {
  return encode(L, idx, root, out, e, 0);
}

int spine_codec_encode_json(lua_State *L, int idx, const char *root, spine_buf *out, spine_err *e) {
  return encode(L, idx, root, out, e, 1);
}

/* ---- decoding ---- */

typedef struct dec {
  lua_State *L;
  const unsigned char *p, *start, *end;
  spine_err *e;
} dec;

static int fail(dec *d, const unsigned char *at, const char *what) {
  return spine_err_set(d->e, SPINE_EINVAL, NULL, NULL, "invalid JSON at byte %zu: %s",
                       (size_t)(at - d->start), what);
}

static void skip_ws(dec *d) {
  while (d->p < d->end && (*d->p == ' ' || *d->p == '\n' || *d->p == '\r' || *d->p == '\t'))
    d->p++;
}

/* Steps over byte c if it comes next: 1, else 0. */
static int accept(dec *d, unsigned char c) {
  if (d->p == d->end || *d->p != c) return 0;
  d->p++;
  return 1;
}

/* Two passes: the first finds the end and validates every escape, so a string without escapes
 * (the usual case) is pushed straight from the input, and the second, writing into a Lua
 * buffer sized to the raw length (unescaping only shrinks), cannot fail half-way. */
static int parse_string(dec *d) {
  const unsigned char *open = d->p, *s = ++d->p, *end = d->end;
  const unsigned char *p = s;
  int escaped = 0;
  for (;;) {
    if (p == end) return fail(d, open, "unterminated string");
    unsigned char c = *p;
    if (c == '"') break;
    if (c < 0x20) return fail(d, p, "control character in string (must be escaped)");
    if (c >= 0x80) {
      size_t len = spine_jsondoc_utf8_len(p, (size_t)(end - p));
      if (!len) return fail(d, p, "not UTF-8");
      p += len;
      continue;
    }
    if (c != '\\') {
      p++;
      continue;
    }
    escaped = 1;
    if (++p == end) return fail(d, open, "unterminated string");
    if (spine_jsondoc_unescape(*p) >= 0) {
      p++;
      continue;
    }
    if (*p != 'u') return fail(d, p - 1, "invalid escape");
    const char *next;
    long cp = spine_jsondoc_read_u((const char *)p, (const char *)end, &next);
    p = (const unsigned char *)next;
    if (cp < 0) return fail(d, p, "invalid \\u escape (4 hex digits; surrogates in pairs)");
  }
  d->p = p + 1;
  size_t rawlen = (size_t)(p - s);
  if (!escaped) {
    lua_pushlstring(d->L, (const char *)s, rawlen);
    return 0;
  }
  luaL_Buffer b;
  char *o = luaL_buffinitsize(d->L, &b, rawlen);
  size_t n = 0;
  for (const unsigned char *q = s; q < p;) {
    if (*q != '\\') {
      o[n++] = (char)*q++;
      continue;
    }
    q++;
    if (*q == 'u') { /* valid: the first pass read it */
      const char *next;
      n += spine_jsondoc_utf8(o + n,
                              spine_jsondoc_read_u((const char *)q, (const char *)end, &next));
      q = (const unsigned char *)next;
    } else {
      o[n++] = (char)spine_jsondoc_unescape(*q++);
    }
  }
  luaL_pushresultsize(&b, n);
  return 0;
}

static int is_digit(const dec *d, const unsigned char *p) {
  return p < d->end && *p >= '0' && *p <= '9';
}

/* Integers (no '.', no exponent) that fit become lua_Integer, parsed here; the rest go through
 * strtod on a NUL-terminated copy, since the input need not be terminated. */
static int parse_number(dec *d) {
  const unsigned char *s = d->p, *p = d->p;
  int neg = *p == '-', isfloat = 0;
  if (neg) p++;
  if (!is_digit(d, p)) return fail(d, s, "invalid number");
  if (*p == '0') {
    p++;
    if (is_digit(d, p)) return fail(d, s, "invalid number (leading zero)");
  } else {
    while (is_digit(d, p))
      p++;
  }
  if (p < d->end && *p == '.') {
    p++;
    if (!is_digit(d, p)) return fail(d, p, "invalid number (digits must follow '.')");
    while (is_digit(d, p))
      p++;
    isfloat = 1;
  }
  if (p < d->end && (*p == 'e' || *p == 'E')) {
    p++;
    if (p < d->end && (*p == '+' || *p == '-')) p++;
    if (!is_digit(d, p)) return fail(d, p, "invalid number (digits must follow the exponent)");
    while (is_digit(d, p))
      p++;
    isfloat = 1;
  }
  d->p = p;
  if (!isfloat) {
    /* Up to 2^63 for a negative number (LUA_MININTEGER), 2^63 - 1 otherwise. */
    uint64_t limit = (uint64_t)LUA_MAXINTEGER + (uint64_t)neg, u = 0;
    const unsigned char *q = s + neg;
    for (; q < p; q++) {
      unsigned digit = (unsigned)(*q - '0');
      if (u > (limit - digit) / 10) break;
      u = u * 10 + digit;
    }
    if (q == p) {
      lua_pushinteger(d->L,
                      neg ? (u == (uint64_t)LUA_MAXINTEGER + 1 ? LUA_MININTEGER : -(lua_Integer)u)
                          : (lua_Integer)u);
      return 0;
    }
  }
  size_t n = (size_t)(p - s);
  char small[64];
  char *tmp = n < sizeof small ? small : malloc(n + 1);
  if (!tmp) return spine_err_set(d->e, SPINE_ENOMEM, NULL, NULL, "out of memory decoding JSON");
  memcpy(tmp, s, n);
  tmp[n] = '\0';
  double v = strtod(tmp, NULL);
  if (tmp != small) free(tmp); /* before any Lua call that could raise */
  if (isinf(v)) return fail(d, s, "number out of range");
  lua_pushnumber(d->L, (lua_Number)v);
  return 0;
}

static int parse_value(dec *d, int depth);

static int parse_array(dec *d, int depth) {
  if (depth > SPINE_CODEC_MAX_DEPTH) return fail(d, d->p, "nested deeper than 64 levels");
  d->p++;
  lua_newtable(d->L);
  skip_ws(d);
  if (accept(d, ']')) return 0;
  for (lua_Integer i = 1;; i++) {
    int rc = parse_value(d, depth);
    if (rc) return rc;
    lua_rawseti(d->L, -2, i); /* a null leaves a hole */
    skip_ws(d);
    if (accept(d, ']')) return 0;
    if (!accept(d, ',')) return fail(d, d->p, "expected ',' or ']'");
  }
}

static int parse_object(dec *d, int depth) {
  if (depth > SPINE_CODEC_MAX_DEPTH) return fail(d, d->p, "nested deeper than 64 levels");
  d->p++;
  lua_newtable(d->L);
  skip_ws(d);
  if (accept(d, '}')) return 0;
  for (;;) {
    skip_ws(d);
    if (d->p == d->end || *d->p != '"') return fail(d, d->p, "expected a string key");
    int rc = parse_string(d);
    if (rc) return rc;
    skip_ws(d);
    if (!accept(d, ':')) return fail(d, d->p, "expected ':'");
    if ((rc = parse_value(d, depth))) return rc;
    lua_rawset(d->L, -3); /* duplicate keys: the last wins */
    skip_ws(d);
    if (accept(d, '}')) return 0;
    if (!accept(d, ',')) return fail(d, d->p, "expected ',' or '}'");
  }
}

static int literal(dec *d, const char *word, size_t len) {
  if ((size_t)(d->end - d->p) < len || memcmp(d->p, word, len) != 0)
    return fail(d, d->p, "expected a value");
  d->p += len;
  return 0;
}

static int parse_value(dec *d, int depth) {
  skip_ws(d);
  if (d->p == d->end) return fail(d, d->p, "expected a value");
  /* Each level holds a table, a key and a value or string buffer. */
  if (!lua_checkstack(d->L, 4)) return fail(d, d->p, "nested too deep for the Lua stack");
  int rc;
  switch (*d->p) {
    case '{':
      return parse_object(d, depth + 1);
    case '[':
      return parse_array(d, depth + 1);
    case '"':
      return parse_string(d);
    case 't':
      if ((rc = literal(d, "true", 4)) == 0) lua_pushboolean(d->L, 1);
      return rc;
    case 'f':
      if ((rc = literal(d, "false", 5)) == 0) lua_pushboolean(d->L, 0);
      return rc;
    case 'n':
      if ((rc = literal(d, "null", 4)) == 0) lua_pushnil(d->L);
      return rc;
    default:
      if (*d->p == '-' || (*d->p >= '0' && *d->p <= '9')) return parse_number(d);
      return fail(d, d->p, "expected a value");
  }
}

int spine_codec_decode(lua_State *L, const char *json, size_t len, spine_err *e) {
  int top = lua_gettop(L);
  const unsigned char *s = (const unsigned char *)(json ? json : "");
  dec d = {L, s, s, s + (json ? len : 0), e};
  int rc = parse_value(&d, 0);
  if (rc == 0) {
    skip_ws(&d);
    if (d.p != d.end) rc = fail(&d, d.p, "unexpected data after the value");
  }
  if (rc) lua_settop(L, top);
  return rc;
}
