/* The HTTP server: libh2o (libuv binding) parses and writes HTTP/1.1; this file owns the
 * listener, the route table, the exchanges waiting for an answer and the open connections, so
 * it can cap them and close can end them at once. It never blocks and never reads a body
 * itself: h2o hands over whole requests within its limits (max_request_entity_size, and
 * http1.req_timeout, which 2.2.5 arms at accept and clears only once headers and body are in). */
#include "http_server.h"

#include <arpa/inet.h>
#include <h2o.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

typedef struct route {
  char *method; /* NULL = any */
  char *path;
  size_t len;
  int prefix; /* path ends in '/': matches what starts with it */
  spine_http_server_handler fn;
  void *data;
} route;

typedef struct handler {
  h2o_handler_t super; /* first: h2o calls on_req with it */
  spine_http_server *srv;
} handler;

/* One accepted connection: libuv's handle, freed by h2o's close callback (a refused one: by
 * ours). Linked in the server's list from accept to that callback. */
typedef struct conn {
  uv_tcp_t tcp;
  spine_http_server *srv;
  struct conn *prev, *next;
} conn;

/* Over max_connections: written at accept, before anything is read, then the socket closes. */
#define BUSY_BODY "too many connections\n"
static const char busy_answer[] = "HTTP/1.1 503 Service Unavailable\r\n"
                                  "Retry-After: 1\r\n"
                                  "Content-Type: text/plain; charset=utf-8\r\n"
                                  "Content-Length: 21\r\n"
                                  "X-Content-Type-Options: nosniff\r\n"
                                  "Cache-Control: no-store\r\n"
                                  "Connection: close\r\n"
                                  "\r\n" BUSY_BODY;
_Static_assert(sizeof BUSY_BODY - 1 == 21, "Content-Length of busy_answer");

/* How long close leaves answers being written to leave before it cuts their connections. */
#define CLOSE_GRACE_MS 1000

struct spine_http_server_exchange {
  h2o_req_t *req;
  spine_http_server *srv;
  spine_http_server_exchange *prev, *next; /* the server's pending list until answered */
  size_t rest_off;                         /* where the route's prefix ends in the path */
  int answered;
  void (*abort_fn)(void *data);
  void *abort_data;
};

struct spine_http_server {
  uv_loop_t *loop;
  spine_http_server_opts o;
  char host[64];
  int port;
  h2o_globalconf_t config;
  h2o_context_t ctx;
  h2o_accept_ctx_t accept;
  uv_tcp_t listener;
  /* Once closing: first cuts the connections left after CLOSE_GRACE_MS (on_grace), then, once
   * none is left, disposes h2o outside its own callbacks (on_finish). */
  uv_timer_t finish;
  route *routes;
  int nroutes, caproutes;
  spine_http_server_exchange *pending; /* handed to a handler, not answered yet: npending of them */
  int npending;
  conn *open; /* accepted and given to h2o, until h2o closes them: conns of them */
  int conns;
  int closing, listener_open;
  void (*done)(void *data);
  void *done_data;
  spine_metric *by_class[6]; /* requests answered, by status class 1xx..5xx */
  spine_metric *conns_open, *conns_refused, *requests_refused;
};

int spine_http_server_parse_addr(const char *s, char *host, size_t size, int *port, spine_err *e) {
  const char *colon = s ? strrchr(s, ':') : NULL;
  const char *p = colon ? colon + 1 : s;
  size_t hlen = colon ? (size_t)(colon - s) : 0;
  if (hlen >= 2 && s[0] == '[' && s[hlen - 1] == ']') s++, hlen -= 2; /* [::1]:80 */
  char *end;
  long v = p && *p ? strtol(p, &end, 10) : -1;
  if (!p || !*p || *end || v < 0 || v > 65535 || hlen >= size)
    return spine_err_set(e, SPINE_EINVAL, NULL, "address",
                         "\"%s\" is not an address (expected host:port, port 0 picks one)",
                         s ? s : "");
  if (hlen) {
    memcpy(host, s, hlen);
    host[hlen] = '\0';
  } else {
    snprintf(host, size, "127.0.0.1");
  }
  *port = (int)v;
  return 0;
}

