/* Reading and acting on workflows, shared by the CLI and the HTTP API (api_ops.h). */
#include "api_ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duration.h"
#include "log.h"
#include "pgconn.h"
#include "sql.h"

/* The queries read as SQL, one clause a line. */
/* clang-format off */
#define EPOCH_ISO(c) "to_char(" c " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

const char spine_api_workflow_sql[] =
    "SELECT jsonb_build_object('id', w.id, 'status', w.status, 'process', w.process,"
    " 'playbook', w.playbook, 'version', w.version, 'variant', w.variant, 'params', w.params,"
    " 'experiment', w.experiment, 'subject', w.subject, 'bucket', w.bucket, 'state', w.state, 'outcome', w.outcome,"
    " 'attributes', w.attributes,"
    " 'input', w.input, 'result', w.result, 'error', w.error, 'parent_id', w.parent_id,"
    " 'trace_id', w.trace_id, 'attempt', w.attempt,"
    " 'cancelled_by', w.cancelled_by, 'retried_by', w.retried_by,"
    " 'created_at', " EPOCH_ISO("w.created_at") ", 'updated_at', " EPOCH_ISO("w.updated_at") ","
    /* repairs (0013_repair.sql): the fork's origin and the original's forks, a migration, the
       process's maximum run time, pruning */
    " 'forked_from', w.forked_from, 'forked_at_step', w.forked_at_step,"
    " 'forks', (SELECT coalesce(jsonb_agg(jsonb_build_object('id', f.id, 'from_step',"
    " f.forked_at_step) ORDER BY f.created_at, f.id), '[]'::jsonb) FROM spine.workflows f"
    " WHERE f.forked_from = w.id),"
    " 'migrated_from', w.migrated_from, 'migrated_at', " EPOCH_ISO("w.migrated_at") ","
    " 'max_duration', w.max_duration, 'deadline_at', " EPOCH_ISO("w.deadline_at") ","
    " 'pruned_at', " EPOCH_ISO("w.pruned_at") ","
    " 'waiting_for', CASE WHEN w.status = 'waiting' THEN w.waiting_for"
    " WHEN w.status = 'running' AND w.owner IS NOT NULL THEN jsonb_build_object('kind', 'lease',"
    " 'name', 'worker ' || w.owner) END,"
    " 'steps', (SELECT coalesce(jsonb_agg(jsonb_build_object('seq', s.seq, 'kind', s.kind,"
    " 'name', s.name, 'status', s.status, 'attempt', s.attempt, 'result', s.result,"
    " 'error', s.error, 'started_at', " EPOCH_ISO("s.started_at") ","
    " 'ended_at', " EPOCH_ISO("s.ended_at") ", 'wake_at', " EPOCH_ISO("s.wake_at") ","
    " 'branch', s.branch)"
    " ORDER BY s.seq), '[]'::jsonb) FROM spine.steps s WHERE s.workflow_id = w.id))::text"
    " FROM spine.workflows w WHERE w.id = $1";

#define ISO(x) "to_char((" x ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
/* Ages and time left: on the engine's clock (a manual one in tests), read as the statement runs,
 * after its snapshot, so that a step it sees committed is never in its future. */
#define AGO(x) "date_trunc('second', spine.clock_timestamp() - (" x "))::text"

