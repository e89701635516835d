/* Path patterns and query strings of the HTTP API (api_route.h). */
#include "api_route.h"

#include <string.h>

static int cap_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == ':' || c == '-';
}

int spine_api_route_match(const char *pattern, const char *path, size_t len,
                          char caps[SPINE_API_ROUTE_CAPS][SPINE_API_ROUTE_CAP_MAX + 1]) {
  const char *p = pattern, *s = path, *end = path + len;
  int n = 0;
  while (*p) {
    if (*p == '{') {
      const char *close = strchr(p, '}');
      if (!close || n == SPINE_API_ROUTE_CAPS) return -1;
      size_t k = 0;
      while (s < end && *s != '/') {
        if (!cap_char((unsigned char)*s) || k == SPINE_API_ROUTE_CAP_MAX) return -1;
        caps[n][k++] = *s++;
      }
      if (k == 0) return -1;
      caps[n++][k] = '\0';
      p = close + 1;
      continue;
    }
    if (s == end || *s != *p) return -1;
    s++, p++;
  }
  return s == end ? n : -1;
}

static int hex(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Decodes s[0..len) into out[size]; -1 when it does not fit or holds a control character. */
static int decode(const char *s, size_t len, char *out, size_t size) {
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    int c = (unsigned char)s[i];
    if (c == '+') {
      c = ' ';
    } else if (c == '%') {
      if (i + 2 >= len) return -1;
      int hi = hex((unsigned char)s[i + 1]), lo = hex((unsigned char)s[i + 2]);
      if (hi < 0 || lo < 0) return -1;
      c = hi * 16 + lo;
      i += 2;
    }
    if (c < 0x20 || c == 0x7f || o + 1 >= size) return -1;
    out[o++] = (char)c;
  }
  out[o] = '\0';
  return 0;
}

int spine_api_route_query_next(const char **p, const char *end, char *key, size_t ksize,
                               char *value, size_t vsize) {
  while (*p < end && **p == '&')
    (*p)++;
  if (*p >= end) return 0;
  const char *amp = memchr(*p, '&', (size_t)(end - *p));
  const char *stop = amp ? amp : end;
  const char *eq = memchr(*p, '=', (size_t)(stop - *p));
  const char *kend = eq ? eq : stop;
  int rc = decode(*p, (size_t)(kend - *p), key, ksize);
  if (!rc)
    rc = eq ? decode(eq + 1, (size_t)(stop - eq - 1), value, vsize) : decode("", 0, value, vsize);
  *p = stop;
  return rc ? -1 : 1;
}
