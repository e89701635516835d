/* The HTTP client against a real server (http_server.c) on 127.0.0.1 in the same loop: the
 * verbs, headers, bodies and traceparent; 500 concurrent calls while a timer keeps ticking;
 * timeouts, refused connections and status classification; the response size cap; cancel;
 * where a URL goes as libcurl reads it, and redirects answered, never followed. */
#include "http_client.h"
#include "http_server.h"

#include "test.h"

typedef struct fixture {
  uv_loop_t loop;
  spine_http_server *srv;
  spine_http_client *cli;
  char base[64];
  int closed;
} fixture;

static void setup(fixture *f) {
  ASSERT_EQ(uv_loop_init(&f->loop), 0);
  spine_http_server_opts o = {0};
  o.port = 0;
  o.max_requests = 1000; /* http_client_concurrent_timer_ticks holds 500 under way at once */
  spine_err e;
  ASSERT_EQ(spine_http_server_start(&f->loop, &o, &f->srv, &e), 0);
  ASSERT_EQ(spine_http_client_new(&f->loop, &f->cli, &e), 0);
  snprintf(f->base, sizeof f->base, "http://127.0.0.1:%d", spine_http_server_port(f->srv));
  f->closed = 0;
}

static void on_closed(void *data) {
  ((fixture *)data)->closed++;
}

