/* The JSON document tree of jsondoc.h: a recursive-descent parser that counts lines.
 * Owns every node it makes; on an error it frees what it built and reports the line. */
#include "jsondoc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"

#define MAX_DEPTH 64

typedef struct parser {
  const char *p, *end;
  int line;
  int depth;
  spine_err *e;
} parser;

static int fail(parser *ps, const char *what) {
  return spine_err_set(ps->e, SPINE_EINVAL, NULL, NULL, "%s", what);
}

static void skip_ws(parser *ps) {
  while (ps->p < ps->end) {
    char c = *ps->p;
    if (c == '\n')
      ps->line++;
    else if (c != ' ' && c != '\t' && c != '\r')
      return;
    ps->p++;
  }
}

static spine_jsondoc *node(parser *ps, spine_jsondoc_type t) {
  spine_jsondoc *n = calloc(1, sizeof *n);
  if (n) {
    n->type = t;
    n->line = ps->line;
  }
  return n;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* The 4 hex digits at p (the caller checked there are 4 bytes), or -1. */
static long hex4(const char *p) {
  long v = 0;
  for (int i = 0; i < 4; i++) {
    int h = hexval(p[i]);
    if (h < 0) return -1;
    v = v << 4 | h;
  }
  return v;
}

long spine_jsondoc_read_u(const char *p, const char *end, const char **next) {
  *next = p - 1;
  if (end - p < 5) return -1;
  long cp = hex4(p + 1);
  if (cp < 0) return -1;
  if (cp >= 0xDC00 && cp <= 0xDFFF) return -1; /* a low surrogate with no high one */
  if (cp >= 0xD800 && cp <= 0xDBFF) {
    if (end - p < 11 || p[5] != '\\' || p[6] != 'u') return -1;
    long lo = hex4(p + 7);
    if (lo < 0xDC00 || lo > 0xDFFF) return -1;
    *next = p + 11;
    return 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
  }
  *next = p + 5;
  return cp;
}

size_t spine_jsondoc_utf8(char o[4], long cp) {
  if (cp < 0x80) {
    o[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (char)(0xC0 | cp >> 6);
    o[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (char)(0xE0 | cp >> 12);
    o[1] = (char)(0x80 | (cp >> 6 & 0x3F));
    o[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  o[0] = (char)(0xF0 | cp >> 18);
  o[1] = (char)(0x80 | (cp >> 12 & 0x3F));
  o[2] = (char)(0x80 | (cp >> 6 & 0x3F));
  o[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

int spine_jsondoc_unescape(int esc) {
  static const char letters[] = "\"\\/bfnrt", bytes[] = "\"\\/\b\f\n\r\t";
  const char *at = esc ? strchr(letters, esc) : NULL;
  return at ? bytes[at - letters] : -1;
}

/* At the opening quote; returns a malloc'd string or NULL (error set). */
static char *parse_string(parser *ps) {
  spine_buf b = SPINE_BUF_INIT;
  ps->p++;
  while (ps->p < ps->end && *ps->p != '"') {
    unsigned char c = (unsigned char)*ps->p;
    if (c < 0x20) {
      fail(ps, c == '\n' ? "unterminated string" : "control character in string");
      goto bad;
    }
    if (c >= 0x80) {
      size_t len = spine_jsondoc_utf8_len((const unsigned char *)ps->p, (size_t)(ps->end - ps->p));
      if (!len) {
        fail(ps, "not UTF-8 in string");
        goto bad;
      }
      spine_buf_append(&b, ps->p, len);
      ps->p += len;
      continue;
    }
    if (c != '\\') {
      spine_buf_putc(&b, (char)c);
      ps->p++;
      continue;
    }
    if (ps->end - ps->p < 2) { /* a backslash as the last byte: no closing quote either */
      fail(ps, "unterminated string");
      goto bad;
    }
    char esc = ps->p[1];
    ps->p += 2;
    int simple = spine_jsondoc_unescape(esc);
    if (simple >= 0) {
      spine_buf_putc(&b, (char)simple);
      continue;
    }
    const char *next;
    long cp = esc == 'u' ? spine_jsondoc_read_u(ps->p - 1, ps->end, &next) : -1;
    if (cp < 0) {
      fail(ps, esc == 'u' ? "bad \\u escape in string (4 hex digits; surrogates in pairs)"
                          : "bad escape in string");
      goto bad;
    }
    if (cp == 0) {
      fail(ps, "NUL character in string");
      goto bad;
    }
    ps->p = next;
    char u[4];
    spine_buf_append(&b, u, spine_jsondoc_utf8(u, cp));
  }
  if (ps->p >= ps->end) {
    fail(ps, "unterminated string");
    goto bad;
  }
  ps->p++;
  char *s = strdup(spine_buf_str(&b));
  spine_buf_free(&b);
  if (!s) fail(ps, "out of memory");
  return s;
bad:
  spine_buf_free(&b);
  return NULL;
}

static int parse_value(parser *ps, spine_jsondoc **out);

static int is_digit(const parser *ps, const char *s) {
  return s < ps->end && *s >= '0' && *s <= '9';
}

/* JSON's grammar exactly, -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?, before strtod
 * reads it: strtod alone takes "1.e5", and a scan by character class once took a NUL byte
 * after the digits for part of the number (strchr finds the terminator of its set). */
static int parse_number(parser *ps, spine_jsondoc **out) {
  const char *s = ps->p;
  if (s < ps->end && *s == '-') s++;
  if (!is_digit(ps, s)) return fail(ps, "unexpected character");
  if (*s == '0' && is_digit(ps, s + 1)) return fail(ps, "number with a leading zero");
  while (is_digit(ps, s))
    s++;
  if (s < ps->end && *s == '.') {
    if (!is_digit(ps, ++s)) return fail(ps, "malformed number");
    while (is_digit(ps, s))
      s++;
  }
  if (s < ps->end && (*s == 'e' || *s == 'E')) {
    s++;
    if (s < ps->end && (*s == '+' || *s == '-')) s++;
    if (!is_digit(ps, s)) return fail(ps, "malformed number");
    while (is_digit(ps, s))
      s++;
  }
  char tmp[64];
  size_t n = (size_t)(s - ps->p);
  if (n >= sizeof tmp) return fail(ps, "number too long");
  memcpy(tmp, ps->p, n);
  tmp[n] = '\0';
  /* Too large is an error; too small is 0 or a subnormal, as the codec reads it (strtod's
   * ERANGE says both): the codec writes subnormals, and serve reads its actions with jsondoc. */
  char *endp;
  double v = strtod(tmp, &endp);
  if (*endp || !isfinite(v)) return fail(ps, "malformed number");
  spine_jsondoc *nd = node(ps, SPINE_JSONDOC_NUMBER);
  if (!nd) return fail(ps, "out of memory");
  nd->num = v;
  ps->p = s;
  *out = nd;
  return 0;
}

static int literal(parser *ps, const char *word, spine_jsondoc_type t, int b, spine_jsondoc **out) {
  size_t n = strlen(word);
  if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n))
    return fail(ps, "unexpected word (expected a value)");
  spine_jsondoc *nd = node(ps, t);
  if (!nd) return fail(ps, "out of memory");
  nd->boolean = b;
  ps->p += n;
  *out = nd;
  return 0;
}

/* Parses the members of an array or object (at its opening bracket) into `nd`. */
static int parse_container(parser *ps, spine_jsondoc *nd) {
  int obj = nd->type == SPINE_JSONDOC_OBJECT;
  char close = obj ? '}' : ']';
  if (++ps->depth > MAX_DEPTH) return fail(ps, "nested too deeply");
  ps->p++;
  spine_jsondoc **tail = &nd->child;
  skip_ws(ps);
  if (ps->p < ps->end && *ps->p == close) {
    ps->p++;
    ps->depth--;
    return 0;
  }
  for (;;) {
    char *key = NULL;
    skip_ws(ps);
    if (obj) {
      if (ps->p >= ps->end || *ps->p != '"')
        return fail(ps, ps->p < ps->end && *ps->p == '}' ? "trailing comma in object"
                                                         : "expected a member name in quotes");
      if (!(key = parse_string(ps))) return SPINE_EINVAL;
      for (spine_jsondoc *c = nd->child; c; c = c->next)
        if (!strcmp(c->key, key)) {
          spine_err_set(ps->e, SPINE_EINVAL, NULL, key, "duplicate key \"%s\"", key);
          free(key);
          return SPINE_EINVAL;
        }
      skip_ws(ps);
      if (ps->p >= ps->end || *ps->p != ':') {
        free(key);
        return fail(ps, "expected ':' after a member name");
      }
      ps->p++;
      skip_ws(ps);
    } else if (ps->p < ps->end && *ps->p == ']') {
      return fail(ps, "trailing comma in array");
    }
    spine_jsondoc *v = NULL;
    if (parse_value(ps, &v)) {
      spine_jsondoc_free(v);
      free(key);
      return SPINE_EINVAL;
    }
    v->key = key;
    *tail = v;
    tail = &v->next;
    nd->count++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ',') {
      ps->p++;
      continue;
    }
    if (ps->p < ps->end && *ps->p == close) {
      ps->p++;
      ps->depth--;
      return 0;
    }
    return fail(ps, obj ? "expected ',' or '}'" : "expected ',' or ']'");
  }
}

static int parse_value(parser *ps, spine_jsondoc **out) {
  skip_ws(ps);
  if (ps->p >= ps->end) return fail(ps, "unexpected end of text (expected a value)");
  char c = *ps->p;
  if (c == '{' || c == '[') {
    spine_jsondoc *nd = node(ps, c == '{' ? SPINE_JSONDOC_OBJECT : SPINE_JSONDOC_ARRAY);
    if (!nd) return fail(ps, "out of memory");
    *out = nd; /* owned by the caller even on failure, so it is freed */
    return parse_container(ps, nd);
  }
  if (c == '"') {
    spine_jsondoc *nd = node(ps, SPINE_JSONDOC_STRING);
    if (!nd) return fail(ps, "out of memory");
    if (!(nd->str = parse_string(ps))) {
      free(nd);
      return SPINE_EINVAL;
    }
    *out = nd;
    return 0;
  }
  if (c == 't') return literal(ps, "true", SPINE_JSONDOC_BOOL, 1, out);
  if (c == 'f') return literal(ps, "false", SPINE_JSONDOC_BOOL, 0, out);
  if (c == 'n') return literal(ps, "null", SPINE_JSONDOC_NULL, 0, out);
  if (c == '/') return fail(ps, "comments are not JSON");
  return parse_number(ps, out);
}

int spine_jsondoc_parse(const char *text, size_t len, spine_jsondoc **out, int *line,
                        spine_err *e) {
  parser ps = {text, text + len, 1, 0, e};
  spine_jsondoc *doc = NULL;
  *out = NULL;
  int rc = parse_value(&ps, &doc);
  if (!rc) {
    skip_ws(&ps);
    if (ps.p < ps.end) rc = fail(&ps, "text after the end of the value");
  }
  if (rc) {
    spine_jsondoc_free(doc);
    if (line) *line = ps.line;
    return rc;
  }
  *out = doc;
  return 0;
}

void spine_jsondoc_free(spine_jsondoc *doc) {
  while (doc) {
    spine_jsondoc *next = doc->next;
    spine_jsondoc_free(doc->child);
    free(doc->key);
    free(doc->str);
    free(doc);
    doc = next;
  }
}

const spine_jsondoc *spine_jsondoc_get(const spine_jsondoc *obj, const char *key) {
  if (!obj || obj->type != SPINE_JSONDOC_OBJECT) return NULL;
  for (const spine_jsondoc *c = obj->child; c; c = c->next)
    if (!strcmp(c->key, key)) return c;
  return NULL;
}

void spine_jsondoc_write(const spine_jsondoc *v, spine_buf *out) {
  switch (v->type) {
    case SPINE_JSONDOC_NULL:
      spine_buf_puts(out, "null");
      return;
    case SPINE_JSONDOC_BOOL:
      spine_buf_puts(out, v->boolean ? "true" : "false");
      return;
    case SPINE_JSONDOC_NUMBER: {
      char n[32]; /* the shortest of %.15g and %.17g that reads back as the same number */
      snprintf(n, sizeof n, "%.15g", v->num);
      if (strtod(n, NULL) != v->num) snprintf(n, sizeof n, "%.17g", v->num);
      spine_buf_puts(out, n);
      return;
    }
    case SPINE_JSONDOC_STRING:
      spine_log_json_string(out, v->str, strlen(v->str));
      return;
    case SPINE_JSONDOC_ARRAY:
    case SPINE_JSONDOC_OBJECT:
      break;
  }
  int obj = v->type == SPINE_JSONDOC_OBJECT;
  spine_buf_putc(out, obj ? '{' : '[');
  for (const spine_jsondoc *c = v->child; c; c = c->next) {
    if (c != v->child) spine_buf_putc(out, ',');
    if (obj) {
      spine_log_json_string(out, c->key, strlen(c->key));
      spine_buf_putc(out, ':');
    }
    spine_jsondoc_write(c, out);
  }
  spine_buf_putc(out, obj ? '}' : ']');
}

size_t spine_jsondoc_utf8_len(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  size_t len = c >= 0xC2 && c <= 0xDF   ? 2
               : c >= 0xE0 && c <= 0xEF ? 3
               : c >= 0xF0 && c <= 0xF4 ? 4
                                        : 0;
  if (!len || len > n) return 0;
  unsigned lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80; /* no overlong forms */
  unsigned hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF; /* no surrogates, <= U+10FFFF */
  if (s[1] < lo || s[1] > hi) return 0;
  for (size_t k = 2; k < len; k++)
    if ((s[k] & 0xC0) != 0x80) return 0;
  return len;
}

const char *spine_jsondoc_str(const spine_jsondoc *obj, const char *key, const char *dflt) {
  const spine_jsondoc *v = spine_jsondoc_get(obj, key);
  return v && v->type == SPINE_JSONDOC_STRING ? v->str : dflt;
}

double spine_jsondoc_num(const spine_jsondoc *obj, const char *key, double dflt) {
  const spine_jsondoc *v = spine_jsondoc_get(obj, key);
  return v && v->type == SPINE_JSONDOC_NUMBER ? v->num : dflt;
}

const char *spine_jsondoc_type_name(spine_jsondoc_type t) {
  switch (t) {
    case SPINE_JSONDOC_NULL:
      return "null";
    case SPINE_JSONDOC_BOOL:
      return "a boolean";
    case SPINE_JSONDOC_NUMBER:
      return "a number";
    case SPINE_JSONDOC_STRING:
      return "a string";
    case SPINE_JSONDOC_ARRAY:
      return "an array";
    case SPINE_JSONDOC_OBJECT:
      return "an object";
    default:
      abort();
  }
}
