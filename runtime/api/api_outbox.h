/* The outbox for operators, shared by `spine outbox [--dead] --json`, `spine outbox retry` and
 * GET /v1/outbox/subscribers, GET /v1/outbox/dead, POST /v1/outbox/dead/{id}/redeliver: each
 * subscriber's deliveries, the dead letters, and dead deliveries put back in line. Blocking
 * libpq: the CLI, or a worker thread. */
#ifndef SPINE_API_OUTBOX_H
#define SPINE_API_OUTBOX_H

#include <libpq-fe.h>

#include "buf.h"
#include "err.h"

/* Appends {"<items_key>": [{name, kind, url, events, secret_env, max_attempts, enabled,
 * pending, delivered, dead, oldest_pending_at}], "events": {pending, delivered, dead}} (and
 * "next_cursor": null when items_key is "items"). 0 or SPINE_EDB. */
int spine_api_outbox_subscribers(PGconn *c, const char *items_key, spine_buf *out, spine_err *e);
/* Appends {"<items_key>": [{subscriber, event_id, type, ordering_key, customer_id, attempts,
 * last_error, created_at}]} of at most `limit` dead letters (of `subscriber`, NULL: all). */
int spine_api_outbox_dead(PGconn *c, const char *subscriber, int limit, const char *items_key,
                          spine_buf *out, spine_err *e);
/* Puts the dead deliveries of event `event_id` (digits; NULL: every event) to `subscriber`
 * (NULL: any) back in line; *n: how many. 0, SPINE_ENOTFOUND (field event_id: the event has no
 * dead delivery), SPINE_EINVAL (field event_id: not an event id), or SPINE_EDB. */
int spine_api_outbox_redeliver(PGconn *c, const char *event_id, const char *subscriber, long *n,
                               spine_err *e);

#endif