const char spine_api_explain_sql[] =
    "WITH w AS (SELECT * FROM spine.workflows WHERE id = $1),"
    " s AS (SELECT st.* FROM spine.steps st, w WHERE st.workflow_id = w.id"
    "       ORDER BY st.seq DESC LIMIT 1),"
    " k AS (SELECT wk.* FROM spine.workers wk, w WHERE wk.id = w.owner),"
    " g AS (SELECT coalesce(jsonb_agg(jsonb_build_object('name', sg.name, 'at', " ISO("sg.created_at") ")"
    "       ORDER BY sg.id), '[]') AS pending, string_agg(DISTINCT sg.name, ', ') AS names"
    "       FROM spine.signals sg, w WHERE sg.workflow_id = w.id AND sg.consumed_seq IS NULL),"
    " facts AS (SELECT w.*, g.pending, g.names,"
    "   (SELECT count(*) FROM spine.workers WHERE lease_until > now()) AS alive,"
    "   (SELECT count(*) FROM spine.steps st WHERE st.workflow_id = w.id) AS nsteps,"
    /* the branches of a ctx.parallel still waiting, each its step */
    "   (SELECT string_agg(format('%s \"%s\" in branch %s', st.kind, st.name, st.branch), ', '"
    "     ORDER BY st.branch) FROM spine.steps st WHERE st.workflow_id = w.id"
    "     AND st.branch IS NOT NULL AND st.status IN ('waiting', 'retrying', 'running'))"
    "     AS branches,"
    "   s.seq AS s_seq, s.kind AS s_kind, s.name AS s_name, s.status AS s_status,"
    "   s.attempt AS s_attempt, s.error AS s_error, s.started_at AS s_started, s.wake_at AS s_wake,"
    "   k.id AS k_id, k.host AS k_host, k.pid AS k_pid, k.lease_until AS k_until"
    "   FROM w LEFT JOIN s ON true LEFT JOIN k ON true, g)"
    " SELECT x::text, x->>'explanation' FROM (SELECT jsonb_build_object('id', id, 'status', status, 'process', process,"
    "  'version', version, 'state', state, 'waiting_for', waiting_for,"
    "  'since', CASE WHEN status = 'waiting' THEN " ISO("s_started") " END,"
    "  'signals_pending', pending,"
    "  'lease', CASE WHEN k_id IS NOT NULL THEN jsonb_build_object('worker', k_id, 'host', k_host,"
    "    'pid', k_pid, 'until', " ISO("k_until") ", 'alive', k_until > now()) END,"
    "  'error', error, 'max_duration', max_duration, 'deadline_at', " ISO("deadline_at") ","
    "  'explanation', 'Workflow ' || id || ' (' || process || ') ' || CASE"
    "   WHEN status = 'waiting' AND branches IS NOT NULL THEN"
    "    format('waits in ctx.parallel for its branches: %s.', branches)"
    "   WHEN status = 'waiting' AND waiting_for->>'kind' = 'timer' THEN"
    "    format('is sleeping until %s (in %s), since %s.', waiting_for->>'until',"
    "      date_trunc('second', (waiting_for->>'until')::timestamptz - spine.clock_timestamp())::text, " ISO("s_started") ")"
    "   WHEN status = 'waiting' AND waiting_for->>'kind' = 'child' THEN"
    "    format('waits for its child workflow (%s) to end, since %s (%s ago).',"
    "      waiting_for->>'name', " ISO("s_started") ", " AGO("s_started") ")"
    "   WHEN status = 'waiting' THEN"
    "    format('waits for signal \"%s\"%s since %s (%s ago)%s%s.', waiting_for->>'name',"
    "      CASE WHEN waiting_for ? 'match' THEN ' whose payload holds '"
    "        || (waiting_for->'match')::text ELSE '' END,"
    "      " ISO("s_started") ", " AGO("s_started") ","
    "      CASE WHEN waiting_for ? 'until' THEN format('; it stops waiting at %s',"
    "        waiting_for->>'until') ELSE '' END,"
    "      CASE WHEN names IS NOT NULL THEN format('; signals kept for later waits: %s', names)"
    "        ELSE '' END)"
    "   WHEN status = 'running' AND s_status = 'retrying' THEN"
    "    format('is retrying step \"%s\": attempt %s failed (%s); the next attempt is at %s.',"
    "      s_name, s_attempt, s_error->>'message', " ISO("s_wake") ")"
    "   WHEN status IN ('running', 'waiting') AND k_id IS NOT NULL AND k_until > now() THEN"
    "    format('is running on worker %s (%s, pid %s), whose lease runs until %s.', k_id, k_host,"
    "      k_pid, " ISO("k_until") ")"
    "   WHEN status IN ('running', 'waiting') AND k_id IS NOT NULL THEN"
    "    format('was running on worker %s (%s, pid %s), whose lease expired at %s: another worker'"
    "      || ' takes it over.', k_id, k_host, k_pid, " ISO("k_until") ")"
    "   WHEN status IN ('pending', 'running') THEN"
    "    format('is ready to run since %s, but no worker has claimed it yet (%s worker%s alive).',"
    "      " ISO("coalesce(wake_at, created_at)") ", alive, CASE WHEN alive = 1 THEN ' is'"
    "      ELSE 's are' END)"
    "   WHEN status = 'stuck' THEN"
    "    format('is stuck since %s: %s. Nothing was overwritten; fix the cause (see spine replay),'"
    "      || ' then spine retry %s.', " ISO("updated_at") ", error->>'message', id)"
    "   WHEN status = 'paused' THEN"
    "    format('is paused since %s: %s. Resolve it with spine retry or spine cancel.',"
    "      " ISO("updated_at") ", coalesce(error->>'message', 'an operator paused it'))"
    "   WHEN status = 'completed' THEN"
    "    format('completed at %s after %s step%s.', " ISO("coalesce(ended_at, updated_at)") ","
    "      nsteps, CASE WHEN nsteps = 1 THEN '' ELSE 's' END)"
    "   WHEN status = 'cancelled' THEN"
    "    format('was cancelled at %s; its compensations ran.', " ISO("coalesce(ended_at, updated_at)") ")"
    "   WHEN status = 'failed' AND error->>'code' = 'max_duration' THEN"
    "    format('was failed at %s: it ran past the max_duration of its process (%s from its start at'"
    "      || ' %s, so by %s)%s.', " ISO("coalesce(ended_at, updated_at)") ", max_duration,"
    "      " ISO("created_at") ", " ISO("deadline_at") ", CASE WHEN EXISTS (SELECT 1 FROM spine.steps"
    "      c WHERE c.workflow_id = facts.id AND c.kind = 'compensate') THEN '; its compensations ran'"
    "      ELSE '' END)"
    "   WHEN status = 'compensated' THEN"
    "    format('failed at %s (%s%s) and its compensations ran.', " ISO("coalesce(ended_at, updated_at)") ","
    "      error->>'message', CASE WHEN error ? 'where' AND position(error->>'where' in"
    "      error->>'message') = 0 THEN ', at ' || coalesce(error->>'traceback', error->>'where')"
    "      ELSE '' END)"
    "   ELSE"
    "    format('failed at %s: %s%s.', " ISO("coalesce(ended_at, updated_at)") ", error->>'message',"
    "      CASE WHEN error ? 'where' AND position(error->>'where' in error->>'message') = 0"
    "      THEN ' (at ' || coalesce(error->>'traceback', error->>'where') || ')' ELSE '' END)"
    "  END) AS x FROM facts) o";
