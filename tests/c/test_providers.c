/* The provider adapters (providers.c, pctx.c, router.c) against a real HTTP server on
 * 127.0.0.1 in the same loop, with the adapters of tests/providers: loading errors, calls over
 * HTTP, fallback and rejection, the hosts p.http may reach, the circuit breaker, the rate
 * limit, timeouts, limits, secrets kept out of outcomes and logs, p.render and p.config,
 * webhooks. */
#include "providers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hmac.h"
#include "http_server.h"
#include "metrics.h"
#include "test.h"

#define DIR    "tests/providers"
#define SECRET "s3cr3t-K3Y-\"quoted\"-123"

typedef struct fixture {
  uv_loop_t loop;
  spine_http_server *srv;
  spine_providers *ps;
  spine_metrics *metrics;
  char base[64];
  int closed;
  int api_status, backup_status;
  int api_hits, backup_hits, hang_hits;
  char idem[128], auth[256], trace[128], body[256];
  spine_http_server_exchange *held;
} fixture;

/* ---- the server ---- */

static void copy_header(spine_http_server_exchange *x, const char *name, char *out, size_t size) {
  size_t len;
  const char *v = spine_http_server_header(x, name, &len);
  snprintf(out, size, "%.*s", v ? (int)len : 0, v ? v : "");
}

static void on_api(void *data, spine_http_server_exchange *x) {
  fixture *f = data;
  f->api_hits++;
  copy_header(x, "Idempotency-Key", f->idem, sizeof f->idem);
  copy_header(x, "Authorization", f->auth, sizeof f->auth);
  copy_header(x, "traceparent", f->trace, sizeof f->trace);
  size_t len;
  const char *b = spine_http_server_body(x, &len);
  snprintf(f->body, sizeof f->body, "%.*s", (int)len, b);
  const char *answer = f->api_status == 201   ? "{\"id\":\"r-1\"}"
                       : f->api_status == 409 ? "{\"reason\":\"duplicate\"}"
                                              : "{}";
  spine_http_server_add_header(x, "X-Seen", "yes");
  spine_http_server_respond(x, f->api_status, "application/json", answer, strlen(answer));
}

static void on_backup(void *data, spine_http_server_exchange *x) {
  fixture *f = data;
  f->backup_hits++;
  spine_http_server_respond(x, f->backup_status, "application/json", "{\"id\":\"b-1\"}", 12);
}

static void on_held_abort(void *data) {
  ((fixture *)data)->held = NULL;
}

static void on_hang(void *data, spine_http_server_exchange *x) {
  fixture *f = data;
  f->hang_hits++;
  f->held = x;
  spine_http_server_on_abort(x, on_held_abort, f);
}

static void setup_opts(fixture *f, spine_providers_opts *o) {
  memset(f, 0, sizeof *f);
  ASSERT_EQ(uv_loop_init(&f->loop), 0);
  spine_http_server_opts so = {0};
  spine_err e;
  ASSERT_EQ(spine_http_server_start(&f->loop, &so, &f->srv, &e), 0);
  ASSERT_EQ(spine_http_server_route(f->srv, "POST", "/api", on_api, f), 0);
  ASSERT_EQ(spine_http_server_route(f->srv, "POST", "/backup", on_backup, f), 0);
  ASSERT_EQ(spine_http_server_route(f->srv, "GET", "/hang", on_hang, f), 0);
  snprintf(f->base, sizeof f->base, "http://127.0.0.1:%d", spine_http_server_port(f->srv));
  f->api_status = 201;
  f->backup_status = 200;
  ASSERT_EQ(setenv("SPINE_SECRET_ACME_API_KEY", SECRET, 1), 0);
  f->metrics = spine_metrics_new();
  o->dir = DIR;
  o->metrics = f->metrics;
  if (spine_providers_new(&f->loop, o, &f->ps, &e)) {
    char msg[512];
    TEST_FAIL_("spine_providers_new: %s", spine_err_format(&e, msg, sizeof msg));
  }
}

static void setup(fixture *f) {
  spine_providers_opts o = {0};
  setup_opts(f, &o);
}

static void on_closed(void *data) {
  ((fixture *)data)->closed++;
}

static void teardown(fixture *f) {
  spine_providers_free(f->ps);
  spine_http_server_close(f->srv, on_closed, f);
  ASSERT_EQ(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
  ASSERT_EQ(f->closed, 1);
  ASSERT_EQ(uv_loop_close(&f->loop), 0);
  spine_metrics_free(f->metrics);
}

/* ---- calls ---- */

typedef struct out {
  int calls, order;
  spine_provider_kind kind;
  char json[4096];
  char channel[32];
} out;

static int finished;

static void on_outcome(void *data, const spine_provider_outcome *o) {
  out *r = data;
  r->calls++;
  r->order = ++finished;
  r->kind = o->kind;
  snprintf(r->json, sizeof r->json, "%.*s", (int)o->json_len, o->json);
  snprintf(r->channel, sizeof r->channel, "%s", o->channel);
}

static void start(fixture *f, const char *provider, const char *op, const char *extra,
                  int64_t timeout_ms, out *r) {
  char args[512];
  snprintf(args, sizeof args, "{\"base\":\"%s\",\"contract\":\"c-9\"%s%s}", f->base,
           extra ? "," : "", extra ? extra : "");
  spine_provider_request q = {0};
  q.provider = provider;
  q.operation = op;
  q.args_json = args;
  q.idempotency_key = "wf-1:3";
  q.traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  q.timeout_ms = timeout_ms;
  memset(r, 0, sizeof *r);
  spine_err e;
  ASSERT_EQ(spine_providers_call(f->ps, &q, on_outcome, r, NULL, &e), 0);
}

static void wait_for(fixture *f, const out *r) {
  while (!r->calls)
    uv_run(&f->loop, UV_RUN_ONCE);
  ASSERT_EQ(r->calls, 1);
}

static void call(fixture *f, const char *op, const char *extra, out *r) {
  start(f, "acme", op, extra, 0, r);
  ASSERT_EQ(r->calls, 0); /* never from inside spine_providers_call */
  wait_for(f, r);
}

static double metric(fixture *f, const char *name) {
  spine_metric *m = spine_metrics_find(f->metrics, name);
  if (!m) TEST_FAIL_("no metric %s", name);
  return spine_metrics_value(m);
}

/* Runs the loop until a timer of `ms` fires: the way these tests let time pass. */
static void on_wait(uv_timer_t *t) {
  *(int *)t->data = 1;
}

static void let_pass(fixture *f, uint64_t ms) {
  uv_timer_t t;
  int fired = 0;
  uv_timer_init(&f->loop, &t);
  t.data = &fired;
  uv_timer_start(&t, on_wait, ms, 0);
  while (!fired)
    uv_run(&f->loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&f->loop, UV_RUN_NOWAIT);
}

/* ---- loading ---- */

static void put_file(const char *dir, const char *name, const char *text) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *fp = fopen(path, "w");
  ASSERT(fp != NULL);
  fputs(text, fp);
  fclose(fp);
}

