/* Fuzzes the inbound webhook path as `spine serve` runs it, up to the database: an HTTP request
 * to POST /v1/webhooks/<provider> goes through the server (http_server.c), webhook.c's checks
 * (provider name, the adapter's own webhook.verify or the default timestamped signature, JSON
 * syntax) and the adapter's webhook or webhook.handle run by pctx.c in a real Lua state, whose
 * answer webhook_actions.c checks and secrets.c scrubs. Where serve would then claim the
 * delivery and store the actions (runtime/cli/serve_webhooks.c, in PostgreSQL), the harness
 * checks the actions' shape and answers 202 with them.
 *
 * The input: one byte choosing the provider (bits 0-2: the test adapters fuzz and fuzz_own of
 * tests/fuzz/providers, the shipped gridco and acme_energy, an unknown and a malformed name) and
 * whether to sign the request validly (bit 3: X-Spine-Timestamp now and its X-Spine-Signature,
 * or X-Fuzz-Signature for fuzz_own), then header lines up to the first empty line (malformed
 * ones and those that frame the request are dropped, so the request stays well-formed), then
 * the body. Whatever the input: a signed request to a default-scheme provider is never refused
 * 401, nothing answers 5xx, and no webhook secret appears in an answer. FUZZ_SHOW=1 in the
 * environment prints each request and answer. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "hmac.h"
#include "jsondoc.h"
#include "log.h"
#include "providers.h"
#include "webhook.h"

#include "fuzz.h"
#include "server.h"

static fuzz_server fs;
static spine_webhooks *hooks;
static spine_providers *own, *shipped; /* tests/fuzz/providers, providers */

static const struct {
  const char *provider, *secret;
} secrets[] = {
    {"fuzz", "fuzz-webhook-secret-1"},
    {"fuzz_own", "fuzz-own-webhook-secret-2"},
    {"gridco", "gridco-webhook-secret-3"},
    {"acme_energy", "acme-webhook-secret-4"},
};
static const char *const providers[] = {"fuzz",   "fuzz_own",    "gridco", "acme_energy",
                                        "nobody", "Bad.Name%2f", "fuzz",   "fuzz_own"};

static spine_providers *registry_of(const char *provider) {
  if (spine_providers_has(own, provider)) return own;
  if (spine_providers_has(shipped, provider)) return shipped;
  return NULL;
}

static int hook_secret(void *data, const char *provider, char *out, size_t size) {
  (void)data;
  spine_providers *ps = registry_of(provider);
  return ps ? spine_providers_secret(ps, provider, "webhook_secret", out, size) : -1;
}

static int hook_verify(void *data, const spine_webhook_request *r, char *id, size_t size) {
  (void)data;
  spine_providers *ps = registry_of(r->provider);
  if (!ps) return SPINE_ENOTFOUND;
  spine_provider_webhook w = {r->provider, r->body, r->body_len, r->headers, r->headers_len};
  spine_err e;
  spine_err_clear(&e);
  int rc = spine_providers_webhook_verify(ps, &w, id, size, &e);
  FUZZ_CHECK(rc == 0 || rc == 1 || rc == SPINE_EINVAL);
  if (rc == 1) FUZZ_CHECK(id[0] && strlen(id) < size);
  return rc;
}

static int is_string(const spine_jsondoc *v) {
  return v && v->type == SPINE_JSONDOC_STRING && v->str[0];
}

