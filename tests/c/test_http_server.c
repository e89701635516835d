/* The HTTP server's limits and routes against real clients on 127.0.0.1: 404/405, a body or
 * headers over the limits (413, 431), clients that never finish their request (closed after
 * the request timeout while other requests are served, and at once by the server's close), the
 * caps on connections and requests under way, and the metrics registry's text. */
#include "http_client.h"
#include "http_server.h"
#include "metrics.h"

#include "test.h"

#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

typedef struct answer {
  int calls, error, status;
} answer;

static void on_answer(void *data, const spine_http_client_response *r) {
  answer *a = data;
  a->calls++;
  a->error = r->error;
  a->status = r->status;
}

static void ok(void *data, spine_http_server_exchange *x) {
  (void)data;
  spine_http_server_respond(x, 200, "text/plain", "ok", 2);
}

static void on_done(void *data) {
  (*(int *)data)++;
}

static void call(uv_loop_t *loop, spine_http_client *cli, spine_http_client_verb verb,
                 const char *url, const char *const *headers, const char *body, size_t len,
                 answer *a) {
  spine_http_client_request r = {0};
  r.method = verb;
  r.url = url;
  r.headers = headers;
  r.body = body;
  r.body_len = len;
  ASSERT_EQ(spine_http_client_send(cli, &r, on_answer, a, NULL, NULL), 0);
  while (!a->calls)
    uv_run(loop, UV_RUN_ONCE);
}

TEST_IMPL(http_server_routes_and_limits) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  spine_metrics *m = spine_metrics_new();
  spine_http_server_opts o = {0};
  o.max_body = 1024;
  o.max_header = 4096;
  o.metrics = m;
  spine_http_server *srv;
  spine_http_client *cli;
  ASSERT_EQ(spine_http_server_start(&loop, &o, &srv, NULL), 0);
  ASSERT_EQ(spine_http_client_new(&loop, &cli, NULL), 0);
  ASSERT_EQ(spine_http_server_route(srv, "POST", "/in", ok, NULL), 0);
  char base[64], u[96];
  snprintf(base, sizeof base, "http://127.0.0.1:%d", spine_http_server_port(srv));

  answer fine = {0}, missing = {0}, method = {0}, body = {0}, head = {0};
  snprintf(u, sizeof u, "%s/in", base);
  call(&loop, cli, SPINE_HTTP_CLIENT_POST, u, NULL, "{}", 2, &fine);
  ASSERT_EQ(fine.status, 200);
  call(&loop, cli, SPINE_HTTP_CLIENT_GET, u, NULL, NULL, 0, &method);
  ASSERT_EQ(method.status, 405);
  char *big = malloc(8192);
  ASSERT(big != NULL);
  memset(big, 'a', 8192);
  call(&loop, cli, SPINE_HTTP_CLIENT_POST, u, NULL, big, 2048, &body);
  ASSERT_EQ(body.status, 413);
  memcpy(big, "X-Big: ", 7);
  big[6000] = '\0';
  const char *headers[] = {big, NULL};
  call(&loop, cli, SPINE_HTTP_CLIENT_POST, u, headers, "{}", 2, &head);
  ASSERT_EQ(head.status, 431);
  free(big);
  snprintf(u, sizeof u, "%s/elsewhere", base);
  call(&loop, cli, SPINE_HTTP_CLIENT_GET, u, NULL, NULL, 0, &missing);
  ASSERT_EQ(missing.status, 404);
  ASSERT_EQ(spine_metrics_value(spine_metrics_find(m, "spine_http_requests_total{code=\"2xx\"}")),
            1);
  /* 413 comes from h2o before a handler runs: only 405, 431 and 404 pass through ours */
  ASSERT_EQ(spine_metrics_value(spine_metrics_find(m, "spine_http_requests_total{code=\"4xx\"}")),
            3);

  int closed = 0;
  spine_http_server_close(srv, on_done, &closed);
  spine_http_client_close(cli, on_done, &closed);
  ASSERT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ASSERT_EQ(closed, 2);
  ASSERT_EQ(uv_loop_close(&loop), 0);
  spine_metrics_free(m);
  return 0;
}

/* ---- raw clients: send some bytes (half a request, a whole one, nothing) and read ---- */

