/* The provider port: what the engine needs from provider adapters, and no more. The engine
 * owns this interface; runtime/providers implements it (spine_providers_port) and whoever
 * assembles a process (serve, run, bench, the tests) creates the adapters and hands the port to
 * spine_engine_new, so the engine never includes the providers' layer. Values cross as JSON. */
#ifndef SPINE_PROVIDER_PORT_H
#define SPINE_PROVIDER_PORT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* A call in flight; the implementation's. */
typedef struct spine_provider_call spine_provider_call;

typedef enum {
  SPINE_PROVIDER_OK,        /* json is the operation's result */
  SPINE_PROVIDER_TRANSIENT, /* every channel failed transiently (or its breaker is open, or the
                               attempt timed out): trying again later may work */
  SPINE_PROVIDER_REJECTED,  /* p.rejected: a business answer, never retried */
  SPINE_PROVIDER_INVALID,   /* the adapter is wrong (raised a non-transient error, returned
                               something JSON cannot hold, ran out of its instruction budget or
                               memory): retrying will not help; no other channel is tried */
} spine_provider_kind;

typedef struct spine_provider_outcome {
  spine_provider_kind kind;
  /* OK: the result as JSON. Else the error as JSON: {"kind": "transient"|"rejected"|
   * "invalid_argument", "code", "message", "provider", "operation", "channel",
   * "details"?, "attempts": [{"channel", "code", "message"}...]}, its code and message
   * those of the last attempt. Codes: transient: "transient" (p.transient), "timeout" (the
   * attempt's timeout, or p.http's own), "unavailable" (no connection, reset, TLS),
   * "circuit_open" (a channel skipped by its breaker; in attempts); rejected: "rejected"
   * (p.rejected), "smtp_refused" (a 5xx SMTP reply); invalid_argument: "runtime_error",
   * "instruction_budget", "memory_limit", "invalid_result", "host_not_allowed" (p.http to a
   * host the provider's settings do not name: nothing was sent). Messages of adapter errors start
   * with "providers/acme.lua:12:". Every secret any adapter of the registry was handed, and its
   * forms (secrets.h), is replaced by "[secret]" in every string of it (keys too; a secret that
   * appears only as a JSON number is not). */
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

/* The adapters behind the port; every function takes `impl` first. Borrowed by the engine from
 * spine_engine_new until spine_engine_stop returns: stop cancels the engine's calls in flight
 * and gives the breakers back their own clock; after it, the owner may free the adapters. */
typedef struct spine_provider_port {
  void *impl;
  /* Starts a call: 0 (cb runs exactly once later, from a loop callback, unless cancelled), or
   * SPINE_ENOTFOUND (no such provider or operation) / SPINE_EINVAL (args not a JSON object)
   * with e->msg saying which, without calling cb. */
  int (*call)(void *impl, const spine_provider_request *r, spine_provider_cb cb, void *data,
              spine_provider_call **out, spine_err *e);
  /* Stops a call in flight; its callback never runs. */
  void (*cancel)(void *impl, spine_provider_call *c);
  /* Whether `provider` has an adapter. */
  int (*has)(void *impl, const char *provider);
  /* The clock of the breakers' cool-downs, ms; NULL: the implementation's own. */
  void (*set_clock)(void *impl, int64_t (*now_ms)(void *data), void *data);
} spine_provider_port;

#endif
