/* The provider context `p` (SPEC §6) and the run of one adapter function in a coroutine of
 * its own: p.http and p.email yield until their exchange on the loop ends, p.secret reads the
 * secret store and remembers every value it hands out, for the registry's life, so that
 * nothing leaving any call (result, error, log line) carries one, nor its simple forms. An attempt
 * owns its coroutine, its timeout timer and its exchange in flight; it never retries, never picks a
 * channel (router.c does). */
#ifndef SPINE_PCTX_H
#define SPINE_PCTX_H

#include <lua.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "err.h"
#include "http_client.h"
#include "provconf.h"
#include "providers.h"
#include "secrets.h"

typedef struct spine_pctx spine_pctx;

/* What every call of one registry shares; owned by the registry, outlives its attempts. */
typedef struct spine_pctx_host {
  uv_loop_t *loop;
  lua_State *L; /* the adapters' own state (never the playbooks') */
  spine_http_client *http;
  const char *smtp_url, *smtp_from;
  int templates_ref; /* registry ref of {name = text} from providers/templates/<name>.txt */
  /* The secret store: as spine_providers_secret. */
  int (*secret)(void *data, const char *provider, const char *name, char *out, size_t size);
  void *secret_data;
  int64_t instructions; /* per resume */
  int64_t mem_limit;    /* bytes the call may hold */
  spine_pctx *running;  /* the attempt whose coroutine runs now (p's functions act on it) */
  /* Every secret p.secret handed to any adapter since the registry loaded, with its forms
   * (secrets.h): an adapter may keep one in its module state and return it from a later call
   * that never read it, so each call's output is scrubbed of all of them. At most
   * SPINE_SECRETS_MAX values: past it p.secret refuses to hand out another. Free with
   * spine_secrets_free once no call runs. */
  spine_secrets secrets;
} spine_pctx_host;

/* Which function runs (registry[table_ref][field]) and what it sees as p. Strings are copied. */
typedef struct spine_pctx_target {
  const char *provider;
  const char *file; /* "providers/acme.lua", for messages */
  const char *channel;
  const char *operation;
  int table_ref;
  const char *field;
  int config_ref;                       /* registry ref of p.config */
  const spine_provconf_entry *settings; /* where p.http may go (spine_provconf_reaches); may be
                                           NULL: nowhere. Outlives the attempt. */
  const char *idempotency_key, *traceparent, *workflow_id; /* may be NULL */
  const char *args_json;                                   /* a JSON object */
  int64_t timeout_ms;                                      /* of the attempt; > 0 */
} spine_pctx_target;

/* How an attempt ended. `json` is the result (OK) or the error's details (else; empty when
 * there are none), neither scrubbed yet (the host's secrets scrub them). */
typedef struct spine_pctx_result {
  spine_provider_kind kind;
  char code[32];     /* "transient", "timeout", "unavailable", "rejected", "runtime_error",
                        "instruction_budget", "memory_limit", "invalid_result", ... */
  char message[512]; /* may hold a secret: scrub before it leaves */
  spine_buf json;
} spine_pctx_result;

typedef void (*spine_pctx_done)(void *data, spine_pctx_result *r);

/* Sets up, once per state, the shared parts of p (functions, the error marker) for host `h`,
 * which must outlive the state. Runs Lua unprotected: call from a protected C function. */
void spine_pctx_open(lua_State *L, spine_pctx_host *h);

/* Starts an attempt: *out is set first, then the function runs until it yields or ends.
 * `done` runs exactly once, maybe before this returns (a function that did not yield), unless
 * the attempt is cancelled. The attempt frees itself after `done` (handles close on the loop).
 * Returns 0, or SPINE_ENOMEM without calling done. */
int spine_pctx_start(spine_pctx_host *h, const spine_pctx_target *t, spine_pctx_done done,
                     void *data, spine_pctx **out);
/* Stops an attempt (its exchange in flight is cancelled); `done` never runs. */
void spine_pctx_cancel(spine_pctx *a);

/* Runs webhook(p, request) synchronously (p.http and p.email raise) and writes the actions
 * as providers.h describes (a JSON array, scrubbed). Returns 0 or SPINE_EINVAL with e->msg
 * saying what (file:line, scrubbed), writing nothing. */
int spine_pctx_webhook(spine_pctx_host *h, const spine_pctx_target *t,
                       const spine_provider_webhook *w, spine_buf *actions, spine_err *e);
/* Runs webhook.verify(p, request) synchronously (as spine_pctx_webhook) and writes the delivery
 * id it returned into id[size]. Returns 0, or SPINE_EINVAL with e->msg saying what (raised, or
 * returned no string, an empty one or one of size bytes or more; scrubbed). */
int spine_pctx_webhook_verify(spine_pctx_host *h, const spine_pctx_target *t,
                              const spine_provider_webhook *w, char *id, size_t size, spine_err *e);

#endif
