/* Fuzzes the HTTP request path of http_server.c: the input is every byte a client sends on one
 * connection (libh2o parses it, as under `spine serve`); routes like serve's read the request
 * through every accessor and answer now, later, or never before the client goes away. Whatever
 * the bytes, the server answers with an HTTP/1.x status or hangs up, frees the connection and
 * crashes nothing; a request that reaches a handler is answered once. FUZZ_SHOW=1 in the
 * environment prints each answer (to check what a new seed reaches). */
#include <string.h>

#include "http_server.h"
#include "log.h"
#include "webhook.h"

#include "fuzz.h"
#include "server.h"

static fuzz_server fs;
static spine_webhooks *hooks;
static uv_timer_t later_timer;
static spine_http_server_exchange *later; /* the answer waiting for later_timer, if any */
static int handled;                       /* handler calls in this input */

/* Every accessor of the request, answered with what they said. */
static void echo(void *data, spine_http_server_exchange *x) {
  (void)data;
  handled++;
  size_t ml, pl, rl, ql, bl, hl;
  const char *m = spine_http_server_method(x, &ml), *p = spine_http_server_path(x, &pl);
  const char *r = spine_http_server_path_rest(x, &rl), *q = spine_http_server_query(x, &ql);
  const char *b = spine_http_server_body(x, &bl), *h = spine_http_server_header(x, "X-Echo", &hl);
  FUZZ_CHECK(m && p && r && b && rl <= pl && (q || ql == 0));
  spine_buf all = SPINE_BUF_INIT, out = SPINE_BUF_INIT;
  FUZZ_CHECK(spine_http_server_headers(x, &all) == 0);
  spine_buf_printf(&out, "%.*s %.*s rest=%.*s query=%.*s body=%zu headers=%zu loopback=%d\n",
                   (int)ml, m, (int)pl, p, (int)rl, r, q ? (int)ql : 0, q ? q : "", bl, all.len,
                   spine_http_server_peer_loopback(x));
  if (h) {
    char v[64];
    snprintf(v, sizeof v, "%.*s", (int)(hl < 63 ? hl : 63), h);
    spine_http_server_add_header(x, "X-Echo", v);
  }
  spine_http_server_respond(x, 200, "text/plain", spine_buf_str(&out), out.len);
  spine_buf_free(&all);
  spine_buf_free(&out);
}

static void later_aborted(void *data) {
  (void)data;
  later = NULL;
  uv_timer_stop(&later_timer);
}

static void on_later(uv_timer_t *t) {
  (void)t;
  if (!later) return;
  spine_http_server_exchange *x = later;
  later = NULL;
  spine_http_server_on_abort(x, NULL, NULL);
  spine_http_server_respond(x, 202, "application/json", "{\"later\":true}", 14);
}

/* Answers on the next turn of the loop, as a handler waiting for the database does. */
static void answer_later(void *data, spine_http_server_exchange *x) {
  (void)data;
  handled++;
  FUZZ_CHECK(later == NULL);
  later = x;
  spine_http_server_on_abort(x, later_aborted, NULL);
  uv_timer_start(&later_timer, on_later, 0, 0);
}

static int hook_secret(void *data, const char *provider, char *out, size_t size) {
  (void)data;
  if (strcmp(provider, "acme")) return -1;
  snprintf(out, size, "fuzz-secret");
  return 11;
}

static void hook_deliver(void *data, const spine_webhook_request *r,
                         spine_http_server_exchange *x) {
  (void)data;
  handled++;
  FUZZ_CHECK(r->delivery_id && !strncmp(r->delivery_id, "sig:", 4));
  spine_http_server_respond(x, 202, "application/json", "{}", 2);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  spine_log_set_level(SPINE_LOG_ERROR); /* not a line per refused webhook */
  spine_http_server_opts o = {0};
  o.max_header = 4096;
  o.max_body = 2048;
  o.request_ms = 1000;
  fuzz_server_start(&fs, &o);
  FUZZ_CHECK(uv_timer_init(&fs.loop, &later_timer) == 0);
  FUZZ_CHECK(spine_http_server_route(fs.srv, "GET", "/healthz", echo, NULL) == 0);
  FUZZ_CHECK(spine_http_server_route(fs.srv, NULL, "/v1/echo/", echo, NULL) == 0);
  FUZZ_CHECK(spine_http_server_route(fs.srv, "POST", "/v1/later/", answer_later, NULL) == 0);
  spine_webhook_ops ops = {hook_secret, NULL, hook_deliver};
  spine_err e;
  spine_err_clear(&e);
  FUZZ_CHECK(spine_webhook_mount(fs.srv, NULL, &ops, NULL, &hooks, &e) == 0);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  spine_buf response = SPINE_BUF_INIT;
  handled = 0;
  fuzz_server_exchange(&fs, data, size, &response);
  if (getenv("FUZZ_SHOW")) fprintf(stderr, "---\n%s\n", spine_buf_str(&response));
  FUZZ_CHECK(later == NULL); /* answered, or aborted when the connection went */
  int status = fuzz_server_status(&response);
  FUZZ_CHECK(response.len == 0 || status >= 100);
  FUZZ_CHECK(handled <= 1); /* one request per connection */
  spine_buf_free(&response);
  return 0;
}