/* One action as providers.h describes it (what serve would store). */
static void check_action(const spine_jsondoc *a) {
  FUZZ_CHECK(a->type == SPINE_JSONDOC_OBJECT);
  const spine_jsondoc *wf = spine_jsondoc_get(a, "workflow_id");
  const spine_jsondoc *ct = spine_jsondoc_get(a, "contract_id");
  const spine_jsondoc *payload = spine_jsondoc_get(a, "payload");
  const spine_jsondoc *input = spine_jsondoc_get(a, "input");
  const spine_jsondoc *key = spine_jsondoc_get(a, "idempotency_key");
  if (spine_jsondoc_get(a, "signal")) {
    FUZZ_CHECK(is_string(spine_jsondoc_get(a, "signal")));
    FUZZ_CHECK((wf != NULL) != (ct != NULL));
    FUZZ_CHECK(!wf || wf->type == SPINE_JSONDOC_STRING);
    FUZZ_CHECK(!ct || ct->type == SPINE_JSONDOC_STRING);
    FUZZ_CHECK(payload && payload->type == SPINE_JSONDOC_OBJECT && !input && !key);
    FUZZ_CHECK(a->count == 3);
  } else {
    FUZZ_CHECK(is_string(spine_jsondoc_get(a, "start")));
    FUZZ_CHECK(input && input->type == SPINE_JSONDOC_OBJECT && !payload && !wf && !ct);
    FUZZ_CHECK(!key || key->type == SPINE_JSONDOC_STRING);
    FUZZ_CHECK(a->count == 2 + (key != NULL));
  }
}

static void hook_deliver(void *data, const spine_webhook_request *r,
                         spine_http_server_exchange *x) {
  (void)data;
  spine_providers *ps = registry_of(r->provider);
  FUZZ_CHECK(ps != NULL && r->delivery_id);
  FUZZ_CHECK(!strncmp(r->delivery_id, "sig:", 4) || !strncmp(r->delivery_id, "id:", 3));
  spine_provider_webhook w = {r->provider, r->body, r->body_len, r->headers, r->headers_len};
  spine_buf actions = SPINE_BUF_INIT;
  spine_err e;
  spine_err_clear(&e);
  int rc = spine_providers_webhook(ps, &w, &actions, &e);
  if (rc) {
    FUZZ_CHECK(rc == SPINE_EINVAL && e.msg[0] && actions.len == 0);
    spine_webhook_error(x, 400, "invalid_argument", e.msg);
    spine_buf_free(&actions);
    return;
  }
  /* Here serve claims the delivery and stores the actions: the database's part. */
  spine_jsondoc *doc = NULL;
  int line;
  FUZZ_CHECK(spine_jsondoc_parse(spine_buf_str(&actions), actions.len, &doc, &line, NULL) == 0);
  FUZZ_CHECK(doc->type == SPINE_JSONDOC_ARRAY);
  for (const spine_jsondoc *a = doc->child; a; a = a->next)
    check_action(a);
  spine_jsondoc_free(doc);
  spine_http_server_respond(x, 202, "application/json", spine_buf_str(&actions), actions.len);
  spine_buf_free(&actions);
}

static spine_providers *load(const char *dir) {
  spine_providers_opts o = {0};
  o.dir = dir;
  o.environment = "";
  o.quiet = 1;
  spine_providers *ps = NULL;
  spine_err e;
  spine_err_clear(&e);
  if (spine_providers_new(&fs.loop, &o, &ps, &e)) {
    char msg[600];
    fprintf(stderr, "fuzz_webhook: %s\n", spine_err_format(&e, msg, sizeof msg));
    abort();
  }
  return ps;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  spine_log_set_level(SPINE_LOG_ERROR); /* not a line per refused webhook */
  for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++) {
    char name[96], *p;
    snprintf(name, sizeof name, "SPINE_SECRET_%s_WEBHOOK_SECRET", secrets[i].provider);
    for (p = name; *p; p++)
      if (*p >= 'a' && *p <= 'z') *p = (char)(*p - 'a' + 'A');
    FUZZ_CHECK(setenv(name, secrets[i].secret, 1) == 0);
  }
  spine_http_server_opts o = {0};
  o.request_ms = 1000;
  fuzz_server_start(&fs, &o);
  own = load(SPINE_SOURCE_DIR "/tests/fuzz/providers");
  shipped = load(SPINE_SOURCE_DIR "/providers");
  spine_webhook_ops ops = {hook_secret, hook_verify, hook_deliver};
  spine_err e;
  spine_err_clear(&e);
  FUZZ_CHECK(spine_webhook_mount(fs.srv, NULL, &ops, NULL, &hooks, &e) == 0);
  return 0;
}

static int token_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Appends the header line line[len] if it is one ("Name: value", a token and no control
 * characters) and not one that frames the request. */