static const char *reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 413:
      return "Payload Too Large";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return status < 400 ? "OK" : status < 500 ? "Client Error" : "Server Error";
  }
}

static void link_pending(spine_http_server_exchange *x) {
  spine_http_server *s = x->srv;
  x->next = s->pending;
  if (s->pending) s->pending->prev = x;
  s->pending = x;
  s->npending++;
}

static void unlink_pending(spine_http_server_exchange *x) {
  spine_http_server *s = x->srv;
  if (!x->prev && s->pending != x) return; /* not linked */
  if (x->prev)
    x->prev->next = x->next;
  else
    s->pending = x->next;
  if (x->next) x->next->prev = x->prev;
  x->prev = x->next = NULL;
  s->npending--;
}

/* The request's memory pool is being freed: an exchange not answered by then is aborted. */
static void on_exchange_dispose(void *p) {
  spine_http_server_exchange *x = p;
  if (x->answered) return;
  x->answered = 1;
  unlink_pending(x);
  if (x->abort_fn) x->abort_fn(x->abort_data);
}

/* 1 when `headers` hold `lower` (a lowercase name), whatever the case it was added in. */
static int has_header(const h2o_headers_t *headers, const char *lower) {
  for (size_t i = 0; i < headers->size; i++)
    if (h2o_lcstris(headers->entries[i].name->base, headers->entries[i].name->len, lower,
                    strlen(lower)))
      return 1;
  return 0;
}

void spine_http_server_respond(spine_http_server_exchange *x, int status, const char *content_type,
                               const char *body, size_t len) {
  h2o_req_t *req = x->req;
  spine_http_server *s = x->srv;
  x->answered = 1;
  unlink_pending(x);
  int cls = status / 100;
  if (cls >= 1 && cls <= 5) spine_metrics_inc(s->by_class[cls], 1);
  req->res.status = status;
  req->res.reason = reason(status);
  if (content_type)
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   h2o_strdup(&req->pool, content_type, SIZE_MAX).base, strlen(content_type));
  /* Every answer is data for a program, never a page to sniff or a response to keep, unless
   * its handler said how to keep it (the console's assets). */
  h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-content-type-options"), 0,
                        NULL, H2O_STRLIT("nosniff"));
  if (!has_header(&req->res.headers, "cache-control"))
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   H2O_STRLIT("no-store"));
  h2o_send_inline(req, body ? body : "", body ? len : 0); /* copies the body */
}

static void respond_text(spine_http_server_exchange *x, int status, const char *text) {
  spine_http_server_respond(x, status, "text/plain; charset=utf-8", text, strlen(text));
}

void spine_http_server_add_header(spine_http_server_exchange *x, const char *name,
                                  const char *value) {
  h2o_req_t *req = x->req;
  h2o_iovec_t n = h2o_strdup(&req->pool, name, SIZE_MAX);
  h2o_iovec_t v = h2o_strdup(&req->pool, value, SIZE_MAX);
  h2o_add_header_by_str(&req->pool, &req->res.headers, n.base, n.len, 0, NULL, v.base, v.len);
}

void spine_http_server_on_abort(spine_http_server_exchange *x, void (*fn)(void *data), void *data) {
  x->abort_fn = fn;
  x->abort_data = data;
}

static int matches(const route *r, const char *path, size_t len) {
  return r->prefix ? len >= r->len && !memcmp(path, r->path, r->len)
                   : len == r->len && !memcmp(path, r->path, len);
}

