/* Provider adapters (SPEC §6): the Lua files in providers/ with their settings
 * (providers/providers.json) and secrets, run sandboxed in a Lua state of their own, with the
 * provider context `p` (http on the loop, email over SMTP, secret, config, idempotency_key,
 * log, transient, rejected, render). The router tries an operation's channels in order: a
 * transient failure moves to the next channel, a rejection does not; a circuit breaker per
 * provider and channel and a rate limit per provider sit in front of every attempt. Nothing
 * here is durable: ctx.provider records what a call returned. Values cross as JSON text.
 * Implemented by providers.c (loading), provconf.c (providers.json), pctx.c (`p` and one
 * attempt), router.c (channels, breakers, rate limits), secrets.c, webhook_actions.c. */
#ifndef SPINE_PROVIDERS_H
#define SPINE_PROVIDERS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "err.h"
#include "http_client.h"
#include "metrics.h"
#include "provider_port.h"

typedef struct spine_providers spine_providers;

/* The longest provider or channel name. */
#define SPINE_PROVIDERS_NAME_MAX 63

/* Whether name[len] may name a provider (its adapter's file name, without .lua) or a channel:
 * 1 to SPINE_PROVIDERS_NAME_MAX lower-case letters, digits, '_' or '-'. */
int spine_providers_valid_name(const char *name, size_t len);

typedef struct spine_providers_opts {
  const char *dir;          /* adapters and providers.json (default "providers") */
  const char *environment;  /* the providers.json override block to apply (default
                               $SPINE_ENV; NULL or "" = none) */
  const char *secrets_file; /* JSON {"<provider>": {"<name>": "..."}} (default
                               $SPINE_SECRETS_FILE; NULL = environment only) */
  spine_http_client *http;  /* shared; NULL = the registry makes its own */
  spine_metrics *metrics;   /* may be NULL; else breakers, rate limits and calls are exposed */
  int64_t instructions;     /* budget per resume of an adapter (default 10M) */
  int64_t mem_limit;        /* bytes one call may hold (default 16 MB) */
  int quiet;                /* no log lines of the registry's own (breaker changes); p.log
                               lines are the adapters' and always written */
} spine_providers_opts;

/* Loads every providers/<name>.lua and providers.json (a missing directory is an empty
 * registry), the templates providers/templates/<name>.txt and the secrets file. A bad adapter
 * or setting is an error naming file, line and field (spine_err_format: "providers/
 * providers.json:7: acme.rate_limit: must be a positive number ..."); nothing is half-loaded
 * and *out stays NULL. Files are read here, blocking, once: never while calls run.
 *
 * providers.json: {"<provider>": {"base_url", "rate_limit": rps, "timeout": "20s",
 * "breaker": {"failures": 5, "cooldown": "30s"}, "channels": [...], "allowed_hosts": ["host",
 * "host:port"], any other key}, "smtp": {"url", "from"}, "environments": {"<env>":
 * {"<provider>" | "smtp": {overrides}}}}. Every key of a provider's block (with its
 * environment's keys laid over it) is p.config, read-only. "channels" may reorder or leave out
 * the adapter's channels, not add any. p.http reaches base_url's host and port and the
 * allowed_hosts, nothing else (a provider with neither reaches no host). */
int spine_providers_new(uv_loop_t *loop, const spine_providers_opts *o, spine_providers **out,
                        spine_err *e);
/* Cancels calls in flight (their callbacks do not run), closes the adapters' state and the
 * handles; the last memory goes when the loop has run the handles' close callbacks (run the
 * loop after, as with libuv). May be called from a call's callback. */
void spine_providers_free(spine_providers *ps);
/* Attaches the metrics registry after creation (the HTTP side of serve makes it later). */
void spine_providers_set_metrics(spine_providers *ps, spine_metrics *m);
/* Appends the providers' breakers, rate limits and calls by outcome (spine_router_status_json),
 * on the loop only; `ps` NULL: []. */
void spine_providers_status_json(const spine_providers *ps, struct spine_buf *out);
/* The clock of the breakers' cool-downs, ms (default: the loop's): the engine's. */
void spine_providers_set_clock(spine_providers *ps, int64_t (*now_ms)(void *data), void *data);
/* The registry as the engine's provider port (provider_port.h): spine_providers_call, _cancel,
 * _has and _set_clock with `impl` = ps. Hand it to spine_engine_new; free the registry once
 * spine_engine_stop returned (the assembler owns both). */