/* clang-format on */

const char spine_api_incidents_sql[] =
    "SELECT coalesce(jsonb_agg(jsonb_build_object('id', n.id, 'workflow_id', n.workflow_id,"
    " 'process', w.process, 'seq', n.seq, 'step', n.step, 'kind', n.kind, 'attempts',"
    " n.attempts, 'error', n.error, 'created_at', n.created_at, 'resolved_at', n.resolved_at,"
    " 'resolution', n.resolution) ORDER BY n.created_at, n.id), '[]')"
    " FROM spine.incidents n LEFT JOIN spine.workflows w ON w.id = n.workflow_id"
    " WHERE $1::bool OR n.resolved_at IS NULL";

const char spine_api_manifests_sql[] =
    "SELECT (jsonb_build_object($1::text, coalesce((SELECT jsonb_agg(jsonb_build_object("
    "'process', m.process, 'path', m.path, 'hash', m.hash, 'manifest', m.body::jsonb)"
    " ORDER BY m.process) FROM spine.manifests m), '[]'), 'loaded_at', l.loaded_at,"
    " 'loaded_by', l.loaded_by) || CASE WHEN $1 = 'items' THEN '{\"next_cursor\": null}'::jsonb"
    " ELSE '{}' END)::text FROM (SELECT 1) one LEFT JOIN (SELECT * FROM"
    " spine.manifest_loads ORDER BY id DESC LIMIT 1) l ON true";

const char *const spine_api_filter_keys[] = {"status",  "process",    "playbook", "version",
                                             "variant", "experiment", "state",    NULL};