static int on_req(h2o_handler_t *self, h2o_req_t *req) {
  spine_http_server *s = ((handler *)self)->srv;
  req->http1_is_persistent = 0; /* one request per connection: nothing idles at close */
  spine_http_server_exchange *x = h2o_mem_alloc_shared(&req->pool, sizeof *x, on_exchange_dispose);
  memset(x, 0, sizeof *x);
  x->req = req;
  x->srv = s;
  /* Counted before this one joins: at the cap, it is refused without reaching a handler. */
  int busy = s->npending >= s->o.max_requests;
  link_pending(x);

  if (s->closing) return respond_text(x, 503, "shutting down\n"), 0;
  if (busy) {
    spine_metrics_inc(s->requests_refused, 1);
    spine_http_server_add_header(x, "Retry-After", "1");
    return respond_text(x, 503, "too many requests under way\n"), 0;
  }
  size_t header_bytes = req->input.path.len + req->input.method.len;
  for (size_t i = 0; i < req->headers.size; i++)
    header_bytes += req->headers.entries[i].name->len + req->headers.entries[i].value.len + 4;
  if (header_bytes > s->o.max_header) return respond_text(x, 431, "headers too large\n"), 0;

  size_t plen;
  const char *path = spine_http_server_path(x, &plen);
  int path_seen = 0;
  for (int i = 0; i < s->nroutes; i++) {
    route *r = &s->routes[i];
    if (!matches(r, path, plen)) continue;
    path_seen = 1;
    if (r->method && !h2o_memis(req->method.base, req->method.len, r->method, strlen(r->method)))
      continue;
    x->rest_off = r->prefix ? r->len : plen;
    r->fn(r->data, x);
    return 0;
  }
  respond_text(x, path_seen ? 405 : 404, path_seen ? "method not allowed\n" : "not found\n");
  return 0;
}

const char *spine_http_server_method(const spine_http_server_exchange *x, size_t *len) {
  *len = x->req->method.len;
  return x->req->method.base;
}

const char *spine_http_server_path(const spine_http_server_exchange *x, size_t *len) {
  const h2o_req_t *req = x->req;
  *len = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
  return req->path.base;
}

const char *spine_http_server_path_rest(const spine_http_server_exchange *x, size_t *len) {
  size_t plen;
  const char *p = spine_http_server_path(x, &plen);
  *len = plen - x->rest_off;
  return p + x->rest_off;
}

const char *spine_http_server_query(const spine_http_server_exchange *x, size_t *len) {
  const h2o_req_t *req = x->req;
  if (req->query_at == SIZE_MAX) return *len = 0, NULL;
  *len = req->path.len - req->query_at - 1;
  return req->path.base + req->query_at + 1;
}

const char *spine_http_server_header(const spine_http_server_exchange *x, const char *name,
                                     size_t *len) {
  const h2o_headers_t *h = &x->req->headers;
  size_t n = strlen(name);
  for (size_t i = 0; i < h->size; i++)
    if (h->entries[i].name->len == n && !strncasecmp(h->entries[i].name->base, name, n)) {
      *len = h->entries[i].value.len;
      return h->entries[i].value.base;
    }
  *len = 0;
  return NULL;
}

int spine_http_server_headers(const spine_http_server_exchange *x, spine_buf *out) {
  const h2o_headers_t *h = &x->req->headers;
  for (size_t i = 0; i < h->size; i++) {
    const h2o_header_t *e = &h->entries[i];
    if (spine_buf_append(out, e->name->base, e->name->len) || spine_buf_puts(out, ": ") ||
        spine_buf_append(out, e->value.base, e->value.len) || spine_buf_puts(out, "\r\n"))
      return SPINE_ENOMEM;
  }
  return 0;
}

int spine_http_server_peer(const spine_http_server_exchange *x, struct sockaddr_storage *out) {
  memset(out, 0, sizeof *out);
  h2o_conn_t *c = x->req->conn;
  if (!c->callbacks->get_peername || !c->callbacks->get_peername(c, (struct sockaddr *)out))
    return -1;
  return 0;
}

uint64_t spine_http_server_now(const spine_http_server_exchange *x) {
  return uv_now(x->srv->loop);
}