typedef struct raw {
  uv_tcp_t tcp;
  uv_connect_t connect;
  uv_write_t write;
  const char *send;
  int noread; /* reads nothing: the server's answer stays in the sockets' buffers */
  int connected, eof, closed;
  answer *other; /* a normal request's answer, sampled at EOF */
  int other_done_before_eof;
  char got[4096]; /* what the server answered, NUL-terminated */
  size_t len;
} raw;

static void raw_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf) {
  (void)size;
  raw *r = container_of((uv_tcp_t *)h, raw, tcp);
  *buf = uv_buf_init(r->got + r->len, (unsigned)(sizeof r->got - 1 - r->len));
}

static void raw_closed(uv_handle_t *h) {
  container_of((uv_tcp_t *)h, raw, tcp)->closed = 1;
}

static void raw_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
  (void)buf;
  raw *r = container_of((uv_tcp_t *)st, raw, tcp);
  if (n > 0) {
    r->len += (size_t)n;
    r->got[r->len] = '\0';
  }
  if (n >= 0) return;
  r->eof = 1; /* EOF, or a reset: the server closed */
  if (r->other) r->other_done_before_eof = r->other->calls;
  uv_close((uv_handle_t *)&r->tcp, raw_closed);
}

static void raw_written(uv_write_t *w, int status) {
  ASSERT_EQ(status, 0);
  raw *r = container_of(w, raw, write);
  r->connected = 1;
  if (!r->noread) uv_read_start((uv_stream_t *)&r->tcp, raw_alloc, raw_read);
}

static void raw_connected(uv_connect_t *c, int status) {
  ASSERT_EQ(status, 0);
  raw *r = container_of(c, raw, connect);
  uv_buf_t b = uv_buf_init((char *)r->send, (unsigned)strlen(r->send));
  uv_write(&r->write, (uv_stream_t *)&r->tcp, &b, 1, raw_written);
}

/* Connects to 127.0.0.1:port and writes `send` (borrowed; may be ""), then reads until the
 * server closes. Runs the loop until the bytes are written. */
static void raw_start(uv_loop_t *loop, raw *r, int port, const char *send, int noread) {
  memset(r, 0, sizeof *r);
  r->send = send;
  r->noread = noread;
  uv_tcp_init(loop, &r->tcp);
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", port, &addr);
  ASSERT_EQ(uv_tcp_connect(&r->connect, &r->tcp, (struct sockaddr *)&addr, raw_connected), 0);
  while (!r->connected)
    uv_run(loop, UV_RUN_ONCE);
}

static double metric_value(spine_metrics *m, const char *name) {
  spine_metric *x = spine_metrics_find(m, name);
  ASSERT(x != NULL);
  return spine_metrics_value(x);
}

/* Runs the loop until the server has accepted `n` connections that are still open. */
static void until_open(uv_loop_t *loop, spine_metrics *m, double n) {
  while (metric_value(m, "spine_http_connections_open") != n)
    uv_run(loop, UV_RUN_ONCE);
}

static const char half_headers[] = "POST /in HTTP/1.1\r\nHost: x\r\nContent-Len";
static const char half_body[] =
    "POST /in HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"a\":";

TEST_IMPL(http_server_slow_client) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  spine_http_server_opts o = {0};
  o.request_ms = 1500;
  spine_http_server *srv;
  spine_http_client *cli;
  ASSERT_EQ(spine_http_server_start(&loop, &o, &srv, NULL), 0);
  ASSERT_EQ(spine_http_client_new(&loop, &cli, NULL), 0);
  ASSERT_EQ(spine_http_server_route(srv, "POST", "/in", ok, NULL), 0);

  answer other = {0};
  raw heads, body;
  raw_start(&loop, &heads, spine_http_server_port(srv), half_headers, 0);
  raw_start(&loop, &body, spine_http_server_port(srv), half_body, 0);
  heads.other = body.other = &other;

  /* The half requests hold a connection each, not the loop: another client is served. */
  char u[96];
  snprintf(u, sizeof u, "http://127.0.0.1:%d/in", spine_http_server_port(srv));
  call(&loop, cli, SPINE_HTTP_CLIENT_POST, u, NULL, "{}", 2, &other);
  ASSERT_EQ(other.status, 200);
  ASSERT_EQ(heads.eof + body.eof, 0);
  /* ... and the server cuts both at the request timeout: headers short, or the body. */
  while (!heads.closed || !body.closed)
    uv_run(&loop, UV_RUN_ONCE);
  ASSERT_EQ(heads.eof, 1);
  ASSERT_EQ(body.eof, 1);
  ASSERT_EQ(heads.other_done_before_eof, 1);
  ASSERT_EQ(body.other_done_before_eof, 1);
  ASSERT_EQ(heads.len + body.len, 0); /* closed without an answer */

  int closed = 0;
  spine_http_server_close(srv, on_done, &closed);
  spine_http_client_close(cli, on_done, &closed);
  ASSERT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ASSERT_EQ(closed, 2);
  ASSERT_EQ(uv_loop_close(&loop), 0);
  return 0;
}

