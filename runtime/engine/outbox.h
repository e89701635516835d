/* The outbox relay of `spine serve`: delivers the events of lifecycle.outbox to their
 * subscribers (runtime/sql/0004_outbox_relay.sql) at least once, in order per ordering_key —
 * signals to the running workflows of a contract, cases started by manifests' on_events, and
 * HTTP webhooks with retries, backoff and dead letters. Runs on the engine's loop and store,
 * woken by NOTIFY spine_outbox and one timer for the earliest due delivery; never blocks the
 * loop (case starts run in a libuv worker thread). Owns its HTTP client and the deliveries in
 * flight; the database owns every delivery's state. */
#ifndef SPINE_OUTBOX_H
#define SPINE_OUTBOX_H

#include <stdint.h>
#include <uv.h>

#include "engine.h"
#include "err.h"
#include "metrics.h"

/* The only environment variables a subscriber's secret may come from. */
#define SPINE_OUTBOX_SECRET_PREFIX "SPINE_OUTBOX_SECRET_"
/* The variable that lets plaintext http:// subscribers through, host by host. */
#define SPINE_OUTBOX_ALLOW_HTTP    "SPINE_OUTBOX_ALLOW_HTTP"

typedef struct spine_outbox spine_outbox;

/* Starts the processes whose manifests in force list `event_type` in on_events, with
 * `input_json` as the case input, at most once per (event, process) however often it is
 * called for one event (the event id makes the idempotency key). Runs in a libuv worker thread,
 * never two at once: may block, must not touch the loop. Returns 0, or an error with `e`
 * saying why (the delivery is tried again after a backoff). */
typedef int (*spine_outbox_start_fn)(void *data, int64_t event_id, const char *event_type,
                                     const char *input_json, const char *trace_id, spine_err *e);

typedef struct spine_outbox_opts {
  int64_t backoff_ms;          /* the first retry's delay (default 1 s), doubling each attempt */
  int64_t backoff_max_ms;      /* the longest delay (default 1 h); half of each is random */
  int64_t timeout_ms;          /* per webhook POST, connect included (default 10 s) */
  int max_in_flight;           /* webhook POSTs at once (default 32) */
  spine_outbox_start_fn start; /* NULL: deliveries to `starts` wait for a worker that has one */
  void *start_data;
  const char *allow_http; /* SPINE_OUTBOX_ALLOW_HTTP: the hosts whose http:// subscribers are
                             POSTed to (spine_outbox_check_url); NULL: none. Copied. */
  int quiet;              /* no info logs */
} spine_outbox_opts;

/* Whether `url` may be a webhook subscriber's: an https:// URL, or an http:// one whose host
 * `allow_http` lists (comma-separated "host", any port, or "host:port"; NULL or "" lists none):
 * events are business data, and a signature does not hide them on the wire. Returns 0, or
 * SPINE_EINVAL with e->msg saying why not (or which entry of allow_http is no host). */
int spine_outbox_check_url(const char *url, const char *allow_http, spine_err *e);

/* Registers the relay's statements with the store: call once before the engine opens it. */
void spine_outbox_init(void);
/* Creates the relay on the engine's loop and store. Call before spine_engine_serve (it listens
 * on spine_outbox); it delivers once the loop runs. Returns 0 and *out, or an error (also for
 * an allow_http that lists something other than hosts). A delivery the relay refuses to make
 * (a subscriber URL spine_outbox_check_url refuses, a secret that is not an outbox secret) is
 * dead at once, its error naming the subscriber and why: no attempt would go otherwise. */
int spine_outbox_new(uv_loop_t *loop, spine_engine *eng, const spine_outbox_opts *opts,
                     spine_outbox **out, spine_err *e);
/* Registers the relay's figures in `m` (spine_outbox_*): deliveries, retries and dead letters
 * per kind of subscriber, pending deliveries, the relay's lag, POSTs in flight. */
int spine_outbox_metrics(spine_outbox *r, spine_metrics *m);
/* Stops delivering and cancels the POSTs in flight (their claims lapse: another worker, or
 * this one's next start, delivers them again). Call before spine_engine_stop. */
void spine_outbox_stop(spine_outbox *r);
/* Frees the relay once the loop has ended. */
void spine_outbox_free(spine_outbox *r);

#endif