int spine_http_server_peer_loopback(const spine_http_server_exchange *x) {
  struct sockaddr_storage ss;
  if (spine_http_server_peer(x, &ss)) return 0;
  if (ss.ss_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
    return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
  }
  if (ss.ss_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
    static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (!memcmp(in6->sin6_addr.s6_addr, v4mapped, 12)) return in6->sin6_addr.s6_addr[12] == 127;
    return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
  }
  return 0;
}

const char *spine_http_server_body(const spine_http_server_exchange *x, size_t *len) {
  *len = x->req->entity.base ? x->req->entity.len : 0;
  return x->req->entity.base ? x->req->entity.base : "";
}

int spine_http_server_route(spine_http_server *s, const char *method, const char *path,
                            spine_http_server_handler fn, void *data) {
  if (s->nroutes == s->caproutes) {
    int cap = s->caproutes ? 2 * s->caproutes : 8;
    route *r = realloc(s->routes, (size_t)cap * sizeof *r);
    if (!r) return SPINE_ENOMEM;
    s->routes = r;
    s->caproutes = cap;
  }
  route *r = &s->routes[s->nroutes];
  r->method = method ? strdup(method) : NULL;
  r->path = strdup(path);
  if ((method && !r->method) || !r->path) {
    free(r->method);
    free(r->path);
    return SPINE_ENOMEM;
  }
  r->len = strlen(path);
  r->prefix = r->len > 1 && path[r->len - 1] == '/';
  r->fn = fn;
  r->data = data;
  s->nroutes++;
  return 0;
}

static void free_server(spine_http_server *s) {
  for (int i = 0; i < s->nroutes; i++) {
    free(s->routes[i].method);
    free(s->routes[i].path);
  }
  free(s->routes);
  free(s);
}

static void on_finish_closed(uv_handle_t *h) {
  spine_http_server *s = container_of(h, spine_http_server, finish);
  void (*done)(void *) = s->done;
  void *data = s->done_data;
  free_server(s);
  if (done) done(data);
}

static void on_finish(uv_timer_t *t) {
  spine_http_server *s = container_of(t, spine_http_server, finish);
  h2o_context_dispose(&s->ctx);
  h2o_config_dispose(&s->config);
  uv_close((uv_handle_t *)&s->finish, on_finish_closed);
}

static void maybe_finish(spine_http_server *s) {
  if (s->closing && !s->listener_open && s->conns == 0) uv_timer_start(&s->finish, on_finish, 0, 0);
}

/* Shuts the socket down under h2o, which then ends the connection by its own paths: a read
 * sees EOF (SHUT_RD; h2o reads only until a request is whole), a write fails (SHUT_WR). */
static void cut(conn *c, int how) {
  uv_os_fd_t fd;
  if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0) shutdown(fd, how);
}

static void on_grace(uv_timer_t *t) {
  spine_http_server *s = container_of(t, spine_http_server, finish);
  for (conn *c = s->open; c; c = c->next)
    cut(c, SHUT_RDWR);
}

static void on_conn_closed(uv_handle_t *h) {
  conn *c = container_of((uv_tcp_t *)h, conn, tcp);
  spine_http_server *s = c->srv;
  if (c->prev)
    c->prev->next = c->next;
  else
    s->open = c->next;
  if (c->next) c->next->prev = c->prev;
  free(c);
  s->conns--;
  spine_metrics_set(s->conns_open, s->conns);
  maybe_finish(s);
}

static void on_accept_closed(uv_handle_t *h) {
  free(container_of((uv_tcp_t *)h, conn, tcp));
}

/* A connection open on the loop, accepted or handed over: refused with 503 over the cap, else
 * given to h2o. Returns 0, or SPINE_ENOMEM (the connection closed). */