static void on_watchdog(uv_timer_t *t) {
  (void)t;
  TEST_FAIL_("%s", "the server's close waited for its connections");
}

/* 16 MiB: more than the sockets' buffers take while the client reads nothing. */
#define BIG (16 << 20)

static void big(void *data, spine_http_server_exchange *x) {
  char *body = calloc(1, BIG);
  ASSERT(body != NULL);
  spine_http_server_respond(x, 200, "application/octet-stream", body, BIG);
  free(body);
  (*(int *)data)++;
}

TEST_IMPL(http_server_close_cuts_half_requests) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  spine_metrics *m = spine_metrics_new();
  spine_http_server_opts o = {0};
  o.request_ms = 600000; /* the close must not wait for it */
  o.metrics = m;
  spine_http_server *srv;
  ASSERT_EQ(spine_http_server_start(&loop, &o, &srv, NULL), 0);
  ASSERT_EQ(spine_http_server_route(srv, "POST", "/in", ok, NULL), 0);
  int answered = 0;
  ASSERT_EQ(spine_http_server_route(srv, "GET", "/big", big, &answered), 0);
  raw idle, heads, body, unread;
  raw_start(&loop, &idle, spine_http_server_port(srv), "", 0);
  raw_start(&loop, &heads, spine_http_server_port(srv), half_headers, 0);
  raw_start(&loop, &body, spine_http_server_port(srv), half_body, 0);
  /* ... and an answer being written to a client that does not read it. */
  raw_start(&loop, &unread, spine_http_server_port(srv), "GET /big HTTP/1.1\r\nHost: x\r\n\r\n", 1);
  while (!answered)
    uv_run(&loop, UV_RUN_ONCE);
  until_open(&loop, m, 4);

  /* A bound far below request_ms, only for a clear failure; unref'd: the run ends without it. */
  uv_timer_t watchdog;
  uv_timer_init(&loop, &watchdog);
  uv_timer_start(&watchdog, on_watchdog, 60000, 0);
  uv_unref((uv_handle_t *)&watchdog);
  int closed = 0;
  spine_http_server_close(srv, on_done, &closed);
  ASSERT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ASSERT_EQ(closed, 1);
  ASSERT_EQ(idle.eof + heads.eof + body.eof, 3);
  ASSERT_EQ(idle.len + heads.len + body.len, 0);
  uv_close((uv_handle_t *)&unread.tcp, raw_closed);
  uv_close((uv_handle_t *)&watchdog, NULL);
  ASSERT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ASSERT_EQ(uv_loop_close(&loop), 0);
  spine_metrics_free(m);
  return 0;
}

/* ---- the caps: connections open, requests under way ---- */

static void hold(void *data, spine_http_server_exchange *x) {
  *(spine_http_server_exchange **)data = x;
}

