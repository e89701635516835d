/* The HTTP server's limits and routes against real clients on 127.0.0.1: 404/405, a body or
 * headers over the limits (413, 431), a client that never finishes its request (closed after
 * the request timeout while other requests are served), and the metrics registry's text. */
#include "http_client.h"
#include "http_server.h"
#include "metrics.h"

#include "test.h"

#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

typedef struct answer {
  int calls, error, status;
} answer;

static void on_answer(void *data, const spine_http_response *r) {
  answer *a = data;
  a->calls++;
  a->error = r->error;
  a->status = r->status;
}

static void ok(void *data, spine_http_exchange *x) {
  (void)data;
  spine_http_respond(x, 200, "text/plain", "ok", 2);
}

static void on_done(void *data) {
  (*(int *)data)++;
}

static void call(uv_loop_t *loop, spine_http_client *cli, spine_http_verb verb, const char *url,
                 const char *const *headers, const char *body, size_t len, answer *a) {
  spine_http_request r = {0};
  r.method = verb;
  r.url = url;
  r.headers = headers;
  r.body = body;
  r.body_len = len;
  ASSERT_EQ(spine_http_send(cli, &r, on_answer, a, NULL, NULL), 0);
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
  call(&loop, cli, SPINE_HTTP_POST, u, NULL, "{}", 2, &fine);
  ASSERT_EQ(fine.status, 200);
  call(&loop, cli, SPINE_HTTP_GET, u, NULL, NULL, 0, &method);
  ASSERT_EQ(method.status, 405);
  char *big = malloc(8192);
  ASSERT(big != NULL);
  memset(big, 'a', 8192);
  call(&loop, cli, SPINE_HTTP_POST, u, NULL, big, 2048, &body);
  ASSERT_EQ(body.status, 413);
  memcpy(big, "X-Big: ", 7);
  big[6000] = '\0';
  const char *headers[] = {big, NULL};
  call(&loop, cli, SPINE_HTTP_POST, u, headers, "{}", 2, &head);
  ASSERT_EQ(head.status, 431);
  free(big);
  snprintf(u, sizeof u, "%s/elsewhere", base);
  call(&loop, cli, SPINE_HTTP_GET, u, NULL, NULL, 0, &missing);
  ASSERT_EQ(missing.status, 404);
  ASSERT_EQ(spine_metric_value(spine_metrics_find(m, "spine_http_requests_total{code=\"2xx\"}")),
            1);
  /* 413 comes from h2o before a handler runs: only 405, 431 and 404 pass through ours */
  ASSERT_EQ(spine_metric_value(spine_metrics_find(m, "spine_http_requests_total{code=\"4xx\"}")),
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

/* ---- a client that sends half a request and waits ---- */

typedef struct slow {
  uv_tcp_t tcp;
  uv_connect_t connect;
  uv_write_t write;
  int connected, eof, closed;
  answer *other; /* a normal request's answer, sampled when the slow one is cut */
  int other_done_before_eof;
  char buf[256];
} slow;

static void slow_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf) {
  (void)size;
  slow *s = container_of((uv_tcp_t *)h, slow, tcp);
  *buf = uv_buf_init(s->buf, sizeof s->buf);
}

static void slow_closed(uv_handle_t *h) {
  container_of((uv_tcp_t *)h, slow, tcp)->closed = 1;
}

static void slow_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
  (void)buf;
  slow *s = container_of((uv_tcp_t *)st, slow, tcp);
  if (n >= 0) return; /* h2o may say nothing before closing */
  s->eof = 1;
  s->other_done_before_eof = s->other->calls;
  uv_close((uv_handle_t *)&s->tcp, slow_closed);
}

static void slow_written(uv_write_t *w, int status) {
  ASSERT_EQ(status, 0);
  slow *s = container_of(w, slow, write);
  s->connected = 1;
  uv_read_start((uv_stream_t *)&s->tcp, slow_alloc, slow_read);
}

static void slow_connected(uv_connect_t *c, int status) {
  ASSERT_EQ(status, 0);
  slow *s = container_of(c, slow, connect);
  static char half[] = "POST /in HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"a\":";
  uv_buf_t b = uv_buf_init(half, sizeof half - 1);
  uv_write(&s->write, (uv_stream_t *)&s->tcp, &b, 1, slow_written);
}

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
  slow s;
  memset(&s, 0, sizeof s);
  s.other = &other;
  uv_tcp_init(&loop, &s.tcp);
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", spine_http_server_port(srv), &addr);
  uv_tcp_connect(&s.connect, &s.tcp, (struct sockaddr *)&addr, slow_connected);
  while (!s.connected)
    uv_run(&loop, UV_RUN_ONCE);

  /* The half request holds a connection, not the loop: another client is served meanwhile. */
  char u[96];
  snprintf(u, sizeof u, "http://127.0.0.1:%d/in", spine_http_server_port(srv));
  call(&loop, cli, SPINE_HTTP_POST, u, NULL, "{}", 2, &other);
  ASSERT_EQ(other.status, 200);
  ASSERT_EQ(s.eof, 0);
  /* ... and the server cuts the slow one at the request timeout. */
  while (!s.closed)
    uv_run(&loop, UV_RUN_ONCE);
  ASSERT_EQ(s.eof, 1);
  ASSERT_EQ(s.other_done_before_eof, 1);

  int closed = 0;
  spine_http_server_close(srv, on_done, &closed);
  spine_http_client_close(cli, on_done, &closed);
  ASSERT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ASSERT_EQ(closed, 2);
  ASSERT_EQ(uv_loop_close(&loop), 0);
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
  spine_metric_inc(a, 2);
  spine_metric_inc(b, 1);
  spine_metric_inc(b, 0.5);
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