static int serve(spine_http_server *s, conn *c) {
  if (s->conns >= s->o.max_connections) {
    /* Accepted, so the kernel's queue does not fill, and closed at once: a fresh socket's send
     * buffer takes the answer whole, or the client gets only the close. */
    uv_buf_t b = uv_buf_init((char *)busy_answer, sizeof busy_answer - 1);
    uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    cut(c, SHUT_WR);
    spine_metrics_inc(s->conns_refused, 1);
    uv_close((uv_handle_t *)&c->tcp, on_accept_closed);
    return 0;
  }
  h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)&c->tcp, on_conn_closed);
  if (!sock) {
    uv_close((uv_handle_t *)&c->tcp, on_accept_closed);
    return SPINE_ENOMEM;
  }
  c->next = s->open;
  if (s->open) s->open->prev = c;
  s->open = c;
  s->conns++;
  spine_metrics_set(s->conns_open, s->conns);
  h2o_accept(&s->accept, sock);
  return 0;
}

static void on_connection(uv_stream_t *l, int status) {
  spine_http_server *s = container_of((uv_tcp_t *)l, spine_http_server, listener);
  if (status < 0 || s->closing) return;
  conn *c = malloc(sizeof *c);
  if (!c) return;
  c->srv = s;
  c->prev = c->next = NULL;
  uv_tcp_init(s->loop, &c->tcp);
  if (uv_accept(l, (uv_stream_t *)&c->tcp)) {
    uv_close((uv_handle_t *)&c->tcp, on_accept_closed);
    return;
  }
  serve(s, c);
}

/* The accepted path without the listener: uv_tcp_open takes any stream socket, a Unix one too
 * (libuv sets no TCP option on it); its peer is then no loopback address. */
int spine_http_server_serve_fd(spine_http_server *s, int fd) {
  conn *c = s->closing ? NULL : malloc(sizeof *c);
  if (!c) {
    close(fd);
    return s->closing ? UV_ECANCELED : SPINE_ENOMEM;
  }
  c->srv = s;
  c->prev = c->next = NULL;
  uv_tcp_init(s->loop, &c->tcp);
  int rc = uv_tcp_open(&c->tcp, fd);
  if (rc) {
    close(fd);
    uv_close((uv_handle_t *)&c->tcp, on_accept_closed);
    return rc;
  }
  return serve(s, c);
}

static void on_listener_closed(uv_handle_t *h) {
  spine_http_server *s = container_of((uv_tcp_t *)h, spine_http_server, listener);
  s->listener_open = 0;
  maybe_finish(s);
}

void spine_http_server_close(spine_http_server *s, void (*done)(void *data), void *data) {
  if (s->closing) return;
  s->closing = 1;
  s->done = done;
  s->done_data = data;
  uv_close((uv_handle_t *)&s->listener, on_listener_closed);
  while (s->pending) {
    spine_http_server_exchange *x = s->pending;
    void (*fn)(void *) = x->abort_fn;
    x->abort_fn = NULL;
    if (fn) fn(x->abort_data);
    if (s->pending == x) respond_text(x, 503, "shutting down\n");
  }
  /* A connection still reading its request (nothing sent yet, half the headers, part of the
   * body) would hold the close until the request timeout: its read ends now. The others are
   * writing their answer (the 503s above among them) and close once it is out; on_grace cuts
   * those a client does not read. */
  for (conn *c = s->open; c; c = c->next)
    cut(c, SHUT_RD);
  uv_timer_start(&s->finish, on_grace, CLOSE_GRACE_MS, 0);
}

int spine_http_server_port(const spine_http_server *s) {
  return s->port;
}

static spine_metric *metric(spine_metrics *m, spine_metric_type type, const char *name,
                            const char *help) {
  spine_metric *x = spine_metrics_find(m, name);
  return x ? x : spine_metrics_add(m, type, name, help);
}