TEST_IMPL(http_server_caps) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  spine_metrics *m = spine_metrics_new();
  spine_http_server_opts o = {0};
  o.max_connections = 2;
  o.max_requests = 1;
  o.metrics = m;
  spine_http_server *srv;
  ASSERT_EQ(spine_http_server_start(&loop, &o, &srv, NULL), 0);
  spine_http_server_exchange *held = NULL;
  ASSERT_EQ(spine_http_server_route(srv, "GET", "/hold", hold, &held), 0);
  ASSERT_EQ(spine_http_server_route(srv, "GET", "/in", ok, NULL), 0);
  int port = spine_http_server_port(srv);

  /* One request under way (its handler holds it): the next is refused before its handler. */
  raw first, second;
  raw_start(&loop, &first, port, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n", 0);
  while (!held)
    uv_run(&loop, UV_RUN_ONCE);
  raw_start(&loop, &second, port, "GET /in HTTP/1.1\r\nHost: x\r\n\r\n", 0);
  while (!second.closed)
    uv_run(&loop, UV_RUN_ONCE);
  ASSERT_STR_CONTAINS(second.got, "HTTP/1.1 503 ");
  ASSERT_STR_CONTAINS(second.got, "\r\nRetry-After: 1\r\n");
  ASSERT_EQ(metric_value(m, "spine_http_requests_refused_total"), 1);

  /* Two connections open (the held one, an idle one): a third is answered 503 and closed at
   * accept, with nothing of it read. */
  until_open(&loop, m, 1);
  raw idle, third;
  raw_start(&loop, &idle, port, "", 0);
  until_open(&loop, m, 2);
  raw_start(&loop, &third, port, "", 0);
  while (!third.closed)
    uv_run(&loop, UV_RUN_ONCE);
  ASSERT_STR_CONTAINS(third.got, "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n");
  ASSERT_STR_CONTAINS(third.got, "\r\n\r\ntoo many connections\n");
  ASSERT_EQ(metric_value(m, "spine_http_connections_refused_total"), 1);
  ASSERT_EQ(metric_value(m, "spine_http_connections_open"), 2);
  ASSERT_EQ(idle.eof, 0);

  /* The held request is answered; then requests go through again. */
  spine_http_server_respond(held, 200, "text/plain", "late", 4);
  while (!first.closed)
    uv_run(&loop, UV_RUN_ONCE);
  ASSERT_STR_CONTAINS(first.got, "HTTP/1.1 200 ");
  until_open(&loop, m, 1);
  raw again;
  raw_start(&loop, &again, port, "GET /in HTTP/1.1\r\nHost: x\r\n\r\n", 0);
  while (!again.closed)
    uv_run(&loop, UV_RUN_ONCE);
  ASSERT_STR_CONTAINS(again.got, "HTTP/1.1 200 ");
  ASSERT_EQ(metric_value(m, "spine_http_requests_refused_total"), 1);
  ASSERT_EQ(metric_value(m, "spine_http_connections_refused_total"), 1);

  int closed = 0;
  spine_http_server_close(srv, on_done, &closed);
  ASSERT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ASSERT_EQ(closed, 1);
  ASSERT_EQ(idle.eof, 1);
  ASSERT_EQ(uv_loop_close(&loop), 0);
  spine_metrics_free(m);
  return 0;
}

static double forty_two(void *data) {
  (void)data;
  return 42;
}

TEST_IMPL(metrics_render) {
  spine_metrics *m = spine_metrics_new();
  ASSERT(m != NULL);
  spine_metric *a = spine_metrics_add(m, SPINE_METRIC_COUNTER, "x_total{k=\"a\"}", "X things");
  ASSERT(a != NULL);
  ASSERT_EQ(spine_metrics_add_fn(m, SPINE_METRIC_GAUGE, "y", "Y now", forty_two, NULL), 0);
  spine_metric *b = spine_metrics_add(m, SPINE_METRIC_COUNTER, "x_total{k=\"b\"}", "X things");
  ASSERT(b != NULL);
  ASSERT(spine_metrics_add(m, SPINE_METRIC_GAUGE, "y", "again") == NULL);
  ASSERT(spine_metrics_add(m, SPINE_METRIC_GAUGE, "9bad", "bad") == NULL);
  ASSERT(spine_metrics_add(m, SPINE_METRIC_GAUGE, "bad{open", "bad") == NULL);
  spine_metrics_inc(a, 2);
  spine_metrics_inc(b, 1);
  spine_metrics_inc(b, 0.5);
  spine_buf out = SPINE_BUF_INIT;
  ASSERT_EQ(spine_metrics_render(m, &out), 0);
  ASSERT_STR_EQ(spine_buf_str(&out), "# HELP x_total X things\n"
                                     "# TYPE x_total counter\n"
                                     "x_total{k=\"a\"} 2\n"
                                     "x_total{k=\"b\"} 1.5\n"
                                     "# HELP y Y now\n"
                                     "# TYPE y gauge\n"
                                     "y 42\n");
  spine_buf_free(&out);
  spine_metrics_free(m);
  return 0;
}