static void clear_dir(const char *dir) {
  static const char *const names[] = {"a.lua", "x.lua", "Bad.lua", "providers.json",
                                      "secrets.json"};
  char path[512];
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    unlink(path);
  }
}

#define GOOD_X                                                                                     \
  "return { name = 'x', channels = { 'api', 'email' },\n"                                          \
  "  api = { op = function() return 1 end }, email = { op = function() return 2 end } }\n"

/* Loads `dir`, expecting an error; returns its text (static). */
static const char *load_error(const char *dir) {
  static char msg[600];
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  spine_providers_opts o = {0};
  o.dir = dir;
  spine_providers *ps = (spine_providers *)&loop; /* must be reset to NULL */
  spine_err e;
  int rc = spine_providers_new(&loop, &o, &ps, &e);
  ASSERT_NE(rc, 0);
  ASSERT(ps == NULL);
  ASSERT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0); /* nothing was left behind */
  ASSERT_EQ(uv_loop_close(&loop), 0);
  return spine_err_format(&e, msg, sizeof msg);
}

TEST_IMPL(providers_load_errors) {
  char dir[] = "/tmp/spine-providers-XXXXXX";
  ASSERT(mkdtemp(dir) != NULL);
  static const struct {
    const char *file, *text, *want;
  } cases[] = {
      {"x.lua", "return { name = 'y', channels = { 'api' }, api = { op = function() end } }",
       "/x.lua: name: \"y\" differs from the file name (expected \"x\")"},
      {"Bad.lua", GOOD_X, "/Bad.lua: bad provider name \"Bad\""},
      {"x.lua", "return {\n  name = = 'x' }", "/x.lua:2:"},
      {"x.lua", "local t = {}\nerror('boom at load')", "/x.lua:2: boom at load"},
      {"x.lua",
       "return { name = 'x', channels = { 'api', 'email' }, api = { op = function() end }, email = {} }",
       "/x.lua: channel \"email\" lists no operation"},
      {"x.lua", "return { name = 'x', channels = { 'api' }, api = { op = 'no' } }",
       "/x.lua: api.op: an operation must be a function"},
      {"x.lua", "return { name = 'x', channels = { 'api', 'fax' }, api = { op = function() end } }",
       "/x.lua: fax: channel \"fax\" is listed but the adapter has no table fax"},
      {"x.lua", "return { name = 'x', api = { op = function() end } }",
       "/x.lua: channels: expected a list"},
      {"x.lua",
       "return { name = 'x', channels = { 'api' }, api = { op = function() end }, webhook = 1 }",
       "/x.lua: webhook: must be a function"},
      {"x.lua",
       "return { name = 'x', channels = { 'api' }, api = { op = function() end }, webhook = "
       "{ verify = function() end } }",
       "/x.lua: webhook.handle: must be a function"},
      {"x.lua",
       "return { name = 'x', channels = { 'api' }, api = { op = function() end }, webhook = "
       "{ handle = function() end, verify = 'yes' } }",
       "/x.lua: webhook.verify: must be a function"},
      {"x.lua",
       "return { name = 'x', channels = { 'api' }, api = { op = function() end }, webhook = "
       "{ handle = function() end, check = function() end } }",
       "/x.lua: webhook: unknown field \"check\""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    clear_dir(dir);
    /* A good adapter loads first: an error after it must leave nothing behind (LSan). */
    put_file(dir, "a.lua",
             "return { name = 'a', channels = { 'api' }, api = { op = "
             "function() end }, webhook = function() end }");
    put_file(dir, cases[i].file, cases[i].text);
    ASSERT_STR_CONTAINS(load_error(dir), cases[i].want);
  }

  static const struct {
    const char *json, *want;
  } settings[] = {
      {"{ \"x\": ", "providers.json:1: not JSON"},
      {"{\n \"x\": {\"rate_limit\": -2}}",
       "providers.json:2: x.rate_limit: must be a positive number"},
      {"{\"x\": {\"rate_limit\": \"fast\"}}", "x.rate_limit: must be a positive number"},
      {"{\"x\": {\"timeout\": \"soon\"}}", "x.timeout: must be a duration"},
      {"{\"x\": {\"breaker\": {\"failures\": 0}}}", "x.breaker.failures: must be a whole number"},
      {"{\"x\": {\"breaker\": {\"cooldown\": \"1s\", \"probe\": 1}}}",
       "x.breaker.probe: unknown field"},
      {"{\n\n \"y\": {}}", "providers.json:3: y: no adapter"},
      {"{\"x\": {\"channels\": [\"api\", \"fax\"]}}", "x.channels: \"fax\" is not a channel of"},
      {"{\"environments\": {\"prod\": {\"x\": {\"rate_limit\": 0}}}}",
       "environments.prod.x.rate_limit: must be a positive number"},
      {"{\"smtp\": {\"url\": 25}}", "smtp: url must be a non-empty string"},
      {"{\n\"x\": {\"base_url\": \"ftp://files.example\"}}",
       "providers.json:2: x.base_url: \"ftp://files.example\" is not an http:// or https:// URL"},
      {"{\"x\": {\"base_url\": \"api.example/v1\"}}", "x.base_url: \"api.example/v1\" is not"},
      {"{\"x\": {\"allowed_hosts\": \"auth.example\"}}", "x.allowed_hosts: must be a list"},
      {"{\"x\": {\"allowed_hosts\": [\"auth.example\",\n 7]}}",
       "providers.json:2: x.allowed_hosts[1]: must be a string"},
      {"{\"x\": {\"allowed_hosts\": [\"https://auth.example/\"]}}",
       "x.allowed_hosts[0]: \"https://auth.example/\" is not a host name or host:port"},
      {"{\"environments\": {\"prod\": {\"x\": {\"allowed_hosts\": [\"user@auth.example\"]}}}}",
       "environments.prod.x.allowed_hosts[0]: \"user@auth.example\" is not a host name"},
  };
  for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++) {
    clear_dir(dir);
    put_file(dir, "x.lua", GOOD_X);
    put_file(dir, "providers.json", settings[i].json);
    ASSERT_STR_CONTAINS(load_error(dir), settings[i].want);
  }

  /* A secrets file that is not JSON is named, without an excerpt of it. */
  clear_dir(dir);
  put_file(dir, "x.lua", GOOD_X);
  char secrets[300];
  snprintf(secrets, sizeof secrets, "%s/secrets.json", dir);
  put_file(dir, "secrets.json", "{\"x\": {\"k\": \"hunter2\"");
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  spine_providers_opts o = {0};
  o.dir = dir;
  o.secrets_file = secrets;
  spine_providers *ps;
  spine_err e;
  ASSERT_EQ(spine_providers_new(&loop, &o, &ps, &e), SPINE_EINVAL);
  char msg[600];
  ASSERT_STR_CONTAINS(spine_err_format(&e, msg, sizeof msg), "secrets.json:1: not JSON");
  ASSERT(strstr(msg, "hunter2") == NULL);

  /* The same folder loads once fixed; settings and the secrets file apply. */
  put_file(dir, "secrets.json", "{\"x\": {\"k\": \"hunter2\"}}");
  put_file(dir, "providers.json", "{\"x\": {\"channels\": [\"email\"], \"rate_limit\": 5}}");
  ASSERT_EQ(spine_providers_new(&loop, &o, &ps, &e), 0);
  ASSERT(spine_providers_has(ps, "x"));
  ASSERT(!spine_providers_has(ps, "y"));
  char value[64];
  ASSERT_EQ(spine_providers_secret(ps, "x", "k", value, sizeof value), 7);
  ASSERT_STR_EQ(value, "hunter2");
  ASSERT_EQ(setenv("SPINE_SECRET_X_K", "from-env", 1), 0);
  ASSERT_EQ(spine_providers_secret(ps, "x", "k", value, sizeof value), 8);
  ASSERT_STR_EQ(value, "from-env");
  ASSERT_EQ(spine_providers_secret(ps, "x", "k", value, 4), -1); /* too small: nothing */
  ASSERT_EQ(spine_providers_secret(ps, "x", "none", value, sizeof value), -1);
  unsetenv("SPINE_SECRET_X_K");
  /* Metrics attached after creation: every provider and channel is exposed. */
  spine_metrics *m = spine_metrics_new();
  spine_providers_set_metrics(ps, m);
  spine_buf text = SPINE_BUF_INIT;
  ASSERT_EQ(spine_metrics_render(m, &text), 0);
  ASSERT_STR_CONTAINS(spine_buf_str(&text), "spine_provider_calls_total{provider=\"x\","
                                            "channel=\"email\",outcome=\"ok\"} 0\n");
  ASSERT_STR_CONTAINS(spine_buf_str(&text),
                      "spine_provider_breaker_state{provider=\"x\",channel=\"email\"} 0\n");
  ASSERT_STR_CONTAINS(spine_buf_str(&text), "spine_provider_rate_limited_total{provider=\"x\"} 0");
  ASSERT_STR_CONTAINS(spine_buf_str(&text), "spine_provider_calls_in_flight 0\n");
  /* providers.json kept only the email channel. */
  ASSERT(strstr(spine_buf_str(&text), "channel=\"api\"") == NULL);
  spine_buf_free(&text);
  spine_providers_free(ps);
  ASSERT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ASSERT_EQ(uv_loop_close(&loop), 0);
  spine_metrics_free(m);
  clear_dir(dir);
  ASSERT_EQ(rmdir(dir), 0);
  return 0;
}