/* Closes both ends and checks nothing is left on the loop. */
static void teardown(fixture *f) {
  if (f->srv) spine_http_server_close(f->srv, on_closed, f);
  spine_http_client_close(f->cli, on_closed, f);
  ASSERT_EQ(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
  ASSERT_EQ(f->closed, f->srv ? 2 : 1);
  ASSERT_EQ(uv_loop_close(&f->loop), 0);
}

static void url(fixture *f, char *out, size_t size, const char *path) {
  snprintf(out, size, "%s%s", f->base, path);
}

/* ---- a server that echoes what it got ---- */

static void echo(void *data, spine_http_server_exchange *x) {
  (void)data;
  size_t ml, bl, tl, hl;
  const char *m = spine_http_server_method(x, &ml);
  const char *b = spine_http_server_body(x, &bl);
  const char *t = spine_http_server_header(x, "traceparent", &tl);
  const char *h = spine_http_server_header(x, "X-Test", &hl);
  char out[512];
  int n = snprintf(out, sizeof out, "%.*s|%.*s|%.*s|%.*s", (int)ml, m, (int)bl, b, (int)tl,
                   t ? t : "", (int)hl, h ? h : "");
  spine_http_server_add_header(x, "X-Echo", "yes");
  spine_http_server_respond(x, 201, "text/plain", out, (size_t)n);
}

typedef struct got {
  int calls;
  int error, transient, status;
  char body[512];
  char echo_header[32];
} got;

static void on_got(void *data, const spine_http_client_response *r) {
  got *g = data;
  g->calls++;
  g->error = r->error;
  g->transient = r->transient;
  g->status = r->status;
  snprintf(g->body, sizeof g->body, "%.*s", (int)r->body_len, r->body);
  size_t len;
  const char *v = spine_http_client_response_header(r, "x-echo", &len);
  snprintf(g->echo_header, sizeof g->echo_header, "%.*s", (int)len, v ? v : "");
}

TEST_IMPL(http_client_verbs) {
  fixture f;
  setup(&f);
  ASSERT_EQ(spine_http_server_route(f.srv, NULL, "/echo", echo, NULL), 0);
  static const spine_http_client_verb verbs[] = {SPINE_HTTP_CLIENT_GET, SPINE_HTTP_CLIENT_POST,
                                                 SPINE_HTTP_CLIENT_PUT, SPINE_HTTP_CLIENT_PATCH,
                                                 SPINE_HTTP_CLIENT_DELETE};
  got g[5];
  memset(g, 0, sizeof g);
  char u[128];
  url(&f, u, sizeof u, "/echo");
  const char *headers[] = {"X-Test: hello", NULL};
  for (int i = 0; i < 5; i++) {
    spine_http_client_request r = {0};
    r.method = verbs[i];
    r.url = u;
    r.headers = headers;
    r.traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    if (verbs[i] != SPINE_HTTP_CLIENT_GET && verbs[i] != SPINE_HTTP_CLIENT_DELETE) {
      r.body = "{\"n\":1}";
      r.body_len = 7;
    }
    ASSERT_EQ(spine_http_client_send(f.cli, &r, on_got, &g[i], NULL, NULL), 0);
  }
  ASSERT_EQ(spine_http_client_running(f.cli), 5);
  while (g[0].calls + g[1].calls + g[2].calls + g[3].calls + g[4].calls < 5)
    uv_run(&f.loop, UV_RUN_ONCE);
  const char *tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  char want[256];
  for (int i = 0; i < 5; i++) {
    ASSERT_EQ(g[i].calls, 1);
    ASSERT_EQ(g[i].error, 0);
    ASSERT_EQ(g[i].status, 201);
    ASSERT_EQ(g[i].transient, 0);
    ASSERT_STR_EQ(g[i].echo_header, "yes");
    int body = verbs[i] != SPINE_HTTP_CLIENT_GET && verbs[i] != SPINE_HTTP_CLIENT_DELETE;
    snprintf(want, sizeof want, "%s|%s|%s|hello", spine_http_client_verb_name(verbs[i]),
             body ? "{\"n\":1}" : "", tp);
    ASSERT_STR_EQ(g[i].body, want);
  }
  ASSERT_EQ(spine_http_client_running(f.cli), 0);
  spine_err e;
  const char *evil[] = {"X-A: 1\r\nX-B: 2", NULL};
  spine_http_client_request bad = {0};
  bad.url = u;
  bad.headers = evil;
  ASSERT_EQ(spine_http_client_send(f.cli, &bad, on_got, &g[0], NULL, &e), SPINE_EINVAL);
  ASSERT_EQ(g[0].calls, 1); /* refused without a callback */
  teardown(&f);
  return 0;
}

/* ---- 500 calls held by the server while a timer ticks ---- */

#define MANY       500
#define TICKS_HELD 20

typedef struct crowd {
  fixture *f;
  uv_timer_t ticker;
  uint64_t ticks;
  spine_http_server_exchange *held[MANY];
  int arrived;
  uint64_t ticks_all_arrived;
  int released;
  int answered, ok;
  int arrived_at_first_answer;
  uint64_t ticks_at_first_answer;
  int order_ok;
} crowd;

static void hold(void *data, spine_http_server_exchange *x) {
  crowd *c = data;
  ASSERT_LT(c->arrived, MANY);
  c->held[c->arrived++] = x;
  if (c->arrived == MANY) c->ticks_all_arrived = c->ticks;
}

static void on_tick(uv_timer_t *t) {
  crowd *c = t->data;
  c->ticks++;
  /* The server answers only after every call arrived and the timer ticked TICKS_HELD more
   * times: a loop blocked by the client would never get here. */
  if (c->arrived == MANY && !c->released && c->ticks - c->ticks_all_arrived >= TICKS_HELD) {
    c->released = 1;
    for (int i = 0; i < MANY; i++) {
      char body[16];
      int n = snprintf(body, sizeof body, "%d", i);
      spine_http_server_respond(c->held[i], 200, "text/plain", body, (size_t)n);
    }
  }
}

static void on_crowd_answer(void *data, const spine_http_client_response *r) {
  crowd *c = data;
  if (c->answered++ == 0) {
    c->arrived_at_first_answer = c->arrived;
    c->ticks_at_first_answer = c->ticks;
  }
  if (r->error == 0 && r->status == 200 && r->body_len > 0) c->ok++;
  if (c->answered == MANY) uv_timer_stop(&c->ticker);
}

TEST_IMPL(http_client_concurrent_timer_ticks) {
  fixture f;
  setup(&f);
  crowd *c = calloc(1, sizeof *c);
  ASSERT(c != NULL);
  c->f = &f;
  ASSERT_EQ(spine_http_server_route(f.srv, "GET", "/hold", hold, c), 0);
  uv_timer_init(&f.loop, &c->ticker);
  c->ticker.data = c;
  uv_timer_start(&c->ticker, on_tick, 1, 1);
  char u[128];
  url(&f, u, sizeof u, "/hold");
  for (int i = 0; i < MANY; i++) {
    spine_http_client_request r = {0};
    r.url = u;
    r.timeout_ms = 120000;
    ASSERT_EQ(spine_http_client_send(f.cli, &r, on_crowd_answer, c, NULL, NULL), 0);
  }
  while (c->answered < MANY)
    uv_run(&f.loop, UV_RUN_ONCE);
  ASSERT_EQ(c->ok, MANY);
  ASSERT_EQ(c->arrived_at_first_answer, MANY); /* all were in flight together */
  ASSERT_GE(c->ticks_at_first_answer - c->ticks_all_arrived, TICKS_HELD);
  ASSERT_GE(c->ticks, TICKS_HELD);
  uv_close((uv_handle_t *)&c->ticker, NULL);
  teardown(&f);
  free(c);
  return 0;
}

/* ---- timeouts, refused connections, status classes, size cap, cancel ---- */

typedef struct parked {
  spine_http_server_exchange *x;
  int aborted;
} parked;

static void park(void *data, spine_http_server_exchange *x) {
  parked *p = data;
  p->x = x;
}

static void on_parked_abort(void *data) {
  ((parked *)data)->aborted++;
}

static void status_of_query(void *data, spine_http_server_exchange *x) {
  (void)data;
  size_t ql;
  const char *q = spine_http_server_query(x, &ql);
  int status = q ? atoi(q) : 200;
  spine_http_server_respond(x, status, "text/plain", "s", 1);
}

TEST_IMPL(http_client_timeouts_and_classes) {
  fixture f;
  setup(&f);
  parked p = {0};
  ASSERT_EQ(spine_http_server_route(f.srv, "GET", "/never", park, &p), 0);
  ASSERT_EQ(spine_http_server_route(f.srv, "GET", "/status", status_of_query, NULL), 0);
  char u[128];
  url(&f, u, sizeof u, "/never");
  got g = {0};
  spine_http_client_request r = {0};
  r.url = u;
  r.timeout_ms = 200;
  ASSERT_EQ(spine_http_client_send(f.cli, &r, on_got, &g, NULL, NULL), 0);
  while (!g.calls)
    uv_run(&f.loop, UV_RUN_ONCE);
  ASSERT(p.x != NULL); /* the server had the request and never answered */
  ASSERT_EQ(g.error, SPINE_ETIMEOUT);
  ASSERT_EQ(g.transient, 1);
  ASSERT_EQ(g.status, 0);

  static const struct {
    int status, transient;
  } cases[] = {{200, 0}, {404, 0}, {409, 0}, {429, 1}, {500, 1}, {503, 1}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    got s = {0};
    char su[160];
    snprintf(su, sizeof su, "%s/status?%d", f.base, cases[i].status);
    r.url = su;
    r.timeout_ms = 0;
    ASSERT_EQ(spine_http_client_send(f.cli, &r, on_got, &s, NULL, NULL), 0);
    while (!s.calls)
      uv_run(&f.loop, UV_RUN_ONCE);
    ASSERT_EQ(s.error, 0);
    ASSERT_EQ(s.status, cases[i].status);
    ASSERT_EQ(s.transient, cases[i].transient);
  }

  /* The parked exchange is aborted when the server closes; nothing listens on its port then. */
  spine_http_server_on_abort(p.x, on_parked_abort, &p);
  int port = spine_http_server_port(f.srv);
  spine_http_server_close(f.srv, on_closed, &f);
  f.srv = NULL;
  ASSERT_EQ(p.aborted, 1);
  while (f.closed < 1)
    uv_run(&f.loop, UV_RUN_ONCE);
  char refused[64];
  snprintf(refused, sizeof refused, "http://127.0.0.1:%d/", port);
  got rf = {0};
  r.url = refused;
  ASSERT_EQ(spine_http_client_send(f.cli, &r, on_got, &rf, NULL, NULL), 0);
  while (!rf.calls)
    uv_run(&f.loop, UV_RUN_ONCE);
  ASSERT_EQ(rf.error, SPINE_ETRANSIENT);
  ASSERT_EQ(rf.transient, 1);

  /* Only http and https: any other scheme is refused before anything starts. */
  static const char *const others[] = {"ftp://127.0.0.1/x", "file:///etc/passwd",
                                       "gopher://127.0.0.1:70/", "dict://127.0.0.1:11211/stat",
                                       "127.0.0.1:80/no-scheme"};
  for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
    got bad = {0};
    spine_err e;
    r.url = others[i];
    ASSERT_EQ(spine_http_client_send(f.cli, &r, on_got, &bad, NULL, &e), SPINE_EINVAL);
    ASSERT_STR_CONTAINS(e.msg, "is not");
    ASSERT_EQ(bad.calls, 0);
    ASSERT_EQ(spine_http_client_running(f.cli), 0);
  }
  f.closed = 0;
  teardown(&f);
  return 0;
}

