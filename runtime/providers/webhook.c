/* Webhook verification: the source's rate, provider name, then signature (the adapter's own
 * scheme, or the default timestamped HMAC), then JSON syntax, each refusal answered at once;
 * names the delivery for the handler's dedup. Owns a small Lua state used only to check JSON
 * (codec.c's parser, with its depth limit), never to run code, and the per-source buckets.
 * Secrets are copied to the stack and wiped after use. */
#include "webhook.h"

#include <ctype.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "codec.h"
#include "hmac.h"
#include "log.h"
#include "providers.h"

enum { ACCEPTED, UNKNOWN, UNAUTHORIZED, MALFORMED, OTHER, LIMITED, OUTCOMES };
static const char *const outcome_names[OUTCOMES] = {
    "accepted", "unknown_provider", "bad_signature", "malformed", "refused", "rate_limited"};

struct spine_webhooks {
  lua_State *L;
  spine_webhook_ops ops;
  void *data;
  spine_metric *outcome[OUTCOMES];
  spine_ratelimit *limit; /* NULL: no limit */
  int exempt_loopback;
};

void spine_webhook_error(spine_http_server_exchange *x, int status, const char *kind,
                         const char *msg) {
  spine_buf b = SPINE_BUF_INIT;
  spine_buf_puts(&b, "{\"error\":{\"kind\":");
  spine_log_json_string(&b, kind, strlen(kind));
  spine_buf_puts(&b, ",\"message\":");
  spine_log_json_string(&b, msg, strlen(msg));
  spine_buf_puts(&b, "}}\n");
  spine_http_server_respond(x, status, "application/json", spine_buf_str(&b), b.len);
  spine_buf_free(&b);
}

static void refuse(spine_webhooks *w, int outcome, spine_http_server_exchange *x, int status,
                   const char *kind, const char *msg) {
  spine_metrics_inc(w->outcome[outcome], 1);
  spine_webhook_error(x, status, kind, msg);
}