/* ---- one call over HTTP ---- */

TEST_IMPL(providers_http_call) {
  fixture f;
  setup(&f);
  out r;
  call(&f, "submit", NULL, &r);
  ASSERT_EQ(r.kind, SPINE_PROVIDER_OK);
  ASSERT_STR_EQ(r.json, "{\"channel\":\"api\",\"reference\":\"r-1\",\"seen\":\"yes\"}");
  ASSERT_STR_EQ(r.channel, "api");
  ASSERT_EQ(f.api_hits, 1);
  ASSERT_EQ(f.backup_hits, 0);
  ASSERT_STR_EQ(f.idem, "wf-1:3");
  ASSERT_STR_EQ(f.auth, "Bearer " SECRET);
  ASSERT_STR_EQ(f.trace, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  ASSERT_STR_EQ(f.body, "{\"contract\":\"c-9\"}");
  ASSERT_EQ(metric(&f, "spine_provider_calls_total{provider=\"acme\",channel=\"api\","
                       "outcome=\"ok\"}"),
            1);

  /* Refused at once, without a callback. */
  spine_provider_request q = {0};
  q.provider = "nobody";
  q.operation = "submit";
  spine_err e;
  ASSERT_EQ(spine_providers_call(f.ps, &q, on_outcome, &r, NULL, &e), SPINE_ENOTFOUND);
  ASSERT_STR_CONTAINS(e.msg, "no provider \"nobody\"");
  q.provider = "acme";
  q.operation = "explode";
  ASSERT_EQ(spine_providers_call(f.ps, &q, on_outcome, &r, NULL, &e), SPINE_ENOTFOUND);
  ASSERT_STR_CONTAINS(e.msg, "operation \"explode\"");
  q.operation = "submit";
  q.args_json = "[1]";
  ASSERT_EQ(spine_providers_call(f.ps, &q, on_outcome, &r, NULL, &e), SPINE_EINVAL);
  q.args_json = "{\"a\":";
  ASSERT_EQ(spine_providers_call(f.ps, &q, on_outcome, &r, NULL, &e), SPINE_EINVAL);
  ASSERT_EQ(r.calls, 1);
  ASSERT_EQ(spine_providers_running(f.ps), 0);
  teardown(&f);
  return 0;
}

/* ---- channels in order ---- */

TEST_IMPL(providers_fallback_and_reject) {
  fixture f;
  setup(&f);
  out r;
  /* 503 on the API: the backup channel answers. */
  f.api_status = 503;
  call(&f, "submit", NULL, &r);
  ASSERT_EQ(r.kind, SPINE_PROVIDER_OK);
  ASSERT_STR_EQ(r.channel, "backup");
  ASSERT_STR_CONTAINS(r.json, "\"reference\":\"backup:b-1\"");
  ASSERT_EQ(f.api_hits, 1);
  ASSERT_EQ(f.backup_hits, 1);

  /* A rejection on the API stops there: the backup never sees the call. */
  f.api_status = 409;
  call(&f, "submit", NULL, &r);
  ASSERT_EQ(r.kind, SPINE_PROVIDER_REJECTED);
  ASSERT_STR_EQ(r.channel, "api");
  ASSERT_STR_EQ(r.json, "{\"attempts\":[{\"channel\":\"api\",\"code\":\"rejected\",\"message\":"
                        "\"activation refused\"}],\"channel\":\"api\",\"code\":\"rejected\","
                        "\"details\":{\"reason\":\"duplicate\"},\"kind\":\"rejected\",\"message\":"
                        "\"activation refused\",\"operation\":\"submit\",\"provider\":\"acme\"}");
  ASSERT_EQ(f.api_hits, 2);
  ASSERT_EQ(f.backup_hits, 1);

  /* Both transient: the outcome is transient and lists both attempts. */
  f.api_status = 503;
  f.backup_status = 502;
  call(&f, "submit", NULL, &r);
  ASSERT_EQ(r.kind, SPINE_PROVIDER_TRANSIENT);
  ASSERT_STR_EQ(r.channel, "backup");
  ASSERT_STR_CONTAINS(r.json, "\"attempts\":[{\"channel\":\"api\",\"code\":\"transient\","
                              "\"message\":\"upstream 503\"},{\"channel\":\"backup\",\"code\":"
                              "\"transient\",\"message\":\"backup 502\"}]");
  ASSERT_STR_CONTAINS(r.json, "\"kind\":\"transient\"");
  ASSERT_EQ(f.api_hits, 3);
  ASSERT_EQ(f.backup_hits, 2);
  teardown(&f);
  return 0;
}

/* ---- the circuit breaker ---- */

#define BREAKER "spine_provider_breaker_state{provider=\"acme\",channel=\"api\"}"

TEST_IMPL(providers_breaker) {
  fixture f;
  setup(&f);
  out r, r2;
  f.api_status = 503;
  for (int i = 0; i < 3; i++) { /* breaker.failures = 3 in providers.json */
    ASSERT_EQ(metric(&f, BREAKER), 0);
    call(&f, "submit", NULL, &r);
    ASSERT_EQ(r.kind, SPINE_PROVIDER_OK);
    ASSERT_STR_EQ(r.channel, "backup");
  }
  ASSERT_EQ(f.api_hits, 3);
  ASSERT_EQ(metric(&f, BREAKER), 1);

  /* Open: the API is skipped (the server sees nothing) and the attempt says why. */
  f.backup_status = 503;
  call(&f, "submit", NULL, &r);
  ASSERT_EQ(r.kind, SPINE_PROVIDER_TRANSIENT);
  ASSERT_EQ(f.api_hits, 3);
  ASSERT_EQ(f.backup_hits, 4);
  ASSERT_STR_CONTAINS(r.json, "{\"channel\":\"api\",\"code\":\"circuit_open\"");
  ASSERT_EQ(metric(&f, "spine_provider_calls_total{provider=\"acme\",channel=\"api\","
                       "outcome=\"circuit_open\"}"),
            1);
  f.backup_status = 200;

  /* After the cool-down (400 ms) it is half-open: of two calls, exactly one probes. */
  let_pass(&f, 450);
  ASSERT_EQ(metric(&f, BREAKER), 2);
  start(&f, "acme", "submit", NULL, 0, &r);
  start(&f, "acme", "submit", NULL, 0, &r2);
  wait_for(&f, &r);
  wait_for(&f, &r2);
  ASSERT_EQ(f.api_hits, 4);
  ASSERT_STR_EQ(r.channel, "backup");
  ASSERT_STR_EQ(r2.channel, "backup");
  ASSERT_EQ(metric(&f, BREAKER), 1); /* the probe failed: open again */
  call(&f, "submit", NULL, &r);
  ASSERT_EQ(f.api_hits, 4);

  /* The next probe succeeds: closed, and calls go to the API again. */
  let_pass(&f, 450);
  f.api_status = 201;
  call(&f, "submit", NULL, &r);
  ASSERT_STR_EQ(r.channel, "api");
  ASSERT_EQ(f.api_hits, 5);
  ASSERT_EQ(metric(&f, BREAKER), 0);
  call(&f, "submit", NULL, &r);
  ASSERT_STR_EQ(r.channel, "api");
  ASSERT_EQ(f.api_hits, 6);
  ASSERT_EQ(metric(&f, "spine_provider_breaker_state{provider=\"acme\",channel=\"backup\"}"), 0);
  teardown(&f);
  return 0;
}

/* ---- the rate limit ---- */

TEST_IMPL(providers_rate_limit) {
  fixture f;
  setup(&f);
  out r[5];
  finished = 0;
  for (int i = 0; i < 5; i++) {
    char extra[32];
    snprintf(extra, sizeof extra, "\"n\":%d", i + 1);
    start(&f, "slow", "ping", extra, 0, &r[i]);
  }
  ASSERT_EQ(spine_providers_running(f.ps), 5);
  ASSERT_EQ(metric(&f, "spine_provider_calls_in_flight"), 5);
  for (int i = 0; i < 5; i++)
    wait_for(&f, &r[i]);
  for (int i = 0; i < 5; i++) {
    char want[64];
    snprintf(want, sizeof want, "{\"n\":%d,\"provider\":\"slow\"}", i + 1);
    ASSERT_EQ(r[i].kind, SPINE_PROVIDER_OK);
    ASSERT_STR_EQ(r[i].json, want);
    ASSERT_EQ(r[i].order, i + 1); /* in the order they were made */
  }
  /* 2 per second with a burst of 2: the last three waited for a token. */
  ASSERT_EQ(metric(&f, "spine_provider_rate_limited_total{provider=\"slow\"}"), 3);
  ASSERT_EQ(metric(&f, "spine_provider_rate_limited_total{provider=\"acme\"}"), 0);
  ASSERT_EQ(spine_providers_running(f.ps), 0);

  /* A call waiting for its token can be cancelled: its callback never runs. */
  spine_provider_call *c[3];
  out w[3];
  for (int i = 0; i < 3; i++) {
    spine_provider_request q = {0};
    q.provider = "slow";
    q.operation = "ping";
    memset(&w[i], 0, sizeof w[i]);
    ASSERT_EQ(spine_providers_call(f.ps, &q, on_outcome, &w[i], &c[i], NULL), 0);
  }
  wait_for(&f, &w[0]);
  ASSERT_EQ(w[1].calls + w[2].calls, 0);
  spine_providers_cancel(c[1]);
  wait_for(&f, &w[2]);
  ASSERT_EQ(w[1].calls, 0);
  ASSERT_EQ(spine_providers_running(f.ps), 0);
  teardown(&f);
  return 0;
}

/* ---- time and limits ---- */

TEST_IMPL(providers_timeout_and_cancel) {
  fixture f;
  setup(&f);
  out r;
  start(&f, "acme", "hang", NULL, 200, &r);
  wait_for(&f, &r);
  ASSERT_EQ(f.hang_hits, 1); /* the server had it and never answered */
  ASSERT_EQ(r.kind, SPINE_PROVIDER_TRANSIENT);
  ASSERT_STR_CONTAINS(r.json, "\"code\":\"timeout\"");
  ASSERT_STR_CONTAINS(r.json, "api.hang timed out after 200 ms");

  /* Cancelled while its request is in flight: no callback, nothing running. */
  spine_provider_call *c;
  spine_provider_request q = {0};
  char args[128];
  snprintf(args, sizeof args, "{\"base\":\"%s\"}", f.base);
  q.provider = "acme";
  q.operation = "hang";
  q.args_json = args;
  out never = {0};
  ASSERT_EQ(spine_providers_call(f.ps, &q, on_outcome, &never, &c, NULL), 0);
  while (f.hang_hits < 2)
    uv_run(&f.loop, UV_RUN_ONCE);
  spine_providers_cancel(c);
  ASSERT_EQ(spine_providers_running(f.ps), 0);
  let_pass(&f, 50);
  ASSERT_EQ(never.calls, 0);

  /* The loop goes on serving other calls. */
  f.api_status = 201;
  call(&f, "submit", NULL, &r);
  ASSERT_EQ(r.kind, SPINE_PROVIDER_OK);
  teardown(&f);
  return 0;
}

TEST_IMPL(providers_adapter_faults) {
  fixture f;
  spine_providers_opts o = {0};
  o.instructions = 200000;
  o.mem_limit = 4 << 20;
  setup_opts(&f, &o);
  static const struct {
    const char *op, *code, *msg;
  } cases[] = {
      {"loop", "instruction_budget", "tests/providers/acme.lua:30: instruction budget exceeded"},
      {"hog", "memory_limit", "tests/providers/acme.lua:34: memory limit exceeded"},
      {"crash", "runtime_error", "tests/providers/acme.lua:42: attempt to index a nil value"},
      {"raise_string", "runtime_error", "tests/providers/acme.lua:48: plain failure"},
      {"damaged_error", "runtime_error",
       "tests/providers/acme.lua:67: raised a p.transient/p.rejected error whose kind"},
      {"bad_result", "invalid_result", "api.bad_result returned a value JSON cannot hold"},
      {"render_missing", "runtime_error",
       "tests/providers/acme.lua:54: p.render: missing variable \\\"customer.name\\\""},
      {"no_secret", "runtime_error",
       "tests/providers/acme.lua:62: p.secret: provider \\\"acme\\\" has no secret \\\"nope\\\""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    out r;
    call(&f, cases[i].op, NULL, &r);
    ASSERT_EQ(r.kind, SPINE_PROVIDER_INVALID);
    char code[64];
    snprintf(code, sizeof code, "\"code\":\"%s\"", cases[i].code);
    ASSERT_STR_CONTAINS(r.json, code);
    ASSERT_STR_CONTAINS(r.json, "\"kind\":\"invalid_argument\"");
    ASSERT_STR_CONTAINS(r.json, cases[i].msg);
  }
  /* Still serving, and the breaker did not count adapter faults. */
  out r;
  call(&f, "submit", NULL, &r);
  ASSERT_EQ(r.kind, SPINE_PROVIDER_OK);
  ASSERT_EQ(metric(&f, BREAKER), 0);
  teardown(&f);
  return 0;
}

/* ---- the hosts p.http may reach ---- */

/* tmpl with each "PORT" replaced by port. */
static void with_port(char *text, size_t size, const char *tmpl, int port) {
  size_t n = 0;
  for (const char *p = tmpl; *p && n + 8 < size;) {
    if (!strncmp(p, "PORT", 4)) {
      n += (size_t)snprintf(text + n, size - n, "%d", port);
      p += 4;
    } else {
      text[n++] = *p++;
    }
  }
  text[n] = '\0';
}

/* acme's base_url is http://acme.invalid (port 80); tests/providers/providers.json allows
 * 127.0.0.1 on any port besides, where the test server listens. */
TEST_IMPL(providers_http_hosts) {
  fixture f;
  setup(&f);
  out r;
  char extra[400];
  snprintf(extra, sizeof extra, "\"url\":\"%s/api\"", f.base);
  call(&f, "reach", extra, &r);
  ASSERT_EQ(r.kind, SPINE_PROVIDER_OK);
  ASSERT_STR_EQ(r.json, "{\"channel\":\"api\",\"status\":201}");
  ASSERT_EQ(f.api_hits, 1);

  /* Other names of this machine, userinfo, base_url's host on another port: refused before any
   * connection, as an adapter fault: not retried, no other channel tried (backup would answer),
   * also when the adapter catches the error and raises p.transient instead. */
  int port = spine_http_server_port(f.srv);
  static const struct {
    const char *url, *host;
  } refused[] = {
      {"http://localhost:PORT/api", "localhost:PORT"},
      {"http://[::1]:PORT/api", "[::1]:PORT"},
      {"http://acme.invalid@localhost:PORT/api", "localhost:PORT"},
      {"http://127.0.0.1:PORT@localhost:PORT/api", "localhost:PORT"},
      {"http://acme.invalid:81/api", "acme.invalid:81"},
      {"https://acme.invalid/api", "acme.invalid:443"},
  };
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
    for (int caught = 0; caught < 2; caught++) {
      char url[200], host[100], want[200];
      with_port(url, sizeof url, refused[i].url, port);
      with_port(host, sizeof host, refused[i].host, port);
      snprintf(extra, sizeof extra, "\"url\":\"%s\"", url);
      call(&f, caught ? "reach_caught" : "reach", extra, &r);
      ASSERT_EQ(r.kind, SPINE_PROVIDER_INVALID);
      ASSERT_STR_EQ(r.channel, "api");
      ASSERT_STR_CONTAINS(r.json, "\"code\":\"host_not_allowed\"");
      snprintf(want, sizeof want, "acme may not call %s (only its base_url's host and port", host);
      ASSERT_STR_CONTAINS(r.json, want);
      ASSERT_STR_CONTAINS(r.json, "\"message\":\"tests/providers/acme.lua:");
      ASSERT(strstr(r.json, "backup") == NULL);
    }
  ASSERT_EQ(f.api_hits, 1);
  ASSERT_EQ(f.backup_hits, 0);
  /* Not a URL p.http speaks: an adapter fault too, nothing sent. */
  call(&f, "reach", "\"url\":\"file:///etc/passwd\"", &r);
  ASSERT_EQ(r.kind, SPINE_PROVIDER_INVALID);
  ASSERT_STR_CONTAINS(r.json, "is not an http:// or https:// URL");
  teardown(&f);

  /* A provider without base_url or allowed_hosts may call no host at all. */
  char dir[] = "/tmp/spine-providers-XXXXXX";
  ASSERT(mkdtemp(dir) != NULL);
  put_file(
      dir, "x.lua",
      "return { name = 'x', channels = { 'api' },\n"
      "  api = { op = function(p, args) return p.http.get(args.base .. '/api').status end } }");
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  spine_providers_opts o = {0};
  o.dir = dir;
  spine_providers *ps;
  spine_err e;
  ASSERT_EQ(spine_providers_new(&loop, &o, &ps, &e), 0);
  spine_provider_request q = {0};
  q.provider = "x";
  q.operation = "op";
  q.args_json = "{\"base\":\"http://127.0.0.1:9\"}";
  memset(&r, 0, sizeof r);
  ASSERT_EQ(spine_providers_call(ps, &q, on_outcome, &r, NULL, &e), 0);
  while (!r.calls)
    uv_run(&loop, UV_RUN_ONCE);
  ASSERT_EQ(r.kind, SPINE_PROVIDER_INVALID);
  ASSERT_STR_CONTAINS(r.json, "x may not call 127.0.0.1:9");
  spine_providers_free(ps);
  ASSERT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ASSERT_EQ(uv_loop_close(&loop), 0);
  clear_dir(dir);
  ASSERT_EQ(rmdir(dir), 0);
  return 0;
}

/* ---- secrets ---- */

TEST_IMPL(providers_secrets_never_leak) {
  fixture f;
  setup(&f);
  char logpath[] = "/tmp/spine-providers-log-XXXXXX";
  int fd = mkstemp(logpath);
  ASSERT(fd >= 0);
  int saved = dup(STDERR_FILENO);
  ASSERT(saved >= 0);
  ASSERT_EQ(dup2(fd, STDERR_FILENO), STDERR_FILENO);
  out r;
  f.api_status = 500;
  call(&f, "leak", NULL, &r);
  ASSERT_EQ(dup2(saved, STDERR_FILENO), STDERR_FILENO);
  close(saved);

  ASSERT_STR_EQ(f.auth, "Bearer " SECRET); /* the secret was really used */
  ASSERT_EQ(r.kind, SPINE_PROVIDER_TRANSIENT);
  ASSERT(strstr(r.json, "s3cr3t") == NULL);
  ASSERT_STR_CONTAINS(r.json, "\"message\":\"upstream said no to [secret]\"");
  ASSERT_STR_CONTAINS(r.json, "\"details\":{\"key\":\"[secret]\",\"status\":500}");

  char logs[8192];
  ssize_t n = pread(fd, logs, sizeof logs - 1, 0);
  ASSERT_GT(n, 0);
  logs[n] = '\0';
  close(fd);
  unlink(logpath);
  ASSERT(strstr(logs, "s3cr3t") == NULL);
  ASSERT_STR_CONTAINS(logs, "\"msg\":\"calling with [secret]\"");
  ASSERT_STR_CONTAINS(logs, "\"fields\":{\"key\":\"[secret]\",\"n\":1}");
  ASSERT_STR_CONTAINS(logs, "\"provider\":\"acme\",\"channel\":\"api\",\"operation\":\"leak\"");

  /* A secret too short to scrub safely (it would blank ordinary words) is refused by name. */
  ASSERT_EQ(setenv("SPINE_SECRET_ACME_API_KEY", "k", 1), 0);
  call(&f, "leak", NULL, &r);
  ASSERT_EQ(r.kind, SPINE_PROVIDER_INVALID);
  ASSERT_STR_CONTAINS(r.json, "secret \\\"api_key\\\" of provider \\\"acme\\\" has 1 bytes");
  ASSERT_STR_CONTAINS(r.json, "\"code\":\"runtime_error\"");
  teardown(&f);
  return 0;
}

/* An adapter keeps a secret in its module state on one call and hands it out, in simple forms,
 * from later calls that never read it (tests/providers/cacher.lua): every form is scrubbed from
 * the results, the error and the log lines of those calls. */
#define CACHED "cached-Secret-42/+x"

TEST_IMPL(providers_secrets_across_calls) {
  fixture f;
  setup(&f);
  ASSERT_EQ(setenv("SPINE_SECRET_CACHER_API_KEY", CACHED, 1), 0);
  out r;
  start(&f, "cacher", "remember", NULL, 0, &r);
  wait_for(&f, &r);
  ASSERT_EQ(r.kind, SPINE_PROVIDER_OK);
  ASSERT_STR_EQ(r.json, "{\"kept\":19}");

  char logpath[] = "/tmp/spine-providers-log-XXXXXX";
  int fd = mkstemp(logpath);
  ASSERT(fd >= 0);
  int saved = dup(STDERR_FILENO);
  ASSERT(saved >= 0);
  ASSERT_EQ(dup2(fd, STDERR_FILENO), STDERR_FILENO);
  out shown, refused;
  start(&f, "cacher", "reveal", NULL, 0, &shown);
  wait_for(&f, &shown);
  start(&f, "cacher", "reveal_error", NULL, 0, &refused);
  wait_for(&f, &refused);
  ASSERT_EQ(dup2(saved, STDERR_FILENO), STDERR_FILENO);
  close(saved);
  char logs[8192];
  ssize_t n = pread(fd, logs, sizeof logs - 1, 0);
  ASSERT_GT(n, 0);
  logs[n] = '\0';
  close(fd);
  unlink(logpath);

  ASSERT_EQ(shown.kind, SPINE_PROVIDER_OK);
  static const char *const fields[] = {"plain", "upper", "lower", "b64", "url", "hex"};
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
    char want[64];
    snprintf(want, sizeof want, "\"%s\":\"[secret]\"", fields[i]);
    ASSERT_STR_CONTAINS(shown.json, want);
  }
  ASSERT_STR_CONTAINS(shown.json, "\"basic\":\"Basic ");
  ASSERT_STR_CONTAINS(shown.json, "[secret]");
  ASSERT_EQ(refused.kind, SPINE_PROVIDER_REJECTED);
  ASSERT_STR_CONTAINS(refused.json, "\"message\":\"refused for [secret]\"");
  ASSERT_STR_CONTAINS(refused.json, "\"details\":{\"hex\":\"[secret]\",\"key\":\"[secret]\"}");
  ASSERT_STR_CONTAINS(logs, "\"msg\":\"kept [secret]\"");
  ASSERT_STR_CONTAINS(logs, "\"fields\":{\"b64\":\"[secret]\",\"lower\":\"[secret]\"}");
  const char *texts[] = {shown.json, refused.json, logs};
  for (size_t i = 0; i < 3; i++) {
    ASSERT(strstr(texts[i], "cached-Secret") == NULL);
    ASSERT(strstr(texts[i], "CACHED-SECRET") == NULL);
    ASSERT(strstr(texts[i], "cached-secret") == NULL);
    ASSERT(strstr(texts[i], "Y2FjaGVkLVNlY3JldC0") == NULL); /* base64 of its first bytes */
    ASSERT(strstr(texts[i], "6361636865642d") == NULL);      /* hex of "cached-" */
  }
  teardown(&f);
  return 0;
}

/* ---- p.render, p.config, p.email ---- */

TEST_IMPL(providers_render_config_email) {
  fixture f;
  spine_providers_opts o = {0};
  o.environment = "staging";
  setup_opts(&f, &o);
  out r;
  call(&f, "render", "\"customer\":{\"name\":\"Ada\"},\"who\":\"Bob\"", &r);
  ASSERT_EQ(r.kind, SPINE_PROVIDER_OK);
  ASSERT_STR_EQ(r.json, "{\"inline\":\"Hi Bob!\",\"text\":\"Dear Ada, your contract c-9 starts "
                        "soon.\\n\"}");
  /* p.urlencode: one path segment, whatever it holds */
  call(&f, "urlencode", "\"value\":\"../a b/c?d=\u00e9#\"", &r);
  ASSERT_EQ(r.kind, SPINE_PROVIDER_OK);
  ASSERT_STR_EQ(r.json, "{\"plain\":\"Az09-._~\",\"segment\":\"..%2Fa%20b%2Fc%3Fd%3D%C3%A9%23\"}");
  call(&f, "config", NULL, &r);
  ASSERT_EQ(r.kind, SPINE_PROVIDER_OK);
  ASSERT_STR_EQ(r.json, "{\"base\":\"http://acme.invalid\",\"daily\":10,\"key\":\"wf-1:3\","
                        "\"mailbox\":\"staging@acme.test\",\"op\":\"config\",\"writable\":false}");
  /* No SMTP server listens on the configured port: a transient failure of that channel. */
  call(&f, "mail", "\"to\":[\"ops@acme.test\"]", &r);
  ASSERT_EQ(r.kind, SPINE_PROVIDER_TRANSIENT);
  ASSERT_STR_EQ(r.channel, "backup");
  ASSERT_STR_CONTAINS(r.json, "\"code\":\"unavailable\"");
  ASSERT_STR_CONTAINS(r.json, "p.email.send to ops@acme.test");
  call(&f, "mail", "\"to\":[1]", &r);
  ASSERT_EQ(r.kind, SPINE_PROVIDER_INVALID);
  ASSERT_STR_CONTAINS(r.json, "p.email.send: to[1] must be a string");
  teardown(&f);
  return 0;
}

/* ---- webhooks ---- */

static int hook(fixture *f, const char *provider, const char *body, spine_buf *actions,
                spine_err *e) {
  spine_provider_webhook w = {0};
  w.provider = provider;
  w.body = body;
  w.body_len = strlen(body);
  w.headers = "X-Sig: abc\r\nContent-Type: application/json\r\n";
  w.headers_len = strlen(w.headers);
  spine_buf_reset(actions);
  return spine_providers_webhook(f->ps, &w, actions, e);
}

TEST_IMPL(providers_webhook) {
  fixture f;
  setup(&f);
  spine_buf a = SPINE_BUF_INIT;
  spine_err e;
  ASSERT_EQ(
      hook(&f, "acme", "{\"type\":\"one\",\"contract\":\"k-1\",\"at\":\"2026-12-01\"}", &a, &e), 0);
  ASSERT_STR_EQ(spine_buf_str(&a), "[{\"contract_id\":\"k-1\",\"payload\":{\"at\":\"2026-12-01\"},"
                                   "\"signal\":\"acme.confirmed\"}]");
  ASSERT_EQ(hook(&f, "acme", "{\"type\":\"list\",\"contract\":\"k-2\"}", &a, &e), 0);
  ASSERT_STR_EQ(spine_buf_str(&a), "[{\"payload\":{},\"signal\":\"acme.a\",\"workflow_id\":"
                                   "\"wf-1\"},{\"idempotency_key\":\"k-1\",\"input\":{\"contract\":"
                                   "\"k-2\"},\"start\":\"activation\"}]");
  ASSERT_EQ(hook(&f, "acme", "{\"type\":\"none\"}", &a, &e), 0);
  ASSERT_STR_EQ(spine_buf_str(&a), "[]");

  static const struct {
    const char *body, *want;
  } bad[] = {
      {"{\"type\":\"no_target\"}", "a signal needs workflow_id or contract_id"},
      {"{\"type\":\"both\"}", "a signal needs workflow_id or contract_id"},
      {"{\"type\":\"extra\"}", "unknown field \"payload\""},
      {"{\"type\":\"number\"}", "webhook returned a number"},
      {"{\"type\":\"rejected\"}", "not ours"},
      {"{\"type\":\"http\"}", "p.http is not available in webhook"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ASSERT_EQ(hook(&f, "acme", bad[i].body, &a, &e), SPINE_EINVAL);
    ASSERT_STR_CONTAINS(e.msg, bad[i].want);
    ASSERT_STR_CONTAINS(e.msg, "tests/providers/acme.lua:");
    ASSERT_EQ(a.len, 0); /* nothing written */
  }

  /* Secrets read by the webhook leave neither in actions nor in errors. */
  ASSERT_EQ(hook(&f, "acme", "{\"type\":\"secret\"}", &a, &e), 0);
  ASSERT(strstr(spine_buf_str(&a), "s3cr3t") == NULL);
  ASSERT_STR_EQ(spine_buf_str(&a), "[{\"payload\":{\"s\":\"[secret]\",\"sig\":\"abc\"},\"signal\":"
                                   "\"acme.s\",\"workflow_id\":\"w-[secret]\"}]");
  ASSERT_EQ(hook(&f, "acme", "{\"type\":\"secret_error\"}", &a, &e), SPINE_EINVAL);
  ASSERT(strstr(e.msg, "s3cr3t") == NULL);
  ASSERT_STR_CONTAINS(e.msg, "bad signature for key [secret]");

  ASSERT_EQ(hook(&f, "nobody", "{}", &a, &e), SPINE_ENOTFOUND);
  ASSERT_EQ(hook(&f, "slow", "{}", &a, &e), SPINE_ENOTFOUND);
  ASSERT_STR_CONTAINS(e.msg, "slow has no webhook function");
  spine_buf_free(&a);
  teardown(&f);
  return 0;
}

/* The table form: webhook.verify names the delivery (or refuses), webhook.handle acts. */
static int verify(fixture *f, const char *provider, const char *body, const char *headers,
                  char id[64], spine_err *e) {
  spine_provider_webhook w = {provider, body, strlen(body), headers, strlen(headers)};
  id[0] = '\0';
  return spine_providers_webhook_verify(f->ps, &w, id, 64, e);
}

TEST_IMPL(providers_webhook_verify) {
  ASSERT_EQ(setenv("SPINE_SECRET_SIGNED_WEBHOOK_SECRET", "signed-secret-1", 1), 0);
  fixture f;
  setup(&f);
  spine_err e;
  char id[64], hex[65], headers[256];
  const char *body = "{\"wf\":\"wf-3\"}";
  spine_hmac_sha256_hex("signed-secret-1", 15, body, strlen(body), hex);
  snprintf(headers, sizeof headers, "X-Signed-Signature: %s\r\nX-Signed-Delivery: d-7\r\n", hex);
  ASSERT_EQ(verify(&f, "signed", body, headers, id, &e), 1);
  ASSERT_STR_EQ(id, "d-7");

  /* a forged signature, and a verify that names no delivery, are refusals */
  snprintf(headers, sizeof headers, "X-Signed-Signature: %.63s0\r\nX-Signed-Delivery: d-7\r\n",
           hex);
  if (hex[63] == '0') headers[strlen("X-Signed-Signature: ") + 63] = '1';
  ASSERT_EQ(verify(&f, "signed", body, headers, id, &e), SPINE_EINVAL);
  ASSERT_STR_CONTAINS(e.msg, "bad signature");
  ASSERT(strstr(e.msg, "signed-secret-1") == NULL);
  snprintf(headers, sizeof headers, "X-Signed-Signature: %s\r\n", hex);
  ASSERT_EQ(verify(&f, "signed", body, headers, id, &e), SPINE_EINVAL);
  ASSERT_STR_CONTAINS(e.msg, "webhook.verify returned no string");

  /* the function form has no verify: the default scheme applies */
  ASSERT_EQ(verify(&f, "acme", body, "", id, &e), 0);
  ASSERT_EQ(verify(&f, "nobody", body, "", id, &e), SPINE_ENOTFOUND);

  spine_buf a = SPINE_BUF_INIT;
  ASSERT_EQ(hook(&f, "signed", body, &a, &e), 0);
  ASSERT_STR_EQ(spine_buf_str(&a),
                "[{\"payload\":{},\"signal\":\"signed.ok\",\"workflow_id\":\"wf-3\"}]");
  spine_buf_free(&a);
  teardown(&f);
  ASSERT_EQ(unsetenv("SPINE_SECRET_SIGNED_WEBHOOK_SECRET"), 0);
  return 0;
}

/* ---- p.email through a real SMTP exchange ---- */

/* A one-thread SMTP server on blocking sockets: its own thread, because curl waits for the
 * reply to the end of DATA inside curl_multi_socket_action (see test_mail.c). */
typedef struct smtp_peer {
  int listener, port;
  pthread_t thread;
  pthread_mutex_t mu;
  char seen[8192]; /* every line received, "\n"-separated (guarded by mu) */
  int messages;
} smtp_peer;

static void peer_say(int fd, const char *text) {
  ssize_t n = write(fd, text, strlen(text));
  (void)n;
}

static void peer_conversation(smtp_peer *p, int fd) {
  char buf[4096];
  size_t len = 0;
  int in_data = 0;
  peer_say(fd, "220 test ESMTP\r\n");
  for (;;) {
    ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
    if (n <= 0) return;
    len += (size_t)n;
    buf[len] = '\0';
    char *eol;
    while ((eol = strstr(buf, "\r\n"))) {
      *eol = '\0';
      pthread_mutex_lock(&p->mu);
      size_t used = strlen(p->seen);
      snprintf(p->seen + used, sizeof p->seen - used, "%s\n", buf);
      if (in_data && !strcmp(buf, ".")) p->messages++;
      pthread_mutex_unlock(&p->mu);
      if (in_data) {
        if (!strcmp(buf, ".")) {
          in_data = 0;
          peer_say(fd, "250 queued\r\n");
        }
      } else if (!strncmp(buf, "DATA", 4)) {
        in_data = 1;
        peer_say(fd, "354 go on\r\n");
      } else if (!strncmp(buf, "QUIT", 4)) {
        peer_say(fd, "221 bye\r\n");
        return;
      } else {
        peer_say(fd, "250 ok\r\n");
      }
      len -= (size_t)(eol + 2 - buf);
      memmove(buf, eol + 2, len + 1);
    }
  }
}

static void *peer_serve(void *arg) {
  smtp_peer *p = arg;
  int fd;
  while ((fd = accept(p->listener, NULL, NULL)) >= 0) {
    peer_conversation(p, fd);
    close(fd);
  }
  return NULL;
}

static void peer_start(smtp_peer *p) {
  memset(p, 0, sizeof *p);
  pthread_mutex_init(&p->mu, NULL);
  p->listener = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT(p->listener >= 0);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t al = sizeof a;
  ASSERT_EQ(bind(p->listener, (struct sockaddr *)&a, sizeof a), 0);
  ASSERT_EQ(listen(p->listener, 4), 0);
  ASSERT_EQ(getsockname(p->listener, (struct sockaddr *)&a, &al), 0);
  p->port = ntohs(a.sin_port);
  ASSERT_EQ(pthread_create(&p->thread, NULL, peer_serve, p), 0);
}

static void peer_stop(smtp_peer *p) {
  shutdown(p->listener, SHUT_RDWR);
  ASSERT_EQ(pthread_join(p->thread, NULL), 0);
  close(p->listener);
  pthread_mutex_destroy(&p->mu);
}

TEST_IMPL(providers_email_sends) {
  smtp_peer peer;
  peer_start(&peer);
  char dir[] = "/tmp/spine-providers-XXXXXX";
  ASSERT(mkdtemp(dir) != NULL);
  char settings[256];
  snprintf(settings, sizeof settings,
           "{\"smtp\": {\"url\": \"smtp://127.0.0.1:%d\", \"from\": \"spine@test\"}}", peer.port);
  put_file(dir, "providers.json", settings);
  put_file(dir, "x.lua",
           "return { name = 'x', channels = { 'email' }, email = { notify = function(p, a)\n"
           "  p.email.send { to = { a.to, 'audit@acme.test' }, subject = 'Activation ' .. a.id,\n"
           "                 body = p.render('Dear {{who}},\\n.\\nSee you.', a) }\n"
           "  return { sent = p.idempotency_key }\n"
           "end } }\n");
  fixture f;
  spine_providers_opts o = {0};
  setup_opts(&f, &o); /* the fixture's registry and server */
  uv_loop_t *loop = &f.loop;
  spine_providers *ps;
  spine_err e;
  o.dir = dir;
  o.metrics = NULL;
  ASSERT_EQ(spine_providers_new(loop, &o, &ps, &e), 0);
  spine_provider_request q = {0};
  q.provider = "x";
  q.operation = "notify";
  q.args_json = "{\"to\":\"ops@acme.test\",\"id\":\"c-7\",\"who\":\"Ops\"}";
  q.idempotency_key = "wf-7:12";
  out r = {0};
  ASSERT_EQ(spine_providers_call(ps, &q, on_outcome, &r, NULL, &e), 0);
  wait_for(&f, &r);
  ASSERT_EQ(r.kind, SPINE_PROVIDER_OK);
  ASSERT_STR_EQ(r.json, "{\"sent\":\"wf-7:12\"}");
  ASSERT_STR_EQ(r.channel, "email");
  spine_providers_free(ps);
  teardown(&f);
  peer_stop(&peer);

  ASSERT_EQ(peer.messages, 1);
  ASSERT_STR_CONTAINS(peer.seen, "MAIL FROM:<spine@test>");
  ASSERT_STR_CONTAINS(peer.seen, "RCPT TO:<ops@acme.test>\nRCPT TO:<audit@acme.test>\n");
  ASSERT_STR_CONTAINS(peer.seen, "Subject: Activation c-7\n");
  ASSERT_STR_CONTAINS(peer.seen, "X-Idempotency-Key: wf-7:12\n");
  ASSERT_STR_CONTAINS(peer.seen, "Message-ID: <wf-7:12@spine>\n");
  ASSERT_STR_CONTAINS(peer.seen, "\nDear Ops,\n..\nSee you.\n.\n"); /* dot-stuffed */
  clear_dir(dir);
  ASSERT_EQ(rmdir(dir), 0);
  return 0;
}
