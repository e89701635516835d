/* Fuzzes the HTTP API's reading of what a client sent (runtime/api/api_route.c): the first byte
 * chooses a route pattern, the rest is a request path; the path is matched against the pattern
 * and read as a query string too. A match must be exact: each capture a non-empty run of the
 * allowed characters within its bound, and the pattern with the captures put back gives the path
 * again. Every query pair decodes to text without control characters, within its buffer, and a
 * pair with no escape decodes to itself. */
#include <string.h>

#include "api_route.h"

#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  return 0;
}

static const char *const patterns[] = {
    "/v1/workflows",
    "/v1/workflows/{id}",
    "/v1/workflows/{id}/cancel",
    "/v1/tasks/{id}/resolve",
    "/v1/intents/{name}",
    "/v1/outbox/dead/{id}/redeliver",
    "/v1/{a}/{b}",
};

static int cap_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == ':' || c == '-';
}

static void check_match(const char *pattern, const char *path, size_t len) {
  char caps[SPINE_API_ROUTE_CAPS][SPINE_API_ROUTE_CAP_MAX + 1];
  int n = spine_api_route_match(pattern, path, len, caps);
  FUZZ_CHECK(n >= -1 && n <= SPINE_API_ROUTE_CAPS);
  if (n < 0) return;
  /* The pattern with its captures put back is the path, byte for byte. */
  char back[1024];
  size_t o = 0;
  int i = 0;
  for (const char *p = pattern; *p;) {
    if (*p == '{') {
      FUZZ_CHECK(i < n);
      size_t k = strlen(caps[i]);
      FUZZ_CHECK(k > 0 && k <= SPINE_API_ROUTE_CAP_MAX);
      for (size_t j = 0; j < k; j++)
        FUZZ_CHECK(cap_char((unsigned char)caps[i][j]));
      FUZZ_CHECK(o + k < sizeof back);
      memcpy(back + o, caps[i++], k);
      o += k;
      p = strchr(p, '}') + 1;
    } else {
      FUZZ_CHECK(o + 1 < sizeof back);
      back[o++] = *p++;
    }
  }
  FUZZ_CHECK(i == n && o == len && memcmp(back, path, len) == 0);
}

static void check_query(const char *q, size_t len) {
  const char *p = q, *end = q + len;
  char key[64], value[256];
  for (int pairs = 0;; pairs++) {
    FUZZ_CHECK(pairs <= (int)len); /* each pair moves on */
    const char *start = p;
    while (start < end && *start == '&')
      start++;
    int rc = spine_api_route_query_next(&p, end, key, sizeof key, value, sizeof value);
    FUZZ_CHECK(rc >= -1 && rc <= 1);
    if (rc == 0) {
      FUZZ_CHECK(p >= end);
      return;
    }
    FUZZ_CHECK(p > start && p <= end);
    if (rc < 0) continue;
    size_t kl = strlen(key), vl = strlen(value);
    FUZZ_CHECK(kl < sizeof key && vl < sizeof value);
    for (size_t i = 0; i < kl; i++)
      FUZZ_CHECK((unsigned char)key[i] >= 0x20 && key[i] != 0x7f);
    for (size_t i = 0; i < vl; i++)
      FUZZ_CHECK((unsigned char)value[i] >= 0x20 && value[i] != 0x7f);
    /* A pair without escapes reads as written. */
    size_t raw = (size_t)(p - start);
    if (!memchr(start, '%', raw) && !memchr(start, '+', raw)) {
      const char *eq = memchr(start, '=', raw);
      size_t rk = eq ? (size_t)(eq - start) : raw;
      FUZZ_CHECK(kl == rk && memcmp(key, start, rk) == 0);
      if (eq) FUZZ_CHECK(vl == raw - rk - 1 && memcmp(value, eq + 1, vl) == 0);
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > 900) return 0;
  const char *pattern = patterns[data[0] % (sizeof patterns / sizeof patterns[0])];
  const char *path = (const char *)data + 1;
  check_match(pattern, path, size - 1);
  check_query(path, size - 1);
  return 0;
}
