/* Outbound HTTP on the caller's libuv loop: libcurl's multi interface driven by uv_poll
 * handles (one per socket curl asks for) and one uv_timer, so a request never blocks the loop
 * and nothing polls. TLS peers are verified; only http and https are spoken; redirects are
 * never followed (a 3xx is the answer); each request has a timeout and a cap on the response
 * it will hold in memory. A URL is read once, by libcurl's URL parser, and the transfer goes
 * where that reading says (spine_http_client_dest_of tells callers where, to check it first). The
 * same client runs the SMTP transfers of mail.h (spine_http_client_start). */
#ifndef SPINE_HTTP_CLIENT_H
#define SPINE_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "err.h"

typedef struct spine_http_client spine_http_client;
typedef struct spine_http_client_call spine_http_client_call;

typedef enum {
  SPINE_HTTP_CLIENT_GET,
  SPINE_HTTP_CLIENT_POST,
  SPINE_HTTP_CLIENT_PUT,
  SPINE_HTTP_CLIENT_PATCH,
  SPINE_HTTP_CLIENT_DELETE
} spine_http_client_verb;

typedef struct spine_http_client_request {
  spine_http_client_verb method;
  const char *url;            /* an absolute http:// or https:// URL */
  const char *const *headers; /* "Name: value" strings, NULL-terminated; may be NULL */
  const char *body;           /* copied; may be NULL */
  size_t body_len;            /* bytes of body */
  const char *traceparent;    /* sent as the W3C `traceparent` header when not NULL */
  int64_t timeout_ms;         /* the whole call, connect included (default 30 s) */
  size_t max_response;        /* bytes of response body kept (default 1 MiB) */
} spine_http_client_request;

/* What a call ended with. Valid only during the callback. */
typedef struct spine_http_client_response {
  int error;           /* 0: a response came (any status); else SPINE_ETIMEOUT, SPINE_ETRANSIENT
                          (no connection, reset, empty reply), SPINE_ELIMIT (response over
                          max_response), SPINE_EINVAL (bad URL), SPINE_EIO (TLS, other),
                          SPINE_ECANCELLED (the client closed) */
  int transient;       /* 1 when trying again may work: timeouts, connection failures, 5xx, 429 */
  int status;          /* HTTP status, 0 without a response (SMTP: the last reply code) */
  const char *headers; /* the final response's header lines, "Name: value\r\n"... (SMTP: the
                          server's last reply line) */
  size_t headers_len;
  const char *body; /* NUL-terminated; body_len bytes */
  size_t body_len;
  char message[256]; /* what went wrong, for logs (never a header or body) */
} spine_http_client_response;

typedef void (*spine_http_client_cb)(void *data, const spine_http_client_response *res);

/* Returns 0 with a client on `loop`, or an error (curl without asynchronous DNS is refused:
 * it would resolve names on the loop). */
int spine_http_client_new(uv_loop_t *loop, spine_http_client **out, spine_err *e);
/* Ends every call still running (their callbacks run with SPINE_ECANCELLED), closes the
 * handles, frees the client, then calls done(data) (may be NULL) from the loop. */
void spine_http_client_close(spine_http_client *c, void (*done)(void *data), void *data);

/* Starts a call; `cb` runs exactly once from the loop unless the call is cancelled first.
 * *out (may be NULL) is the handle for spine_http_client_cancel, valid until `cb` runs. Returns 0,
 * or SPINE_EINVAL (a header with CR/LF; no URL, or one spine_http_client_dest_of refuses) /
 * SPINE_ENOMEM without calling `cb`: nothing was sent. */
int spine_http_client_send(spine_http_client *c, const spine_http_client_request *req,
                           spine_http_client_cb cb, void *data, spine_http_client_call **out,
                           spine_err *e);
/* Stops a running call at once; its callback never runs. */
void spine_http_client_cancel(spine_http_client_call *call);
/* Calls running now. */
int spine_http_client_running(const spine_http_client *c);

/* ---- where a URL goes ---- */

/* A URL's destination as libcurl reads it, which is where spine_http_client_send connects
 * (userinfo, percent-encoding in the host and the numeric forms of IPv4 addresses are resolved by
 * that reading, not by hand). */
typedef struct spine_http_client_dest {
  int https;      /* 0: http */
  char host[256]; /* lower-case, without a trailing dot; an IPv6 address in brackets */
  int port;       /* the URL's, else 80 or 443 */
} spine_http_client_dest;

/* Reads `url` as spine_http_client_send does: an absolute http:// or https:// URL; any other
 * scheme, a relative or malformed URL or an IPv6 zone id is SPINE_EINVAL, e->msg saying why. */
int spine_http_client_dest_of(const char *url, spine_http_client_dest *out, spine_err *e);

/* A host an operator allows: "host" (any port), "host:port", "[v6]" or "[v6]:port". */
typedef struct spine_http_client_host {
  char host[256]; /* as in spine_http_client_dest */
  int port;       /* 0: any */
} spine_http_client_host;

/* Reads one such entry; SPINE_EINVAL when it is something else (a URL, a path, userinfo). */
int spine_http_client_host_parse(const char *spec, spine_http_client_host *out, spine_err *e);
/* 1 when `d` goes to host `h` (on its port, if it names one), else 0. */
int spine_http_client_host_match(const spine_http_client_host *h, const spine_http_client_dest *d);

/* The value of the first response header `name` (case-insensitive), trimmed, or NULL. */
const char *spine_http_client_response_header(const spine_http_client_response *res,
                                              const char *name, size_t *len);
/* "GET"... */
const char *spine_http_client_verb_name(spine_http_client_verb m);

/* ---- other protocols on the same client (mail.c) ---- */

/* How a transfer's outcome is read: HTTP statuses, or SMTP reply codes (a 4xx reply is
 * SPINE_ETRANSIENT, a 5xx reply SPINE_EIO; accepted: error 0, status the last reply code). */
typedef enum { SPINE_HTTP_CLIENT_PROTO_HTTP, SPINE_HTTP_CLIENT_PROTO_SMTP } spine_http_client_proto;

/* Starts a call on `easy`, a CURL * the caller set up for its protocol (URL, protocols,
 * transfer callbacks); the client adds its own PRIVATE, NOSIGNAL, ERRORBUFFER, header callback,
 * TLS verification and timeouts (`timeout_ms`, default 30 s). The call owns `easy` and `owned`
 * (freed by free_owned(owned), may be NULL, once `easy` is gone) from here on, also when this
 * fails. Then as spine_http_client_send: 0, or SPINE_ENOMEM / SPINE_EINVAL (the client is closing)
 * without calling `cb`. */
int spine_http_client_start(spine_http_client *c, void *easy, spine_http_client_proto proto,
                            int64_t timeout_ms, void *owned, void (*free_owned)(void *owned),
                            spine_http_client_cb cb, void *data, spine_http_client_call **out,
                            spine_err *e);

#endif