int spine_api_filter_set(spine_api_filter *f, const char *key, const char *value, spine_err *e) {
  for (int i = 0; spine_api_filter_keys[i]; i++)
    if (!strcmp(key, spine_api_filter_keys[i])) {
      f->eq[i] = value;
      return 0;
    }
  if (!strncmp(key, "attribute.", 10) && key[10]) {
    if (f->nattr == 4)
      return spine_err_set(e, SPINE_EINVAL, NULL, key, "at most 4 attribute conditions");
    f->attr_key[f->nattr] = key + 10;
    f->attr_value[f->nattr++] = value;
    return 0;
  }
  int64_t ms;
  if (!strcmp(key, "created_after") || !strcmp(key, "created_before")) {
    if (spine_duration_parse_time(value, &ms, NULL))
      return spine_err_set(e, SPINE_EINVAL, NULL, key,
                           "\"%.64s\" is not a time (ISO 8601: 2026-03-01T09:00:00Z)", value);
    *(key[8] == 'a' ? &f->created_after : &f->created_before) = value;
    return 0;
  }
  return spine_err_set(e, SPINE_EINVAL, NULL, key,
                       "unknown filter \"%.64s\" (status, process, playbook, version, variant,"
                       " experiment, state, attribute.KEY, created_after, created_before)",
                       key);
}

/* The filter's conditions on w as " AND ..." with parameters $first.. in params; returns how
 * many parameters it added. */
static int where(const spine_api_filter *f, spine_buf *cond, const char **params, int first) {
  int n = 0;
  for (int i = 0; spine_api_filter_keys[i]; i++)
    if (f->eq[i]) {
      params[n] = f->eq[i];
      spine_buf_printf(cond, " AND w.%s = $%d", spine_api_filter_keys[i], first + n++);
    }
  for (int i = 0; i < f->nattr; i++) {
    params[n] = f->attr_key[i];
    params[n + 1] = f->attr_value[i];
    spine_buf_printf(cond, " AND w.attributes ->> $%d = $%d", first + n, first + n + 1);
    n += 2;
  }
  if (f->created_after) {
    params[n] = f->created_after;
    spine_buf_printf(cond, " AND w.created_at >= $%d::timestamptz", first + n++);
  }
  if (f->created_before) {
    params[n] = f->created_before;
    spine_buf_printf(cond, " AND w.created_at < $%d::timestamptz", first + n++);
  }
  return n;
}

/* The cursor is the hex of "<created_at in µs>/<id>": opaque to clients, checked here. */
static int cursor_decode(const char *hex, char *out, size_t size, spine_err *e) {
  size_t len = strlen(hex), o = 0;
  if (len == 0 || len % 2 || len / 2 >= size) goto bad;
  for (size_t i = 0; i < len; i += 2) {
    unsigned v;
    if (sscanf(hex + i, "%2x", &v) != 1 || !strchr("0123456789abcdefABCDEF", hex[i]) ||
        !strchr("0123456789abcdefABCDEF", hex[i + 1]) || v == 0)
      goto bad;
    out[o++] = (char)v;
  }
  out[o] = '\0';
  size_t digits = strspn(out, "0123456789");
  if (digits == 0 || digits > 18 || out[digits] != '/' || !out[digits + 1]) goto bad;
  return 0;
bad:
  return spine_err_set(e, SPINE_EINVAL, NULL, "cursor",
                       "not a cursor this server gave (use next_cursor as it is)");
}

