/* What the CLI and the HTTP API share of reading and acting on workflows (issue 14: one
 * implementation an action): the queries of `spine show`, `spine explain` and `spine list`
 * (GET /v1/workflows...), and the operator actions, which call the SQL functions of
 * runtime/sql/0010_operator_actions.sql (this file writes no row itself). Blocking libpq: the
 * CLI, or a worker thread of `spine serve`. */
#ifndef SPINE_API_OPS_H
#define SPINE_API_OPS_H

#include <libpq-fe.h>

#include "buf.h"
#include "err.h"

/* One workflow as a JSON object with its steps (SPEC §8), by id $1: one row, or none. */
extern const char spine_api_workflow_sql[];
/* Why workflow $1 is where it is: column 0 the facts and `explanation` as JSON, column 1 the
 * sentence alone; one row, or none. */
extern const char spine_api_explain_sql[];

/* The incidents as a JSON array, oldest first: every one when $1 is true, else the open ones.
 * One row. */
extern const char spine_api_incidents_sql[];

/* The manifests in force: {"<$1>": [{process, path, hash, manifest}], loaded_at, loaded_by}, one
 * row (`spine manifests show`, GET /v1/manifests). */
extern const char spine_api_manifests_sql[];

/* The columns a filter may compare for equality, NULL-terminated: status, process, playbook,
 * version, variant, experiment, state. */
extern const char *const spine_api_filter_keys[];

/* Which workflows: each field NULL when not asked. `eq[i]` goes with spine_api_filter_keys[i];
 * attributes compare `attributes ->> attr_key[i]`; created_* are ISO 8601 times. Borrowed. */
typedef struct spine_api_filter {
  const char *eq[8];
  const char *attr_key[4], *attr_value[4];
  int nattr;
  const char *created_after, *created_before;
  const char *cursor; /* list only: the next_cursor of the page before */
  int limit;          /* list: page size (1 to 1000, 0: 100); bulk: most acted on (0: 1000) */
} spine_api_filter;

/* Sets the filter's `key` (one of the keys above, "attribute.K", "created_after",
 * "created_before") to `value` (both borrowed). 0, or SPINE_EINVAL naming the key. */
int spine_api_filter_set(spine_api_filter *f, const char *key, const char *value, spine_err *e);

/* Appends one page {"<items_key>": [workflows, newest first], "next_cursor": C or null} to out.
 * The cursor is opaque (hex of the last item's position). 0, SPINE_EINVAL (field "cursor",
 * "limit", "created_after"...), or SPINE_EDB. */
int spine_api_list(PGconn *c, const spine_api_filter *f, const char *items_key, spine_buf *out,
                   spine_err *e);

/* Appends {"<items_key>": [{process, variant, status, count}]} to out: the workflows `f`
 * matches (its cursor and limit unused) counted by process, variant and status, in one GROUP BY
 * (GET /v1/workflows/counts). 0 or SPINE_EDB. */
int spine_api_counts(PGconn *c, const spine_api_filter *f, const char *items_key, spine_buf *out,
                     spine_err *e);

typedef enum { SPINE_API_CANCEL, SPINE_API_RETRY } spine_api_action;

/* Cancels or retries workflow `id` as `actor` (recorded: cancelled_by, retried_by, incidents'
 * resolved_by); appends {"id", "status"} to out. 0, SPINE_ENOTFOUND, SPINE_ETRANSITION (its
 * status does not allow it), or SPINE_EDB. */
int spine_api_act(PGconn *c, spine_api_action a, const char *id, const char *actor, spine_buf *out,
                  spine_err *e);
/* Every workflow `f` matches that the action may change (at most f->limit, oldest first): rows
 * (id, status), found (dry run) or, with `act`, changed as `actor`. *out: caller PQclears.
 * A filter must name at least one condition. 0, SPINE_EINVAL, or SPINE_EDB. */
int spine_api_bulk(PGconn *c, spine_api_action a, const spine_api_filter *f, int act,
                   const char *actor, PGresult **out, spine_err *e);
/* Appends {"dry_run", "matched", "workflows": [{id, status}]} for rows of spine_api_bulk. */
void spine_api_bulk_json(PGresult *r, int dry_run, spine_buf *out);

/* Resolves paused workflow `id`'s incident by skipping its step with `result` (JSON; NULL:
 * null) as `actor`; appends {"id", "status", "skipped": {"seq", "step"}}. */
int spine_api_skip(PGconn *c, const char *id, const char *result, const char *actor, spine_buf *out,
                   spine_err *e);

/* Delivers signal `name` with `data` (JSON; NULL: {}) to workflow `id`; appends {"id", "signal",
 * "signal_id"}. 0, SPINE_ENOTFOUND (field id), SPINE_ETRANSITION (*code "ended"), SPINE_EINVAL
 * (field data), or SPINE_EDB. */
int spine_api_signal(PGconn *c, const char *id, const char *name, const char *data, spine_buf *out,
                     const char **code, spine_err *e);

#endif