static void put_header(spine_buf *req, const char *line, size_t len) {
  static const char *const framing[] = {
      "content-length", "transfer-encoding", "host", "connection", "expect",
      "upgrade",        "http2-settings",    "te",   "keep-alive"};
  if (len && line[len - 1] == '\r') len--;
  size_t n = 0;
  while (n < len && token_char((unsigned char)line[n]))
    n++;
  if (n == 0 || n >= len || line[n] != ':') return;
  for (size_t i = n + 1; i < len; i++)
    if (((unsigned char)line[i] < 0x20 && line[i] != '\t') || line[i] == 0x7f) return;
  for (size_t i = 0; i < sizeof framing / sizeof framing[0]; i++)
    if (strlen(framing[i]) == n && !strncasecmp(line, framing[i], n)) return;
  spine_buf_append(req, line, len);
  spine_buf_puts(req, "\r\n");
}

static const char *secret_of(const char *provider) {
  for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++)
    if (!strcmp(secrets[i].provider, provider)) return secrets[i].secret;
  return NULL;
}

static int contains(const char *hay, size_t len, const char *needle) {
  size_t n = strlen(needle);
  for (size_t i = 0; i + n <= len; i++)
    if (!memcmp(hay + i, needle, n)) return 1;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  const char *provider = providers[data[0] & 7];
  int sign = (data[0] & 8) != 0;
  const char *rest = (const char *)data + 1, *end = (const char *)data + size;
  const char *body = rest;
  for (const char *p = rest; p + 1 < end; p++)
    if (p[0] == '\n' && p[1] == '\n') {
      body = p + 2;
      break;
    }
  const char *hend = body == rest ? rest : body - 2;
  size_t blen = (size_t)(end - body);

  spine_buf req = SPINE_BUF_INIT, res = SPINE_BUF_INIT;
  spine_buf_printf(&req, "POST %s%s HTTP/1.1\r\nHost: 127.0.0.1\r\n", SPINE_WEBHOOK_PATH, provider);
  const char *secret = secret_of(provider);
  if (sign && secret) {
    char ts[32], hex[65];
    spine_buf msg = SPINE_BUF_INIT;
    snprintf(ts, sizeof ts, "%lld", (long long)time(NULL));
    spine_buf_printf(&msg, "%s.", ts);
    spine_buf_append(&msg, body, blen);
    spine_hmac_sha256_hex(secret, strlen(secret), msg.data, msg.len, hex);
    spine_buf_printf(&req, "X-Spine-Timestamp: %s\r\nX-Spine-Signature: sha256=%s\r\n", ts, hex);
    spine_hmac_sha256_hex(secret, strlen(secret), body, blen, hex);
    spine_buf_printf(&req, "X-Fuzz-Signature: %s\r\n", hex);
    spine_buf_free(&msg);
  }
  for (const char *p = rest; p < hend;) {
    const char *eol = memchr(p, '\n', (size_t)(hend - p));
    if (!eol) eol = hend;
    put_header(&req, p, (size_t)(eol - p));
    p = eol + 1;
  }
  spine_buf_printf(&req, "Content-Length: %zu\r\n\r\n", blen);
  spine_buf_append(&req, body, blen);
  FUZZ_CHECK(req.data != NULL);

  fuzz_server_exchange(&fs, req.data, req.len, &res);
  int status = fuzz_server_status(&res);
  if (getenv("FUZZ_SHOW")) fprintf(stderr, "---\n%s\n---\n%s\n", req.data, spine_buf_str(&res));
  FUZZ_CHECK(status == 202 || status == 400 || status == 401 || status == 404 || status == 431);
  if (sign && (!strcmp(provider, "fuzz") || !strcmp(provider, "gridco") ||
               !strcmp(provider, "acme_energy")))
    FUZZ_CHECK(status != 401);
  for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++)
    if (!contains((const char *)data, size, secrets[i].secret))
      FUZZ_CHECK(!contains(spine_buf_str(&res), res.len, secrets[i].secret));
  spine_buf_free(&req);
  spine_buf_free(&res);
  return 0;
}
