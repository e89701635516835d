/* The HTTP/1.1 server of `spine serve` and `spine simulate`, on the caller's libuv loop
 * (libh2o's libuv binding). Routes map a method and a path (or a prefix ending in '/') to a
 * handler, which answers at once or later (an exchange stays valid until answered or
 * aborted). Every connection closes after its response; requests must arrive whole within a
 * timeout and within header and body limits, so a slow or hostile client holds one connection
 * for a bounded time and never the loop; connections and requests under way are capped, and
 * closing ends every connection at once. Listens on 127.0.0.1 unless told otherwise. */
#ifndef SPINE_HTTP_SERVER_H
#define SPINE_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "err.h"
#include "metrics.h"

typedef struct spine_http_server spine_http_server;
typedef struct spine_http_server_exchange spine_http_server_exchange;

typedef struct spine_http_server_opts {
  const char *host;       /* numeric IPv4/IPv6 address (default "127.0.0.1") */
  int port;               /* 0 = the system picks one (spine_http_server_port) */
  size_t max_header;      /* bytes of request headers (default 16 KiB; over: 431) */
  size_t max_body;        /* bytes of request body (default 1 MiB; over: 413) */
  uint64_t request_ms;    /* a request, headers and body, must arrive whole within this from
                             the connection's accept (default 10 s): else the connection closes */
  int max_connections;    /* open at once (default 1024); one more is answered 503 and closed
                             at accept, before anything of it is read */
  int max_requests;       /* handed to handlers and not answered yet (default 256); one more is
                             answered 503 with Retry-After before it reaches its handler */
  spine_metrics *metrics; /* may be NULL: else counts requests by status class, connections open
                             and what the caps refused */
} spine_http_server_opts;

/* Handles one request: reads it through the accessors below and answers with
 * spine_http_server_respond() now or later. */
typedef void (*spine_http_server_handler)(void *data, spine_http_server_exchange *x);

/* Parses "host:port", ":port" or "port" into host[size] and *port. 0 or SPINE_EINVAL. */
int spine_http_server_parse_addr(const char *s, char *host, size_t size, int *port, spine_err *e);

/* Binds and listens; ignores SIGPIPE from then on (process-wide). Returns 0 with *out (close with
 * spine_http_server_close), or an error naming the address (UV_EADDRINUSE...). */
int spine_http_server_start(uv_loop_t *loop, const spine_http_server_opts *opts,
                            spine_http_server **out, spine_err *e);
/* Serves one connection the caller already holds, as if accepted (max_connections and
 * request_ms apply): `fd` is a connected stream socket (one end of a socketpair, in the fuzz
 * harnesses); the server owns it from here and closes it when the exchange ends. Returns 0, or
 * a negative error (`fd` is closed then too). */
int spine_http_server_serve_fd(spine_http_server *s, int fd);
/* The port bound (the picked one when opts.port was 0). */
int spine_http_server_port(const spine_http_server *s);
/* Adds a route: `path` matches exactly, or as a prefix when it ends in '/'. The first route
 * registered that matches wins; a path with no route gets 404, a method with none 405.
 * Returns 0 or SPINE_ENOMEM. */
int spine_http_server_route(spine_http_server *s, const char *method, const char *path,
                            spine_http_server_handler fn, void *data);
/* Stops listening, answers requests still waiting for a handler with 503 (calling their
 * abort callbacks), closes every connection still reading a request (a half-sent one
 * included) at once and gives answers being written 1 s to leave, then frees the server and
 * calls done(data) (may be NULL). The loop runs until then. */
void spine_http_server_close(spine_http_server *s, void (*done)(void *data), void *data);

/* ---- the request; every pointer is borrowed until the exchange is answered or aborted ---- */

const char *spine_http_server_method(const spine_http_server_exchange *x, size_t *len);
/* The path without the query string, as sent (not decoded). */
const char *spine_http_server_path(const spine_http_server_exchange *x, size_t *len);
/* What follows the route's prefix ("acme" for "/v1/webhooks/" and "/v1/webhooks/acme"). */
const char *spine_http_server_path_rest(const spine_http_server_exchange *x, size_t *len);
/* The query string after '?', or NULL. */
const char *spine_http_server_query(const spine_http_server_exchange *x, size_t *len);
/* The first header of that name (case-insensitive), or NULL. */
const char *spine_http_server_header(const spine_http_server_exchange *x, const char *name,
                                     size_t *len);
const char *spine_http_server_body(const spine_http_server_exchange *x, size_t *len);
/* Appends every request header to `out` as "Name: value\r\n", in the order received.
 * Returns 0 or SPINE_ENOMEM. */
int spine_http_server_headers(const spine_http_server_exchange *x, spine_buf *out);
/* The client's address into *out. 0, or -1 when the connection cannot say. */
int spine_http_server_peer(const spine_http_server_exchange *x, struct sockaddr_storage *out);
/* 1 when the client connected from a loopback address (127.0.0.0/8, ::1). */
int spine_http_server_peer_loopback(const spine_http_server_exchange *x);
/* The loop's time (uv_now, milliseconds) for the exchange's server. */
uint64_t spine_http_server_now(const spine_http_server_exchange *x);

/* Adds a response header (copied) before spine_http_server_respond. Every answer carries
 * X-Content-Type-Options: nosniff, and Cache-Control: no-store unless one is added here. */
void spine_http_server_add_header(spine_http_server_exchange *x, const char *name,
                                  const char *value);
/* Answers (the body is copied); `x` is gone after. `content_type` may be NULL. */
void spine_http_server_respond(spine_http_server_exchange *x, int status, const char *content_type,
                               const char *body, size_t len);
/* `fn(data)` runs if the exchange ends before the handler answered (the server closes); the
 * handler must then forget `x`. */
void spine_http_server_on_abort(spine_http_server_exchange *x, void (*fn)(void *data), void *data);

#endif
