/* Provider adapters (SPEC §6): the Lua files in providers/ with their settings
 * (providers/providers.json) and secrets, run sandboxed in a Lua state of their own, with the
 * provider context `p` (http on the loop, email over SMTP, secret, config, idempotency_key,
 * log, transient, rejected, render). The router tries an operation's channels in order: a
 * transient failure moves to the next channel, a rejection does not; a circuit breaker per
 * provider and channel and a rate limit per provider sit in front of every attempt. Nothing
 * here is durable: ctx.provider records what a call returned. Values cross as JSON text. */
#ifndef SPINE_PROVIDERS_H
#define SPINE_PROVIDERS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "err.h"
#include "http_client.h"
#include "metrics.h"

typedef struct spine_providers spine_providers;
typedef struct spine_provider_call spine_provider_call;

typedef struct spine_providers_opts {
  const char *dir;          /* adapters and providers.json (default "providers") */
  const char *environment;  /* the providers.json override block to apply (default
                               $SPINE_ENV; NULL or "" = none) */
  const char *secrets_file; /* JSON {"<provider>": {"<name>": "..."}} (default
                               $SPINE_SECRETS_FILE; NULL = environment only) */
  spine_http_client *http;  /* shared; NULL = the registry makes its own */
  spine_metrics *metrics;   /* may be NULL; else breakers, rate limits and calls are exposed */
  int64_t instructions;     /* budget per resume of an adapter (default 10M) */
  int64_t mem_limit;        /* bytes one call may grow (default 16 MB) */
  int quiet;
} spine_providers_opts;

/* Loads every providers/<name>.lua and providers.json (a missing directory is an empty
 * registry). A bad adapter or setting is an error naming file, line and field; nothing is
 * half-loaded. */
int spine_providers_new(uv_loop_t *loop, const spine_providers_opts *o, spine_providers **out,
                        spine_err *e);
/* Cancels calls in flight (their callbacks do not run), closes handles, then frees. */
void spine_providers_free(spine_providers *ps);
/* Attaches the metrics registry after creation (the HTTP side of serve makes it later). */
void spine_providers_set_metrics(spine_providers *ps, spine_metrics *m);

typedef enum {
  SPINE_PROVIDER_OK,        /* json is the operation's result */
  SPINE_PROVIDER_TRANSIENT, /* every channel failed transiently (or its breaker is open, or the
                               attempt timed out): trying again later may work */
  SPINE_PROVIDER_REJECTED,  /* p.rejected: a business answer, never retried */
  SPINE_PROVIDER_INVALID,   /* the adapter is wrong (raised a non-transient error, returned
                               something JSON cannot hold): retrying will not help */
} spine_provider_kind;

typedef struct spine_provider_outcome {
  spine_provider_kind kind;
  /* OK: the result as JSON. Else the error as JSON: {"kind": "transient"|"rejected"|
   * "invalid_argument", "code", "message", "provider", "operation", "channel",
   * "details"?, "attempts": [{"channel", "code", "message"}...]}. Secrets the call read
   * are replaced by "[secret]" everywhere in it. */
  const char *json;
  size_t json_len;
  const char *channel; /* the channel that answered last ("" if none ran) */
} spine_provider_outcome;

/* Runs once per call, from the loop; the outcome is valid only during the callback. */
typedef void (*spine_provider_cb)(void *data, const spine_provider_outcome *o);

typedef struct spine_provider_request {
  const char *provider;
  const char *operation;
  const char *args_json;       /* the operation's argument table as JSON ({} if NULL) */
  const char *idempotency_key; /* p.idempotency_key: "<workflow id>:<step seq>" */
  const char *traceparent;     /* W3C traceparent sent by p.http, may be NULL */
  const char *workflow_id;     /* for logs, may be NULL */
  int64_t timeout_ms;          /* per channel attempt (0 = the provider's setting, else 30 s) */
} spine_provider_request;

/* Starts a call. Returns 0 (cb runs exactly once later, unless the call is cancelled), or
 * SPINE_ENOTFOUND (no such provider, or no channel offers the operation) / SPINE_EINVAL (args
 * not a JSON object) with e->msg saying which, without calling cb. *out may be NULL. */
int spine_providers_call(spine_providers *ps, const spine_provider_request *r, spine_provider_cb cb,
                         void *data, spine_provider_call **out, spine_err *e);
/* Stops a call in flight (its HTTP requests are cancelled); its callback never runs. */
void spine_providers_cancel(spine_provider_call *c);
/* Calls in flight. */
int spine_providers_running(const spine_providers *ps);

/* Whether `provider` has an adapter. */
int spine_providers_has(const spine_providers *ps, const char *provider);

/* A secret of a provider: $SPINE_SECRET_<PROVIDER>_<NAME> (upper-cased), else the secrets
 * file. Writes it into out[size] and returns its length, or -1 when there is none. */
int spine_providers_secret(spine_providers *ps, const char *provider, const char *name, char *out,
                           size_t size);

/* An inbound webhook, already verified (signature) and known to hold JSON. */
typedef struct spine_provider_webhook {
  const char *provider;
  const char *body;
  size_t body_len;
  const char *headers; /* "Name: value\r\n"... as received; may be NULL */
  size_t headers_len;
} spine_provider_webhook;

/* Runs the adapter's webhook(p, request) (request = {body, json, headers}); it may not call
 * p.http or p.email (they raise). Writes into `actions` a JSON array of what to do, each one
 *   {"signal": name, "workflow_id": id, "payload": {...}}   or
 *   {"signal": name, "contract_id": id, "payload": {...}}   or
 *   {"start": process, "input": {...}, "idempotency_key": k?}
 * (the adapter may return one such table or a list of them). Returns 0, SPINE_ENOTFOUND (no
 * adapter or no webhook function) or SPINE_EINVAL (the adapter raised, or returned another
 * shape: e->msg says what, with file:line), writing nothing. */
int spine_providers_webhook(spine_providers *ps, const spine_provider_webhook *w,
                            spine_buf *actions, spine_err *e);

#endif
