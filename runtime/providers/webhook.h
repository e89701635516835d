/* The inbound webhook route, POST /v1/webhooks/<provider> (SPEC §6): refuses a source over its
 * rate (429), an unknown provider (404), a request that does not verify (401) and a body that is
 * not JSON (400), in that order, before anything is stored; a request that passes goes to the
 * handler with its delivery id, by which the handler stores it once. The default verification:
 * X-Spine-Timestamp: <unix seconds> within 300 s of the server's clock and X-Spine-Signature:
 * sha256=<hex>, the HMAC-SHA256 of "<timestamp>.<raw body>" keyed with the provider's webhook
 * secret; a provider's adapter may verify its own scheme instead. Never logs a secret, a
 * signature or a body. */
#ifndef SPINE_WEBHOOK_H
#define SPINE_WEBHOOK_H

#include <stddef.h>

#include "err.h"
#include "http_server.h"
#include "metrics.h"
#include "ratelimit.h"

#define SPINE_WEBHOOK_PATH      "/v1/webhooks/"
#define SPINE_WEBHOOK_HEADER    "X-Spine-Signature"
#define SPINE_WEBHOOK_TIMESTAMP "X-Spine-Timestamp"
#define SPINE_WEBHOOK_TOLERANCE 300 /* seconds a timestamp may be from the server's clock */
#define SPINE_WEBHOOK_ID_MAX    200 /* bytes of a delivery id an adapter names */

typedef struct spine_webhooks spine_webhooks;

/* A request being verified or delivered; every pointer is borrowed for the call. */
typedef struct spine_webhook_request {
  const char *provider;
  const char *delivery_id; /* "sig:<hex HMAC>" (default scheme) or "id:<adapter's id>"; NULL
                              while verifying */
  const char *body;
  size_t body_len;
  const char *headers; /* "Name: value\r\n"... as received */
  size_t headers_len;
} spine_webhook_request;

/* Writes the webhook secret of `provider` into out[size]; returns its length, or -1 when the
 * provider is unknown (or has no webhook secret). */
typedef int (*spine_webhook_secret_fn)(void *data, const char *provider, char *out, size_t size);
/* The provider's own verification, if it has one: returns 1 with its delivery id in id[size]
 * (verified), 0 when the provider has none (the default verification applies),
 * SPINE_ENOTFOUND for an unknown provider, or another negative code: refused (401). */
typedef int (*spine_webhook_verify_fn)(void *data, const spine_webhook_request *r, char *id,
                                       size_t size);
/* A verified webhook with a JSON body: answers `x`, now or later (http_server.h). */
typedef void (*spine_webhook_fn)(void *data, const spine_webhook_request *r,
                                 spine_http_server_exchange *x);

typedef struct spine_webhook_ops {
  spine_webhook_secret_fn secret;
  spine_webhook_verify_fn verify; /* may be NULL: the default verification for every provider */
  spine_webhook_fn deliver;
} spine_webhook_ops;

/* Adds the route to `srv`. `metrics` may be NULL; else counts spine_webhooks_total by outcome.
 * Returns 0 with *out (free with spine_webhook_free after the server closed), or an error. */
int spine_webhook_mount(spine_http_server *srv, spine_metrics *metrics,
                        const spine_webhook_ops *ops, void *data, spine_webhooks **out,
                        spine_err *e);
void spine_webhook_free(spine_webhooks *w);

/* Limits the webhooks one source address may send (ratelimit.h; IPv6 by /64): one over its
 * bucket is answered 429 with Retry-After (whole seconds, at least 1) before anything of it is
 * verified, and counted as outcome "rate_limited". `exempt_loopback`: clients on loopback are
 * not limited (a reverse proxy on the host, which would otherwise be one source for all).
 * Without this call nothing is limited. Returns 0 or SPINE_ENOMEM. */
int spine_webhook_rate_limit(spine_webhooks *w, const spine_ratelimit_opts *o, int exempt_loopback);

/* Answers `x` with {"error": {"kind", "message"}} and `status`. */
void spine_webhook_error(spine_http_server_exchange *x, int status, const char *kind,
                         const char *msg);

#endif
