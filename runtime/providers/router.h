/* The router of provider calls (SPEC §6): an operation's channels in order, a transient
 * failure moving on to the next and a rejection stopping; a circuit breaker per provider and
 * channel, a token-bucket rate limit per provider (a call without a token waits on a timer,
 * never fails), metrics, and the outcome JSON with every attempt listed. Owns the calls and
 * the limiter timers; the registry (providers.c) owns the providers' definitions. */
#ifndef SPINE_ROUTER_H
#define SPINE_ROUTER_H

#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "metrics.h"
#include "pctx.h"
#include "providers.h"

typedef enum {
  SPINE_ROUTER_BREAKER_CLOSED = 0,
  SPINE_ROUTER_BREAKER_OPEN = 1,
  SPINE_ROUTER_BREAKER_HALF_OPEN = 2, /* the cool-down passed: one probe call may go through */
} spine_router_breaker_state;

/* Outcomes counted per provider and channel (spine_provider_calls_total{outcome}). */
enum {
  SPINE_ROUTER_OK,
  SPINE_ROUTER_TRANSIENT,
  SPINE_ROUTER_REJECTED,
  SPINE_ROUTER_INVALID,
  SPINE_ROUTER_CIRCUIT_OPEN,
  SPINE_ROUTER_OUTCOMES
};

typedef struct spine_router spine_router;
typedef struct spine_router_provider spine_router_provider;

typedef struct spine_router_channel {
  char *name;
  int ops_ref; /* registry ref of the adapter's table of operations for this channel */
  spine_router_provider *provider;
  /* The breaker. Invariant: `probing` only while HALF_OPEN; `opened_at` set while not
   * CLOSED. HALF_OPEN is entered lazily, when a call asks after the cool-down. */
  spine_router_breaker_state state;
  int failures; /* consecutive transient failures */
  uint64_t opened_at;
  int probing; /* a half-open probe call is under way */
  spine_metric *calls[SPINE_ROUTER_OUTCOMES];
} spine_router_channel;

struct spine_router_provider {
  char *name;
  char *file; /* "providers/acme.lua" */
  spine_router_channel *channels;
  int nchannels;
  int module_ref, config_ref;
  const spine_provconf_entry *settings; /* its providers.json entry (borrowed), or NULL */
  int has_webhook;                      /* webhook = function(p, request), or a table with handle */
  int webhook_ref;    /* the table form {verify?, handle}, or LUA_NOREF for the function form */
  int has_verify;     /* the table form has verify: the adapter's own scheme replaces the default */
  int64_t timeout_ms; /* per attempt; 0 = 30 s */
  int breaker_failures;
  int64_t breaker_cooldown_ms;
  /* The rate limit: tokens refill at `rps` per second up to max(1, rps); calls without a
   * token wait in FIFO order for `timer`. rps 0 = none. */
  double rps, tokens;
  uint64_t refilled_at;
  uv_timer_t timer;
  spine_provider_call *wait_head, *wait_tail;
  int64_t waited; /* calls that had to wait for a token, ever */
  spine_metric *rate_limited;
  spine_router *router;
};

struct spine_router {
  uv_loop_t *loop;
  spine_pctx_host *host;
  spine_router_provider *providers; /* borrowed from the registry */
  int nproviders;
  spine_provider_call *calls;                   /* every call not yet ended, doubly linked */
  spine_provider_call *ready_head, *ready_tail; /* started, waiting for `kick` */
  uv_timer_t kick;                              /* runs new calls from the loop */
  int running;
  spine_metrics *metrics; /* where the metrics are registered, or NULL */
  int quiet;              /* no log line when a breaker opens */
  int handles;            /* open libuv handles: the kick timer and each provider's */
  void (*closed)(void *data);
  void *closed_data;
  /* The breakers' clock, ms (NULL: the loop's): the engine's, so that a cool-down passes on a
   * manual clock as the test says, not as the wall clock does. */
  int64_t (*clock)(void *data);
  void *clock_data;
};

/* Sets up `r` and the providers' limiter timers (the providers and host must outlive it). */
void spine_router_init(spine_router *r, uv_loop_t *loop, spine_pctx_host *host,
                       spine_router_provider *providers, int n);
/* Registers the metrics of every provider and channel in `m` (may be NULL). */
void spine_router_set_metrics(spine_router *r, spine_metrics *m);
/* Cancels every call (no callbacks), closes the timers, then calls closed(data) from the
 * loop. */
void spine_router_close(spine_router *r, void (*closed)(void *data), void *data);

/* Queues a call; runs it from the loop. The request has been checked (provider exists, some
 * channel offers the operation, args are a JSON object). Returns 0 or SPINE_ENOMEM. */
int spine_router_call(spine_router *r, spine_router_provider *p, const spine_provider_request *q,
                      spine_provider_cb cb, void *data, spine_provider_call **out);
void spine_router_cancel(spine_provider_call *c);
/* The breaker state of a channel as the metrics show it (HALF_OPEN once the cool-down passed). */
spine_router_breaker_state spine_router_breaker(const spine_router_channel *ch);

/* Appends the providers as the router knows them, on the loop (the breakers and counters are
 * the loop's, unlocked): [{provider, breaker, rate_limit: {rps, waited}, calls: {outcome: n},
 * channels: [{channel, breaker, calls}]}], the provider's breaker its worst channel's (open, then
 * half_open, then closed), its calls the sum of its channels' (the numbers of /metrics: 0
 * before spine_router_set_metrics). */
void spine_router_status_json(const spine_router *r, spine_buf *out);

#endif
