/* Human tasks: list, show, claim, resolve (api_tasks.h). */
#include "api_tasks.h"

#include <stdio.h>
#include <string.h>

#include "api_intents.h"
#include "duration.h"
#include "log.h"
#include "pgconn.h"

int spine_api_tasks_list(PGconn *c, const spine_api_tasks_filter *f, spine_buf *out, spine_err *e) {
  int limit = f->limit ? f->limit : 100;
  if (limit < 1 || limit > 1000)
    return spine_err_set(e, SPINE_EINVAL, NULL, "limit", "a page holds 1 to 1000 tasks");
  int64_t ms;
  if (f->due_before && spine_duration_parse_time(f->due_before, &ms, NULL))
    return spine_err_set(e, SPINE_EINVAL, NULL, "due_before",
                         "\"%.64s\" is not a time (ISO 8601: 2026-03-01T09:00:00Z)", f->due_before);
  if (f->cursor && (!*f->cursor || strlen(f->cursor) > 600 ||
                    strspn(f->cursor, "0123456789abcdef") != strlen(f->cursor)))
    return spine_err_set(e, SPINE_EINVAL, NULL, "cursor",
                         "not a cursor this server gave (use next_cursor as it is)");
  char lim[16];
  snprintf(lim, sizeof lim, "%d", limit);
  const char *p[6] = {f->kind, f->subject, f->assignee, f->due_before, f->cursor, lim};
  return spine_pgconn_text(
      c, "SELECT lifecycle.task_page($1, $2, $3, $4::timestamptz, $5, $6::int)::text", 6, p, out,
      e);
}

int spine_api_tasks_get(PGconn *c, const char *id, spine_buf *out, spine_err *e) {
  const char *p[1] = {id};
  PGresult *r = spine_pgconn_query(c, "SELECT lifecycle.task_get($1)::text", 1, p, e);
  if (!r) return e->code;
  int rc = 0;
  if (PQgetisnull(r, 0, 0))
    rc = spine_err_set(e, SPINE_ENOTFOUND, NULL, "id", "no task %.64s", id);
  else
    spine_buf_puts(out, PQgetvalue(r, 0, 0));
  PQclear(r);
  return rc;
}

int spine_api_tasks_claim(PGconn *c, const char *id, const char *actor, spine_buf *out,
                          spine_err *e) {
  const char *p[2] = {id, actor};
  return spine_pgconn_text(c, "SELECT lifecycle.task_claim($1, $2)::text", 2, p, out, e);
}

int spine_api_tasks_resolve(PGconn *c, const char *id, const char *outcome, const char *data,
                            const char *actor, const char *trace_id, spine_buf *out, spine_err *e) {
  spine_buf args = SPINE_BUF_INIT;
  spine_buf_puts(&args, "{\"task_id\":");
  spine_log_json_string(&args, id, strlen(id));
  spine_buf_puts(&args, ",\"outcome\":");
  spine_log_json_string(&args, outcome, strlen(outcome));
  spine_buf_printf(&args, ",\"data\":%s}", data ? data : "{}");
  /* The operator's ResolveTask: checked against the form, in the transaction that applies it. */
  int rc = spine_api_intents_apply(c, "ResolveTask", spine_buf_str(&args), actor, trace_id, out, e);
  spine_buf_free(&args);
  return rc;
}
