/* The inbound webhook route, POST /v1/webhooks/<provider>: refuses an unknown provider (404),
 * a missing or wrong signature (401: the header X-Spine-Signature: sha256=<hex>, the
 * HMAC-SHA256 of the raw body keyed with the provider's webhook secret) and a body that is
 * not JSON (400), in that order, before anything is stored; a request that passes goes to the
 * handler. Never logs a secret, a signature or a body. */
#ifndef SPINE_WEBHOOK_H
#define SPINE_WEBHOOK_H

#include <stddef.h>

#include "err.h"
#include "http_server.h"
#include "metrics.h"

#define SPINE_WEBHOOK_PATH   "/v1/webhooks/"
#define SPINE_WEBHOOK_HEADER "X-Spine-Signature"

typedef struct spine_webhooks spine_webhooks;

/* Writes the webhook secret of `provider` into out[size]; returns its length, or -1 when the
 * provider is unknown (or has no webhook secret). */
typedef int (*spine_webhook_secret_fn)(void *data, const char *provider, char *out, size_t size);
/* A verified webhook with a JSON body: answers `x`, now or later (http_server.h). */
typedef void (*spine_webhook_fn)(void *data, const char *provider, const char *body, size_t len,
                                 spine_http_exchange *x);

/* Adds the route to `srv`. `metrics` may be NULL; else counts spine_webhooks_total by outcome.
 * Returns 0 with *out (free with spine_webhooks_free after the server closed), or an error. */
int spine_webhooks_mount(spine_http_server *srv, spine_metrics *metrics,
                         spine_webhook_secret_fn secret, spine_webhook_fn fn, void *data,
                         spine_webhooks **out, spine_err *e);
void spine_webhooks_free(spine_webhooks *w);

/* The default secret lookup: $SPINE_SECRET_<PROVIDER>_WEBHOOK_SECRET (provider upper-cased).
 * `data` is unused. */
int spine_webhook_env_secret(void *data, const char *provider, char *out, size_t size);

/* Answers `x` with {"error": {"kind", "message"}} and `status`. */
void spine_webhook_error(spine_http_exchange *x, int status, const char *kind, const char *msg);

#endif