/* "<unix seconds>": 1 to 12 digits, else -1. */
static long long parse_timestamp(const char *s, size_t len) {
  if (!s || len == 0 || len > 12) return -1;
  long long v = 0;
  for (size_t i = 0; i < len; i++) {
    if (!isdigit((unsigned char)s[i])) return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

/* The default scheme. Returns 0 with the HMAC's hex in hex[65] (the delivery's name: computed,
 * so a replay cannot dodge the dedup by changing the case of the digits), 1 when the provider
 * has no webhook secret (unknown), or -1 with *why when the request does not verify. */
static int verify_default(spine_webhooks *w, const spine_webhook_request *r,
                          spine_http_server_exchange *x, char hex[65], const char **why) {
  char secret[512];
  int klen = w->ops.secret(w->data, r->provider, secret, sizeof secret);
  if (klen < 0) return 1;
  size_t slen, tlen;
  const char *sig = spine_http_server_header(x, SPINE_WEBHOOK_HEADER, &slen);
  const char *ts = spine_http_server_header(x, SPINE_WEBHOOK_TIMESTAMP, &tlen);
  long long t = parse_timestamp(ts, tlen);
  int ok = 0;
  char *msg = t >= 0 && sig ? malloc(tlen + 1 + r->body_len + 1) : NULL;
  if (msg) {
    memcpy(msg, ts, tlen);
    msg[tlen] = '.';
    if (r->body_len) memcpy(msg + tlen + 1, r->body, r->body_len);
    spine_hmac_sha256_hex(secret, (size_t)klen, msg, tlen + 1 + r->body_len, hex);
    free(msg);
    char lower[64];
    for (size_t i = 0; slen == 7 + 64 && i < 64; i++)
      lower[i] = (char)tolower((unsigned char)sig[7 + i]);
    ok = slen == 7 + 64 && !strncmp(sig, "sha256=", 7) && spine_hmac_equal(lower, 64, hex, 64);
  }
  volatile char *v = secret;
  for (size_t i = 0; i < sizeof secret; i++)
    v[i] = 0;
  if (!ok) {
    *why = t < 0 ? "missing or bad " SPINE_WEBHOOK_TIMESTAMP " (expected unix seconds)"
                 : "missing or bad " SPINE_WEBHOOK_HEADER
                   " (expected sha256=<hex HMAC-SHA256 of \"<timestamp>.<body>\">)";
    return -1;
  }
  /* The server's real clock, not the engine's (which a test or a demo may have moved days
   * ahead on a manual clock): the provider signs with its own wall clock, and the window
   * bounds how long a captured request can be replayed, which is a matter of real time. */
  long long now = (long long)time(NULL);
  if (t < now - SPINE_WEBHOOK_TOLERANCE || t > now + SPINE_WEBHOOK_TOLERANCE) {
    *why = SPINE_WEBHOOK_TIMESTAMP " is more than 300 s away from the server's clock";
    return -1;
  }
  return 0;
}

/* 1 when the client is over its rate: then `x` is answered 429. */
static int over_rate(spine_webhooks *w, spine_http_server_exchange *x) {
  if (!w->limit || (w->exempt_loopback && spine_http_server_peer_loopback(x))) return 0;
  struct sockaddr_storage peer;
  unsigned char key[16];
  spine_http_server_peer(x, &peer); /* a connection that cannot say: one key (zeros) for all such */
  spine_ratelimit_key(&peer, key);
  uint64_t wait_ms = spine_ratelimit_take(w->limit, key, spine_http_server_now(x));
  if (!wait_ms) return 0;
  unsigned long long s = (wait_ms + 999) / 1000;
  char after[24], msg[96];
  snprintf(after, sizeof after, "%llu", s);
  snprintf(msg, sizeof msg, "too many webhooks from this address; retry after %llu s", s);
  spine_http_server_add_header(x, "Retry-After", after);
  refuse(w, LIMITED, x, 429, "rate_limited", msg);
  return 1;
}

static void on_webhook(void *data, spine_http_server_exchange *x) {
  spine_webhooks *w = data;
  if (over_rate(w, x)) return; /* first: a refused request costs no verification */
  size_t plen;
  const char *p = spine_http_server_path_rest(x, &plen);
  if (!spine_providers_valid_name(p, plen))
    return refuse(w, UNKNOWN, x, 404, "not_found", "no such provider");
  char provider[SPINE_PROVIDERS_NAME_MAX + 1];
  memcpy(provider, p, plen);
  provider[plen] = '\0';
  spine_buf headers = SPINE_BUF_INIT;
  if (spine_http_server_headers(x, &headers)) {
    spine_buf_free(&headers);
    return refuse(w, OTHER, x, 503, "unavailable", "out of memory; try again");
  }
  spine_webhook_request r = {provider, NULL, NULL, 0, spine_buf_str(&headers), headers.len};
  r.body = spine_http_server_body(x, &r.body_len);

  /* "sig:" + 64 hex or "id:" + the adapter's id */
  char own[SPINE_WEBHOOK_ID_MAX + 1], id[SPINE_WEBHOOK_ID_MAX + 8];
  int rc = w->ops.verify ? w->ops.verify(w->data, &r, own, sizeof own) : 0;
  const char *why = "the request did not verify by the provider's scheme";
  if (rc == 1) {
    snprintf(id, sizeof id, "id:%s", own);
  } else if (rc == 0) {
    char hex[65] = "";
    rc = verify_default(w, &r, x, hex, &why);
    if (rc == 1) rc = SPINE_ENOTFOUND;
    snprintf(id, sizeof id, "sig:%s", hex);
  }
  if (rc == SPINE_ENOTFOUND) {
    spine_buf_free(&headers);
    return refuse(w, UNKNOWN, x, 404, "not_found", "no such provider");
  }
  if (rc < 0) {
    spine_buf_free(&headers);
    spine_log_warn("webhook", "refused: missing or bad signature", "provider", provider, NULL);
    return refuse(w, UNAUTHORIZED, x, 401, "unauthorized", why);
  }
  r.delivery_id = id;

  spine_err e;
  spine_err_clear(&e);
  int top = lua_gettop(w->L);
  rc = spine_codec_decode(w->L, r.body, r.body_len, &e);
  lua_settop(w->L, top);
  if (rc) {
    spine_buf_free(&headers);
    char msg[320];
    snprintf(msg, sizeof msg, "the body is not JSON: %s", e.msg);
    return refuse(w, MALFORMED, x, 400, "invalid_argument", msg);
  }
  spine_metrics_inc(w->outcome[ACCEPTED], 1);
  spine_log_info("webhook", "webhook verified", "provider", provider, NULL);
  w->ops.deliver(w->data, &r, x);
  spine_buf_free(&headers);
}

int spine_webhook_mount(spine_http_server *srv, spine_metrics *metrics,
                        const spine_webhook_ops *ops, void *data, spine_webhooks **out,
                        spine_err *e) {
  *out = NULL;
  spine_webhooks *w = calloc(1, sizeof *w);
  if (!w || !(w->L = luaL_newstate())) {
    free(w);
    return spine_err_set(e, SPINE_ENOMEM, "webhook", NULL, "out of memory");
  }
  w->ops = *ops;
  w->data = data;
  for (int i = 0; metrics && i < OUTCOMES; i++) {
    char name[96];
    snprintf(name, sizeof name, "spine_webhooks_total{outcome=\"%s\"}", outcome_names[i]);
    w->outcome[i] = spine_metrics_find(metrics, name);
    if (!w->outcome[i])
      w->outcome[i] = spine_metrics_add(metrics, SPINE_METRIC_COUNTER, name,
                                        "Inbound webhooks, by what became of them");
  }
  int rc = spine_http_server_route(srv, "POST", SPINE_WEBHOOK_PATH, on_webhook, w);
  if (rc) {
    spine_webhook_free(w);
    return spine_err_set(e, rc, "webhook", NULL, "cannot add the route");
  }
  *out = w;
  return 0;
}

int spine_webhook_rate_limit(spine_webhooks *w, const spine_ratelimit_opts *o,
                             int exempt_loopback) {
  spine_ratelimit *rl = o->rate ? spine_ratelimit_new(o) : NULL;
  if (o->rate && !rl) return SPINE_ENOMEM;
  spine_ratelimit_free(w->limit);
  w->limit = rl;
  w->exempt_loopback = exempt_loopback;
  return 0;
}

void spine_webhook_free(spine_webhooks *w) {
  if (!w) return;
  spine_ratelimit_free(w->limit);
  lua_close(w->L);
  free(w);
}
