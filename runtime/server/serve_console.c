/* The console of `spine serve` (docs/console.md): its page at `/` and its assets under
 * `/console/`, compiled into the binary (runtime/server/console, scripts/embed.cmake). Every
 * answer carries a strict Content-Security-Policy; assets are revalidated by their ETag. It
 * owns no state but the ETags, and never reads a token: the page talks to /v1 itself. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_server.h"
#include "server_internal.h"
#include "sha256.h"

/* No inline script or style, no eval, no framing; the page fetches only its own origin. */
#define CSP                                                                                        \
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "                \
  "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "                      \
  "form-action 'self'; frame-ancestors 'none'"

#define MAX_ASSETS 32

/* The ETag of asset i, a quoted prefix of its SHA-256, computed once at mount. */
static char etags[MAX_ASSETS][20];

static const char *content_type(const char *name) {
  static const struct {
    const char *ext, *type;
  } types[] = {
      {".html", "text/html; charset=utf-8"},     {".css", "text/css; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"}, {".svg", "image/svg+xml"},
      {".txt", "text/plain; charset=utf-8"},
  };
  const char *dot = strrchr(name, '.');
  for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
    if (!strcmp(dot, types[i].ext)) return types[i].type;
  return "application/octet-stream";
}

static void security_headers(spine_http_server_exchange *x) {
  spine_http_server_add_header(x, "Content-Security-Policy", CSP);
  spine_http_server_add_header(x, "Referrer-Policy", "no-referrer");
  spine_http_server_add_header(x, "X-Frame-Options", "DENY");
  spine_http_server_add_header(x, "Cross-Origin-Opener-Policy", "same-origin");
}

/* The asset called `name` (len bytes), or -1. */
static int find(const char *name, size_t len) {
  for (int i = 0; spine_server__console[i].name; i++)
    if (strlen(spine_server__console[i].name) == len &&
        !memcmp(spine_server__console[i].name, name, len))
      return i;
  return -1;
}

static int etag_matches(spine_http_server_exchange *x, const char *etag) {
  size_t len;
  const char *inm = spine_http_server_header(x, "if-none-match", &len);
  size_t n = strlen(etag);
  for (const char *p = inm, *end = inm + (inm ? len : 0); p && p + n <= end; p++)
    if (!memcmp(p, etag, n)) return 1;
  return 0;
}

static void serve(void *data, spine_http_server_exchange *x) {
  (void)data;
  size_t len;
  const char *rest = spine_http_server_path_rest(x, &len);
  int i = len ? find(rest, len) : find("index.html", 10); /* "/" and "/console/": the page */
  security_headers(x);
  if (i < 0) {
    static const char msg[] = "not found\n";
    spine_http_server_respond(x, 404, "text/plain; charset=utf-8", msg, sizeof msg - 1);
    return;
  }
  /* Revalidated every time (no-cache): a new binary's assets are never mixed with old ones. */
  spine_http_server_add_header(x, "Cache-Control", "no-cache");
  spine_http_server_add_header(x, "ETag", etags[i]);
  if (etag_matches(x, etags[i])) {
    spine_http_server_respond(x, 304, NULL, NULL, 0);
    return;
  }
  const char *text = spine_server__console[i].text;
  spine_http_server_respond(x, 200, content_type(spine_server__console[i].name), text,
                            strlen(text));
}

int spine_server__console_mount(spine_http_server *srv) {
  for (int i = 0; spine_server__console[i].name; i++) {
    if (i == MAX_ASSETS) abort(); /* a build with more assets than this file keeps ETags for */
    char hex[65];
    const char *text = spine_server__console[i].text;
    spine_sha256_hex(text, strlen(text), hex);
    snprintf(etags[i], sizeof etags[i], "\"%.16s\"", hex);
  }
  int rc = spine_http_server_route(srv, "GET", "/", serve, NULL); /* "/" alone matches exactly */
  if (!rc) rc = spine_http_server_route(srv, "GET", "/console/", serve, NULL);
  return rc;
}