static void big(void *data, spine_http_server_exchange *x) {
  size_t n = *(size_t *)data;
  char *b = malloc(n);
  ASSERT(b != NULL);
  memset(b, 'x', n);
  spine_http_server_respond(x, 200, "text/plain", b, n);
  free(b);
}

TEST_IMPL(http_client_size_limit) {
  fixture f;
  setup(&f);
  size_t n = 64 * 1024;
  ASSERT_EQ(spine_http_server_route(f.srv, "GET", "/big", big, &n), 0);
  char u[128];
  url(&f, u, sizeof u, "/big");
  got small = {0}, enough = {0};
  spine_http_client_request r = {0};
  r.url = u;
  r.max_response = 1000;
  ASSERT_EQ(spine_http_client_send(f.cli, &r, on_got, &small, NULL, NULL), 0);
  r.max_response = n;
  ASSERT_EQ(spine_http_client_send(f.cli, &r, on_got, &enough, NULL, NULL), 0);
  while (!small.calls || !enough.calls)
    uv_run(&f.loop, UV_RUN_ONCE);
  ASSERT_EQ(small.error, SPINE_ELIMIT);
  ASSERT_EQ(small.transient, 0);
  ASSERT_EQ(enough.error, 0);
  ASSERT_EQ(enough.status, 200);
  teardown(&f);
  return 0;
}