int spine_api_list(PGconn *c, const spine_api_filter *f, const char *items_key, spine_buf *out,
                   spine_err *e) {
  int limit = f->limit ? f->limit : 100;
  if (limit < 1 || limit > 1000)
    return spine_err_set(e, SPINE_EINVAL, NULL, "limit", "a page holds 1 to 1000 workflows");
  char cur[256];
  if (f->cursor && cursor_decode(f->cursor, cur, sizeof cur, e)) return SPINE_EINVAL;
  char lim[16];
  snprintf(lim, sizeof lim, "%d", limit);
  const char *params[24] = {lim, f->cursor ? cur : NULL, items_key};
  spine_buf cond = SPINE_BUF_INIT, sql = SPINE_BUF_INIT;
  int n = 3 + where(f, &cond, params + 3, 4);
  /* The cursor is the last item's (created_at, id), so pages hold under concurrent inserts. */
  spine_buf_printf(
      &sql,
      "WITH page AS (SELECT w.*, (extract(epoch from w.created_at) * 1000000)::int8 AS us"
      " FROM spine.workflows w WHERE true%s"
      " AND ($2::text IS NULL OR (w.created_at, w.id) < (to_timestamp(split_part($2, '/', 1)::int8"
      " / 1000000.0), substr($2, strpos($2, '/') + 1)))"
      " ORDER BY w.created_at DESC, w.id DESC LIMIT $1::int + 1),"
      " shown AS (SELECT * FROM page ORDER BY created_at DESC, id DESC LIMIT $1::int)"
      " SELECT jsonb_build_object($3::text, coalesce((SELECT jsonb_agg(jsonb_build_object("
      "'id', id, 'status', status, 'process', process, 'playbook', playbook, 'version', version,"
      " 'variant', variant, 'experiment', experiment, 'subject', subject, 'state', state,"
      " 'outcome', outcome,"
      " 'attributes', attributes, 'input', input, 'result', result, 'error', error,"
      " 'waiting_for', waiting_for, 'created_at', " EPOCH_ISO(
          "created_at") ","
                        " 'updated_at', " EPOCH_ISO(
                            "updated_at") ") ORDER BY created_at DESC, id DESC)"
                                          " FROM shown), '[]'),"
                                          " 'next_cursor', (SELECT encode(convert_to(us || '/' || id, 'UTF8'), 'hex') FROM shown"
                                          " WHERE (SELECT count(*) FROM page) > $1::int ORDER BY created_at, id LIMIT 1))::text",
      spine_buf_str(&cond));
  int rc = spine_pgconn_text(c, spine_buf_str(&sql), n, params, out, e);
  spine_buf_free(&cond);
  spine_buf_free(&sql);
  return rc;
}

int spine_api_counts(PGconn *c, const spine_api_filter *f, const char *items_key, spine_buf *out,
                     spine_err *e) {
  const char *params[24] = {items_key};
  spine_buf cond = SPINE_BUF_INIT, sql = SPINE_BUF_INIT;
  int n = 1 + where(f, &cond, params + 1, 2);
  spine_buf_printf(&sql,
                   "SELECT jsonb_build_object($1::text, coalesce(jsonb_agg(jsonb_build_object("
                   "'process', process, 'variant', variant, 'status', status, 'count', n)"
                   " ORDER BY process, variant NULLS FIRST, status), '[]'))::text"
                   " FROM (SELECT w.process, w.variant, w.status, count(*) AS n"
                   " FROM spine.workflows w WHERE true%s"
                   " GROUP BY w.process, w.variant, w.status) g",
                   spine_buf_str(&cond));
  int rc = spine_pgconn_text(c, spine_buf_str(&sql), n, params, out, e);
  spine_buf_free(&cond);
  spine_buf_free(&sql);
  return rc;
}

static const struct {
  const char *one, *many, *eligible;
} actions[] = {
    [SPINE_API_CANCEL] = {"SELECT spine.cancel_workflow($1, $2)::text",
                          "SELECT id, status FROM spine.cancel_workflows($1::text[], $2)",
                          "spine.can_cancel(w)"},
    [SPINE_API_RETRY] = {"SELECT spine.retry_workflow($1, $2)::text",
                         "SELECT id, status FROM spine.retry_workflows($1::text[], $2)",
                         "spine.can_retry(w)"},
};

int spine_api_act(PGconn *c, spine_api_action a, const char *id, const char *actor, spine_buf *out,
                  spine_err *e) {
  const char *p[2] = {id, actor};
  return spine_pgconn_text(c, actions[a].one, 2, p, out, e);
}

/* Appends `s` to a PostgreSQL array literal being built in b. */
static void array_add(spine_buf *b, const char *s, size_t len) {
  spine_buf_putc(b, b->len == 0 ? '{' : ',');
  spine_buf_putc(b, '"');
  for (size_t i = 0; i < len; i++) {
    if (s[i] == '"' || s[i] == '\\') spine_buf_putc(b, '\\');
    spine_buf_putc(b, s[i]);
  }
  spine_buf_putc(b, '"');
}