static void register_metrics(spine_http_server *s) {
  spine_metrics *m = s->o.metrics;
  if (!m) return;
  for (int c = 1; c <= 5; c++) {
    char name[64];
    snprintf(name, sizeof name, "spine_http_requests_total{code=\"%dxx\"}", c);
    s->by_class[c] =
        metric(m, SPINE_METRIC_COUNTER, name, "HTTP requests answered, by status class");
  }
  s->conns_open = metric(m, SPINE_METRIC_GAUGE, "spine_http_connections_open",
                         "HTTP connections open (at most SPINE_HTTP_MAX_CONNECTIONS)");
  s->conns_refused =
      metric(m, SPINE_METRIC_COUNTER, "spine_http_connections_refused_total",
             "HTTP connections answered 503 and closed at accept: over the connection cap");
  s->requests_refused =
      metric(m, SPINE_METRIC_COUNTER, "spine_http_requests_refused_total",
             "HTTP requests answered 503 before their handler: over the cap of requests under way");
}

static void on_failed_closed(uv_handle_t *h) {
  free(container_of((uv_tcp_t *)h, spine_http_server, listener));
}

int spine_http_server_start(uv_loop_t *loop, const spine_http_server_opts *opts,
                            spine_http_server **out, spine_err *e) {
  *out = NULL;
  signal(SIGPIPE, SIG_IGN); /* a peer gone mid-write must fail the write, not end the process */
  spine_http_server *s = calloc(1, sizeof *s);
  if (!s) return spine_err_set(e, SPINE_ENOMEM, "http", NULL, "out of memory");
  s->loop = loop;
  s->o = *opts;
  snprintf(s->host, sizeof s->host, "%s", opts->host ? opts->host : "127.0.0.1");
  if (!s->o.max_header) s->o.max_header = 16 * 1024;
  if (!s->o.max_body) s->o.max_body = 1024 * 1024;
  if (!s->o.request_ms) s->o.request_ms = 10000;
  if (s->o.max_connections <= 0) s->o.max_connections = 1024;
  if (s->o.max_requests <= 0) s->o.max_requests = 256;

  struct sockaddr_storage addr;
  int rc = uv_ip4_addr(s->host, opts->port, (struct sockaddr_in *)&addr);
  if (rc) rc = uv_ip6_addr(s->host, opts->port, (struct sockaddr_in6 *)&addr);
  if (rc) {
    free(s);
    return spine_err_set(e, SPINE_EINVAL, "http", "address", "\"%s\" is not a numeric IP address",
                         opts->host);
  }
  uv_tcp_init(loop, &s->listener);
  rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&addr, 0);
  if (!rc) rc = uv_listen((uv_stream_t *)&s->listener, 511, on_connection);
  if (rc) {
    spine_err_set(e, rc, "http", "address", "cannot listen on %s:%d: %s", s->host, opts->port,
                  uv_strerror(rc));
    uv_close((uv_handle_t *)&s->listener, on_failed_closed); /* frees s */
    return rc;
  }
  struct sockaddr_storage bound;
  int blen = sizeof bound;
  uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &blen);
  s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                              : ((struct sockaddr_in *)&bound)->sin_port);
  s->listener_open = 1;
  uv_timer_init(loop, &s->finish);

  h2o_config_init(&s->config);
  s->config.server_name = h2o_iovec_init(H2O_STRLIT("spine"));
  s->config.max_request_entity_size = s->o.max_body;
  s->config.http1.req_timeout = s->o.request_ms;
  /* No HTTP/2 in cleartext, neither by Upgrade: h2c nor by prior knowledge (libh2o gates both on
   * this flag): 2.2.5 has no defence against Rapid Reset (CVE-2023-44487). */
  s->config.http1.upgrade_to_http2 = 0;
  h2o_hostconf_t *host =
      h2o_config_register_host(&s->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
  h2o_pathconf_t *pc = h2o_config_register_path(host, "/", 0);
  handler *h = (handler *)h2o_create_handler(pc, sizeof *h);
  h->srv = s;
  h->super.on_req = on_req;
  h2o_context_init(&s->ctx, loop, &s->config);
  s->accept.ctx = &s->ctx;
  s->accept.hosts = s->config.hosts;
  register_metrics(s);
  *out = s;
  return 0;
}