static void never_called(void *data, const spine_http_client_response *r) {
  (void)data, (void)r;
  ASSERT(!"the callback of a cancelled call ran");
}

TEST_IMPL(http_client_cancel) {
  fixture f;
  setup(&f);
  parked p = {0};
  ASSERT_EQ(spine_http_server_route(f.srv, "GET", "/never", park, &p), 0);
  char u[128];
  url(&f, u, sizeof u, "/never");
  spine_http_client_request r = {0};
  r.url = u;
  spine_http_client_call *call;
  ASSERT_EQ(spine_http_client_send(f.cli, &r, never_called, NULL, &call, NULL), 0);
  while (!p.x)
    uv_run(&f.loop, UV_RUN_ONCE);
  spine_http_client_cancel(call);
  ASSERT_EQ(spine_http_client_running(f.cli), 0);
  /* A call still running when the client closes gets SPINE_ECANCELLED. */
  got g = {0};
  ASSERT_EQ(spine_http_client_send(f.cli, &r, on_got, &g, NULL, NULL), 0);
  spine_http_server_on_abort(p.x, on_parked_abort, &p);
  teardown(&f);
  ASSERT_EQ(g.calls, 1);
  ASSERT_EQ(g.error, SPINE_ECANCELLED);
  ASSERT_GE(p.aborted, 1);
  return 0;
}

/* ---- where a URL goes ---- */

