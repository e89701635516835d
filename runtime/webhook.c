/* Webhook verification: provider name, then signature, then JSON syntax, each refusal
 * answered at once. Owns a small Lua state used only to check JSON (codec.c's parser, with its
 * depth limit), never to run code. Secrets are copied to the stack and wiped after use. */
#include "webhook.h"

#include <ctype.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "codec.h"
#include "hmac.h"
#include "log.h"

#define MAX_PROVIDER 64

struct spine_webhooks {
  lua_State *L;
  spine_webhook_secret_fn secret;
  spine_webhook_fn fn;
  void *data;
  spine_metric *outcome[5];
};

enum { ACCEPTED, UNKNOWN, UNAUTHORIZED, MALFORMED, OTHER };
static const char *const outcome_names[] = {"accepted", "unknown_provider", "bad_signature",
                                            "malformed", "refused"};

void spine_webhook_error(spine_http_exchange *x, int status, const char *kind, const char *msg) {
  spine_buf b = SPINE_BUF_INIT;
  spine_buf_puts(&b, "{\"error\":{\"kind\":");
  spine_log_json_string(&b, kind, strlen(kind));
  spine_buf_puts(&b, ",\"message\":");
  spine_log_json_string(&b, msg, strlen(msg));
  spine_buf_puts(&b, "}}\n");
  spine_http_respond(x, status, "application/json", spine_buf_str(&b), b.len);
  spine_buf_free(&b);
}

int spine_webhook_env_secret(void *data, const char *provider, char *out, size_t size) {
  (void)data;
  char name[MAX_PROVIDER + 64] = "SPINE_SECRET_";
  size_t n = strlen(name);
  for (const char *p = provider; *p && n < sizeof name - 20; p++)
    name[n++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
  snprintf(name + n, sizeof name - n, "_WEBHOOK_SECRET");
  const char *v = getenv(name);
  if (!v || !*v || strlen(v) >= size) return -1;
  memcpy(out, v, strlen(v) + 1);
  return (int)strlen(v);
}

static int valid_provider(const char *p, size_t len) {
  if (len == 0 || len > MAX_PROVIDER) return 0;
  for (size_t i = 0; i < len; i++)
    if (!(islower((unsigned char)p[i]) || isdigit((unsigned char)p[i]) || p[i] == '_' ||
          p[i] == '-'))
      return 0;
  return 1;
}

static void refuse(spine_webhooks *w, int outcome, spine_http_exchange *x, int status,
                   const char *kind, const char *msg) {
  spine_metric_inc(w->outcome[outcome], 1);
  spine_webhook_error(x, status, kind, msg);
}

static void on_webhook(void *data, spine_http_exchange *x) {
  spine_webhooks *w = data;
  size_t plen, slen, blen;
  const char *p = spine_http_path_rest(x, &plen);
  if (!valid_provider(p, plen)) return refuse(w, UNKNOWN, x, 404, "not_found", "no such provider");
  char provider[MAX_PROVIDER + 1];
  memcpy(provider, p, plen);
  provider[plen] = '\0';
  char secret[512];
  int klen = w->secret(w->data, provider, secret, sizeof secret);
  if (klen < 0) return refuse(w, UNKNOWN, x, 404, "not_found", "no such provider");

  const char *body = spine_http_body(x, &blen);
  const char *sig = spine_http_header(x, SPINE_WEBHOOK_HEADER, &slen);
  int ok = sig && slen > 7 && !strncmp(sig, "sha256=", 7) &&
           spine_hmac_sha256_verify(secret, (size_t)klen, body, blen, sig + 7, slen - 7);
  volatile char *v = secret;
  for (size_t i = 0; i < sizeof secret; i++)
    v[i] = 0;
  if (!ok) {
    spine_log_warn("webhook", "refused: missing or bad signature", "provider", provider, NULL);
    return refuse(w, UNAUTHORIZED, x, 401, "unauthorized",
                  "missing or bad " SPINE_WEBHOOK_HEADER
                  " (expected sha256=<hex HMAC of the body>)");
  }

  spine_err e;
  spine_err_clear(&e);
  int top = lua_gettop(w->L);
  int rc = spine_codec_decode(w->L, body, blen, &e);
  lua_settop(w->L, top);
  if (rc) {
    char msg[320];
    snprintf(msg, sizeof msg, "the body is not JSON: %s", e.msg);
    return refuse(w, MALFORMED, x, 400, "invalid_argument", msg);
  }
  spine_metric_inc(w->outcome[ACCEPTED], 1);
  spine_log_info("webhook", "webhook verified", "provider", provider, NULL);
  w->fn(w->data, provider, body, blen, x);
}

int spine_webhooks_mount(spine_http_server *srv, spine_metrics *metrics,
                         spine_webhook_secret_fn secret, spine_webhook_fn fn, void *data,
                         spine_webhooks **out, spine_err *e) {
  *out = NULL;
  spine_webhooks *w = calloc(1, sizeof *w);
  if (!w || !(w->L = luaL_newstate())) {
    free(w);
    return spine_err_set(e, SPINE_ENOMEM, "webhook", NULL, "out of memory");
  }
  w->secret = secret;
  w->fn = fn;
  w->data = data;
  for (int i = 0; metrics && i < 5; i++) {
    char name[96];
    snprintf(name, sizeof name, "spine_webhooks_total{outcome=\"%s\"}", outcome_names[i]);
    w->outcome[i] = spine_metrics_find(metrics, name);
    if (!w->outcome[i])
      w->outcome[i] = spine_metrics_add(metrics, SPINE_METRIC_COUNTER, name,
                                        "Inbound webhooks, by what became of them");
  }
  int rc = spine_http_server_route(srv, "POST", SPINE_WEBHOOK_PATH, on_webhook, w);
  if (rc) {
    spine_webhooks_free(w);
    return spine_err_set(e, rc, "webhook", NULL, "cannot add the route");
  }
  *out = w;
  return 0;
}

void spine_webhooks_free(spine_webhooks *w) {
  if (!w) return;
  lua_close(w->L);
  free(w);
}
