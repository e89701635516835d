/* The outbox's subscribers, dead letters and redelivery (api_outbox.h). */
#include "api_outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgconn.h"

/* The queries read as SQL. */
/* clang-format off */
#define ISO(c) "to_char(" c " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

static const char summary_sql[] =
    "SELECT (jsonb_build_object($1::text, coalesce((SELECT jsonb_agg(jsonb_build_object("
    " 'name', s.name, 'kind', s.kind, 'url', s.url, 'events', to_jsonb(s.events),"
    " 'secret_env', s.secret_env, 'max_attempts', s.max_attempts, 'enabled', s.enabled,"
    " 'pending', coalesce(d.pending, 0), 'delivered', coalesce(d.delivered, 0),"
    " 'dead', coalesce(d.dead, 0), 'oldest_pending_at', " ISO("d.oldest") ")"
    " ORDER BY s.kind <> 'signal', s.kind <> 'start', s.name)"
    " FROM spine.outbox_subscribers s LEFT JOIN (SELECT subscriber,"
    " count(*) FILTER (WHERE status = 'pending') AS pending,"
    " count(*) FILTER (WHERE status = 'delivered') AS delivered,"
    " count(*) FILTER (WHERE status = 'dead') AS dead,"
    " min(created_at) FILTER (WHERE status = 'pending') AS oldest"
    " FROM spine.outbox_deliveries GROUP BY subscriber) d ON d.subscriber = s.name), '[]'),"
    " 'events', (SELECT jsonb_build_object("
    " 'pending', count(*) FILTER (WHERE status = 'pending'),"
    " 'delivered', count(*) FILTER (WHERE status = 'delivered'),"
    " 'dead', count(*) FILTER (WHERE status = 'dead')) FROM lifecycle.outbox))"
    " || CASE WHEN $1 = 'items' THEN '{\"next_cursor\": null}'::jsonb ELSE '{}' END)::text";

static const char dead_sql[] =
    "SELECT (jsonb_build_object($3::text, coalesce(jsonb_agg(x.j ORDER BY x.event_id,"
    " x.subscriber), '[]')) || CASE WHEN $3 = 'items' THEN '{\"next_cursor\": null}'::jsonb"
    " ELSE '{}' END)::text FROM (SELECT d.event_id, d.subscriber, jsonb_build_object("
    " 'subscriber', d.subscriber, 'event_id', d.event_id, 'type', o.event_type,"
    " 'ordering_key', d.ordering_key, 'customer_id', d.customer_id, 'attempts', d.attempts,"
    " 'last_error', d.last_error, 'created_at', " ISO("o.created_at") ") AS j"
    " FROM spine.outbox_deliveries d JOIN lifecycle.outbox o"
    " ON o.customer_id = d.customer_id AND o.event_id = d.event_id"
    " WHERE d.status = 'dead' AND ($1::text IS NULL OR d.subscriber = $1)"
    " ORDER BY d.event_id, d.subscriber LIMIT $2::int) x";

/* Dead deliveries back in line: attempts from zero, due now; the relay hears of it. */
static const char retry_sql[] =
    "WITH r AS (UPDATE spine.outbox_deliveries SET status = 'pending', attempts = 0,"
    " next_attempt_at = now(), claimed_by = NULL, claimed_until = NULL"
    " WHERE status = 'dead' AND ($1::int8 IS NULL OR event_id = $1::int8)"
    " AND ($2::text IS NULL OR subscriber = $2) RETURNING event_id, subscriber)"
    " SELECT count(*), pg_notify('spine_outbox', '') FROM r";

/* clang-format on */

int spine_api_outbox_subscribers(PGconn *c, const char *items_key, spine_buf *out, spine_err *e) {
  const char *p[1] = {items_key};
  return spine_pgconn_text(c, summary_sql, 1, p, out, e);
}

int spine_api_outbox_dead(PGconn *c, const char *subscriber, int limit, const char *items_key,
                          spine_buf *out, spine_err *e) {
  char lim[16];
  snprintf(lim, sizeof lim, "%d", limit > 0 && limit <= 1000 ? limit : 100);
  const char *p[3] = {subscriber, lim, items_key};
  return spine_pgconn_text(c, dead_sql, 3, p, out, e);
}

int spine_api_outbox_redeliver(PGconn *c, const char *event_id, const char *subscriber, long *n,
                               spine_err *e) {
  *n = 0;
  if (event_id &&
      (!*event_id || strlen(event_id) > 18 || strspn(event_id, "0123456789") != strlen(event_id)))
    return spine_err_set(e, SPINE_EINVAL, NULL, "event_id", "not an event id: %.40s", event_id);
  const char *p[2] = {event_id, subscriber};
  PGresult *r = spine_pgconn_query(c, retry_sql, 2, p, e);
  if (!r) return e->code;
  *n = atol(PQgetvalue(r, 0, 0));
  PQclear(r);
  if (event_id && *n == 0)
    return spine_err_set(e, SPINE_ENOTFOUND, NULL, "event_id", "event %s has no dead delivery%s%s",
                         event_id, subscriber ? " to " : "", subscriber ? subscriber : "");
  return 0;
}