TEST_IMPL(http_client_url_reading) {
  static const struct {
    const char *url;
    int https;
    const char *host;
    int port;
  } ok[] = {
      {"http://base.host@evil.example/", 0, "evil.example", 80}, /* userinfo, not the host */
      {"http://base.host:443@evil.example:81/x", 0, "evil.example", 81},
      {"HTTPS://API.Acme.Example./v1", 1, "api.acme.example", 443}, /* case, trailing dot */
      {"http://%61pi.acme.example/", 0, "api.acme.example", 80},    /* percent-encoded host */
      {"http://2130706433/", 0, "127.0.0.1", 80},                   /* numeric IPv4 forms */
      {"http://0x7f.1:8080/", 0, "127.0.0.1", 8080},
      {"http://[::1]:9000/", 0, "[::1]", 9000},
      {"http://[::FFFF:127.0.0.1]/", 0, "[::ffff:127.0.0.1]", 80},
      {"https://api.example:0443/", 1, "api.example", 443},
      {"http://api.example#@evil.example/", 0, "api.example", 80},
      {"http://api.example\\@evil.example/", 0, "evil.example", 80},
  };
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    spine_http_client_dest d;
    spine_err e;
    if (spine_http_client_dest_of(ok[i].url, &d, &e)) TEST_FAIL_("%s: %s", ok[i].url, e.msg);
    ASSERT_EQ(d.https, ok[i].https);
    ASSERT_STR_EQ(d.host, ok[i].host);
    ASSERT_EQ(d.port, ok[i].port);
  }
  static const char *const bad[] = {
      "file:///etc/passwd", "gopher://x/",     "evil.example/x",           "http://a b/",
      "http:/\\evil/x",     "http://x:99999/", "http://[fe80::1%25eth0]/", "",
      "/relative"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    spine_http_client_dest d;
    spine_err e;
    if (spine_http_client_dest_of(bad[i], &d, &e) != SPINE_EINVAL)
      TEST_FAIL_("%s was read", bad[i]);
    ASSERT_STR_CONTAINS(e.msg, "is not");
  }

  spine_http_client_host h;
  spine_err e;
  spine_http_client_dest d;
  ASSERT_EQ(spine_http_client_host_parse("Auth.Example.", &h, &e), 0);
  ASSERT_STR_EQ(h.host, "auth.example");
  ASSERT_EQ(h.port, 0);
  ASSERT_EQ(spine_http_client_dest_of("https://auth.example:8443/token", &d, &e), 0);
  ASSERT_EQ(spine_http_client_host_match(&h, &d), 1); /* any port */
  ASSERT_EQ(spine_http_client_dest_of("https://auth.example.evil/token", &d, &e), 0);
  ASSERT_EQ(spine_http_client_host_match(&h, &d), 0);
  ASSERT_EQ(spine_http_client_dest_of("https://auth.example@evil/", &d, &e), 0);
  ASSERT_EQ(spine_http_client_host_match(&h, &d), 0);
  ASSERT_EQ(spine_http_client_host_parse("127.0.0.1:7790", &h, &e), 0);
  ASSERT_EQ(h.port, 7790);
  ASSERT_EQ(spine_http_client_dest_of("http://127.0.0.1:7790/x", &d, &e), 0);
  ASSERT_EQ(spine_http_client_host_match(&h, &d), 1);
  ASSERT_EQ(spine_http_client_dest_of("http://127.0.0.1:7791/x", &d, &e), 0);
  ASSERT_EQ(spine_http_client_host_match(&h, &d), 0);
  ASSERT_EQ(spine_http_client_dest_of("http://2130706433:7790/", &d, &e), 0);
  ASSERT_EQ(spine_http_client_host_match(&h, &d), 1); /* the same address, as libcurl reads it */
  ASSERT_EQ(spine_http_client_host_parse("[::1]:80", &h, &e), 0);
  ASSERT_STR_EQ(h.host, "[::1]");
  ASSERT_EQ(h.port, 80);
  static const char *const not_hosts[] = {
      "",    "http://auth.example", "auth.example/x", "u@auth.example",    "auth.example:x",
      "a b", "auth.example?q",      "%61uth.example", "auth.example:99999"};
  for (size_t i = 0; i < sizeof not_hosts / sizeof not_hosts[0]; i++) {
    if (spine_http_client_host_parse(not_hosts[i], &h, &e) != SPINE_EINVAL)
      TEST_FAIL_("\"%s\" was taken for a host", not_hosts[i]);
    ASSERT_STR_CONTAINS(e.msg, "is not a host name or host:port");
  }
  return 0;
}

typedef struct hops {
  int moved, target;
  char location[128];
} hops;

static void moved(void *data, spine_http_server_exchange *x) {
  hops *h = data;
  h->moved++;
  spine_http_server_add_header(x, "Location", h->location);
  spine_http_server_respond(x, 302, "text/plain", "elsewhere", 9);
}

static void target(void *data, spine_http_server_exchange *x) {
  ((hops *)data)->target++;
  spine_http_server_respond(x, 200, "text/plain", "reached", 7);
}

TEST_IMPL(http_client_no_redirects) {
  fixture f;
  setup(&f);
  hops h = {0};
  ASSERT_EQ(spine_http_server_route(f.srv, NULL, "/moved", moved, &h), 0);
  ASSERT_EQ(spine_http_server_route(f.srv, NULL, "/target", target, &h), 0);
  char u[128], absolute[128];
  url(&f, u, sizeof u, "/moved");
  url(&f, absolute, sizeof absolute, "/target");
  const char *const locations[] = {"/target", absolute, "file:///etc/passwd"};
  for (size_t i = 0; i < sizeof locations / sizeof locations[0]; i++) {
    snprintf(h.location, sizeof h.location, "%s", locations[i]);
    got g = {0};
    spine_http_client_request r = {0};
    r.method = i == 1 ? SPINE_HTTP_CLIENT_POST : SPINE_HTTP_CLIENT_GET;
    r.url = u;
    ASSERT_EQ(spine_http_client_send(f.cli, &r, on_got, &g, NULL, NULL), 0);
    while (!g.calls)
      uv_run(&f.loop, UV_RUN_ONCE);
    ASSERT_EQ(g.error, 0);
    ASSERT_EQ(g.status, 302); /* the redirect is the answer */
    ASSERT_STR_EQ(g.body, "elsewhere");
  }
  ASSERT_EQ(h.moved, 3);
  ASSERT_EQ(h.target, 0);
  teardown(&f);
  return 0;
}