spine_provider_port spine_providers_port(spine_providers *ps);

/* Starts a call. Returns 0 (cb runs exactly once later, from a loop callback, never inside this
 * function, unless the call is cancelled), or SPINE_ENOTFOUND (no such provider, or no channel
 * offers the operation) / SPINE_EINVAL (args not a JSON object) with e->msg saying which,
 * without calling cb. *out may be NULL.
 *
 * Each channel attempt runs the operation in a new coroutine with `p`, takes one token of the
 * provider's bucket (rate_limit per second, burst max(1, rate_limit); without a token it waits
 * on a timer, in call order, and counts in spine_provider_rate_limited_total) and passes its
 * channel's breaker (opens after breaker.failures consecutive transient failures; after the
 * cool-down one probe call goes through: success closes it, a transient failure re-opens it;
 * rejections and adapter faults count as answers). p.http(url, {json | body, headers,
 * timeout}) returns {status, headers (names lower-cased), body, json?} for any status and
 * raises a transient error only for transport failures; p.email.send{to, subject, body, from?}
 * sends with Message-ID and X-Idempotency-Key from the idempotency key. */
int spine_providers_call(spine_providers *ps, const spine_provider_request *r, spine_provider_cb cb,
                         void *data, spine_provider_call **out, spine_err *e);
/* Stops a call in flight (its HTTP requests are cancelled); its callback never runs. */
void spine_providers_cancel(spine_provider_call *c);
/* Calls in flight. */
int spine_providers_running(const spine_providers *ps);

/* Whether `provider` has an adapter. */
int spine_providers_has(const spine_providers *ps, const char *provider);

/* A secret of a provider: $SPINE_SECRET_<PROVIDER>_<NAME> (upper-cased, '-' as '_'), else the
 * secrets file. Writes it into out[size] and returns its length, or -1 when there is none (or
 * it does not fit). */
int spine_providers_secret(spine_providers *ps, const char *provider, const char *name, char *out,
                           size_t size);

/* An inbound webhook: as received for verify; verified and known to hold JSON for the handler. */
typedef struct spine_provider_webhook {
  const char *provider;
  const char *body;
  size_t body_len;
  const char *headers; /* "Name: value\r\n"... as received; may be NULL */
  size_t headers_len;
} spine_provider_webhook;

/* Runs the adapter's webhook(p, request) (or webhook.handle(p, request)) (request = {body, json,
 * headers}, header names lower-cased) synchronously, under the instruction budget; it may not call
 * p.http or p.email (they raise). Appends to `actions` a JSON array of what to do (canonical JSON:
 * keys sorted; a missing payload or input is {}; nil returned is []; every secret handed out is
 * "[secret]"),
 * each one
 *   {"signal": name, "workflow_id": id, "payload": {...}}   or
 *   {"signal": name, "contract_id": id, "payload": {...}}   or
 *   {"start": process, "input": {...}, "idempotency_key": k?}
 * (the adapter may return one such table or a list of them). Returns 0, SPINE_ENOTFOUND (no
 * adapter or no webhook function) or SPINE_EINVAL (the adapter raised, or returned another
 * shape: e->msg says what, with file:line), writing nothing. */
int spine_providers_webhook(spine_providers *ps, const spine_provider_webhook *w,
                            spine_buf *actions, spine_err *e);
/* Runs the adapter's webhook.verify(p, request) (the table form of webhook; request as above,
 * `json` only when the body is JSON), synchronously under the instruction budget. Returns 1
 * with the delivery id it returned in id[size] (a non-empty string of at most size - 1 bytes),
 * 0 when the adapter has no verify (the default verification applies), SPINE_ENOTFOUND (no
 * such adapter) or SPINE_EINVAL when it raised or returned something else (e->msg says what,
 * scrubbed; the request is refused). */
int spine_providers_webhook_verify(spine_providers *ps, const spine_provider_webhook *w, char *id,
                                   size_t size, spine_err *e);

#endif