int spine_api_bulk(PGconn *c, spine_api_action a, const spine_api_filter *f, int act,
                   const char *actor, PGresult **out, spine_err *e) {
  *out = NULL;
  long limit = f->limit > 0 ? f->limit : 1000;
  const char *params[24];
  spine_buf cond = SPINE_BUF_INIT, find = SPINE_BUF_INIT, ids = SPINE_BUF_INIT;
  int n = where(f, &cond, params, 1);
  if (n == 0) {
    spine_buf_free(&cond);
    return spine_err_set(e, SPINE_EINVAL, NULL, "filter",
                         "a filter needs at least one condition (status=stuck, process=...)");
  }
  spine_buf_printf(&find,
                   "SELECT w.id, w.status FROM spine.workflows w WHERE %s%s"
                   " ORDER BY w.created_at LIMIT %ld",
                   actions[a].eligible, spine_buf_str(&cond), limit);
  PGresult *r = spine_pgconn_query(c, spine_buf_str(&find), n, params, e);
  int rc = r ? 0 : SPINE_EDB;
  if (!rc && act && PQntuples(r) > 0) {
    for (int i = 0; i < PQntuples(r); i++)
      array_add(&ids, PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0));
    spine_buf_putc(&ids, '}');
    PQclear(r);
    const char *ap[2] = {spine_buf_str(&ids), actor};
    r = spine_pgconn_query(c, actions[a].many, 2, ap, e);
    if (!r) rc = SPINE_EDB;
  }
  *out = r;
  spine_buf_free(&cond);
  spine_buf_free(&find);
  spine_buf_free(&ids);
  return rc;
}

void spine_api_bulk_json(PGresult *r, int dry_run, spine_buf *b) {
  spine_buf_printf(b, "{\"dry_run\":%s,\"matched\":%d,\"workflows\":[", dry_run ? "true" : "false",
                   PQntuples(r));
  for (int i = 0; i < PQntuples(r); i++) {
    spine_buf_puts(b, i ? ",{\"id\":" : "{\"id\":");
    spine_log_json_string(b, PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0));
    spine_buf_puts(b, ",\"status\":");
    spine_log_json_string(b, PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1));
    spine_buf_putc(b, '}');
  }
  spine_buf_puts(b, "]}");
}

int spine_api_skip(PGconn *c, const char *id, const char *result, const char *actor, spine_buf *out,
                   spine_err *e) {
  const char *p[3] = {id, result ? result : "null", actor};
  PGresult *r = spine_pgconn_query(c, "SELECT spine.skip_step($1, $2::jsonb, $3)::text", 3, p, e);
  if (!r) {
    if (e && e->code == SPINE_EDB && strstr(e->msg, "json"))
      spine_err_set(e, SPINE_EINVAL, NULL, "result", "the result is not JSON");
    return e && e->code ? e->code : SPINE_EDB;
  }
  spine_buf_puts(out, PQgetvalue(r, 0, 0));
  PQclear(r);
  return 0;
}

int spine_api_signal(PGconn *c, const char *id, const char *name, const char *data, spine_buf *out,
                     const char **code, spine_err *e) {
  *code = NULL;
  if (!data) data = "{}";
  const char *p1[1] = {id};
  PGresult *r = spine_pgconn_query(c, "SELECT status FROM spine.workflows WHERE id = $1", 1, p1, e);
  if (!r) return SPINE_EDB;
  int rc = 0;
  if (PQntuples(r) == 0) {
    *code = "not_found";
    rc = spine_err_set(e, SPINE_ENOTFOUND, NULL, "id", "no workflow %s", id);
  } else {
    const char *st = PQgetvalue(r, 0, 0);
    if (!strcmp(st, "completed") || !strcmp(st, "failed") || !strcmp(st, "compensated") ||
        !strcmp(st, "cancelled")) {
      *code = "ended";
      rc = spine_err_set(e, SPINE_ETRANSITION, NULL, "id", "workflow %s has ended (%s)", id, st);
    }
  }
  PQclear(r);
  if (rc) return rc;
  const char *p3[3] = {id, name, data};
  r = spine_pgconn_query(c, spine_sql_text(SPINE_SQL_SIGNAL_SEND), 3, p3, e);
  if (!r) {
    if (strstr(e->msg, "json")) e->code = SPINE_EINVAL, snprintf(e->field, sizeof e->field, "data");
    return e->code;
  }
  spine_buf_puts(out, "{\"id\":");
  spine_log_json_string(out, id, strlen(id));
  spine_buf_puts(out, ",\"signal\":");
  spine_log_json_string(out, name, strlen(name));
  spine_buf_printf(out, ",\"signal_id\":%s}", PQgetvalue(r, 0, 0));
  PQclear(r);
  return 0;
}
