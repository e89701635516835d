/* Repairing runs in flight (api_repair.h): the replay that proves a change compatible, and the
 * calls of the SQL functions that fork, migrate and prune (runtime/sql/0013_repair.sql). */
#include "api_repair.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duration.h"
#include "jsondoc.h"
#include "log.h"
#include "pgconn.h"
#include "sql.h"
#include "uuid.h"

/* The workflow's input, the source it runs, its steps up to $2 (all when NULL), version, status,
 * the variant's parameters. */
static const char replay_sql[] = "SELECT w.input, v.path, v.source, " SPINE_WF_STEPS(
    " AND ($2::int IS NULL OR s.seq <= $2::int)") ", w.version, w.status, w.params FROM spine.workflows w JOIN spine.playbook_versions v"
                                                  " ON v.hash = w.version WHERE w.id = $1";

/* Says whether and where the replay left the history: a step of another kind or name, or an
 * end (completion, failure) before the history's last step. */
static void classify(spine_api_replay *o) {
  const spine_replay_report *r = &o->rep;
  if (r->nondeterministic) {
    o->diverged = 1;
    o->step = r->replayed + 1;
    const char *msg = r->error;
    spine_jsondoc *doc = NULL;
    int line;
    if (!spine_jsondoc_parse(r->error, strlen(r->error), &doc, &line, NULL)) {
      const spine_jsondoc *m = spine_jsondoc_get(doc, "message");
      if (m && m->str) msg = m->str;
    }
    snprintf(o->why, sizeof o->why, "%s", msg); /* "non-determinism at step 3: ..." */
    spine_jsondoc_free(doc);
  } else if (r->ended && r->replayed < r->recorded) {
    o->diverged = 1;
    o->step = r->replayed + 1;
    snprintf(o->why, sizeof o->why,
             "step %d: the playbook ends (%s) after step %d, where the history goes on to step %d",
             o->step, spine_wf_status_name(r->status), r->replayed, r->recorded);
  }
}

int spine_api_replay_one(PGconn *c, const char *id, int upto, const spine_playbook_src *src,
                         spine_api_replay *out, spine_err *e) {
  memset(out, 0, sizeof *out);
  char n[16];
  snprintf(n, sizeof n, "%d", upto);
  const char *params[2] = {id, upto >= 0 ? n : NULL};
  PGresult *r = spine_pgconn_query(c, replay_sql, 2, params, e);
  if (!r) return e && e->code ? e->code : SPINE_EDB;
  if (PQntuples(r) == 0) {
    PQclear(r);
    return spine_err_set(e, SPINE_ENOTFOUND, NULL, "id", "no workflow %s", id);
  }
  snprintf(out->version, sizeof out->version, "%s", PQgetvalue(r, 0, 4));
  snprintf(out->status, sizeof out->status, "%s", PQgetvalue(r, 0, 5));
  const char *path = src ? src->path : PQgetvalue(r, 0, 1);
  const char *source = src ? src->source : PQgetvalue(r, 0, 2);
  size_t len = src ? src->len : (size_t)PQgetlength(r, 0, 2);
  int rc = spine_engine_replay(path, source, len, PQgetvalue(r, 0, 0),
                               PQgetisnull(r, 0, 6) ? NULL : PQgetvalue(r, 0, 6),
                               PQgetvalue(r, 0, 3), &out->rep, e);
  if (!rc) classify(out);
  PQclear(r);
  return rc;
}

int spine_api_fork(PGconn *c, const char *id, int from_step, const spine_playbook_src *src,
                   int keep, const char *actor, spine_buf *out, spine_err *e) {
  if (from_step < 0)
    return spine_err_set(e, SPINE_EINVAL, NULL, "from_step",
                         "cannot fork workflow %s at step %d (expected 0 or more)", id, from_step);
  /* On its own version the steps replay alike: spine.fork_workflow checks what they are. */
  if (src) {
    spine_api_replay rp;
    int rc = spine_api_replay_one(c, id, from_step, src, &rp, e);
    if (rc) return rc;
    if (rp.diverged)
      return spine_err_set(e, SPINE_EINVAL, NULL, "playbook",
                           "cannot fork workflow %s at step %d on %s: it diverges from the history"
                           " at %s",
                           id, from_step, src->path, rp.why);
  }
  char new_id[37], step[16];
  spine_uuid_ordered(new_id);
  snprintf(step, sizeof step, "%d", from_step);
  const char *p[8] = {id,
                      step,
                      new_id,
                      keep ? "true" : "false",
                      src ? src->hash : NULL,
                      actor,
                      src ? src->path : NULL,
                      src ? src->source : NULL};
  return spine_pgconn_text(c,
                           "SELECT spine.fork_workflow($1, $2::int, $3, $4::bool, version => $5,"
                           " actor => $6, path => $7, source => $8)::text",
                           8, p, out, e);
}

int spine_api_migrate(PGconn *c, const char *id, const char *from_version,
                      const spine_playbook_src *src, const char *actor, spine_buf *out,
                      spine_err *e) {
  const char *p[6] = {id, from_version, src->hash, src->path, src->source, actor};
  return spine_pgconn_text(c,
                           "SELECT spine.migrate_workflow($1, $2, $3, path => $4, source => $5,"
                           " actor => $6)::text",
                           6, p, out, e);
}

int spine_api_prune_cutoff(PGconn *c, const char *age, char out[40], spine_err *e) {
  int64_t ms;
  if (!spine_duration_parse_time(age, &ms, NULL)) {
    snprintf(out, 40, "%s", age);
    return 0;
  }
  if (spine_duration_parse(age, &ms, NULL) || ms < 0)
    return spine_err_set(e, SPINE_EINVAL, NULL, "ended_before",
                         "\"%.64s\" is neither an age (90d) nor a time (2026-01-01)", age);
  char n[24];
  snprintf(n, sizeof n, "%lld", (long long)ms);
  const char *p[1] = {n};
  PGresult *r = spine_pgconn_query(
      c,
      "SELECT to_char((spine.now() - $1::int8 * interval '1 ms') AT TIME ZONE 'UTC',"
      " 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')",
      1, p, e);
  if (!r) return e && e->code ? e->code : SPINE_EDB;
  snprintf(out, 40, "%s", PQgetvalue(r, 0, 0));
  PQclear(r);
  return 0;
}

int spine_api_prune(PGconn *c, const char *before, int batch, spine_api_pruned *out, spine_err *e) {
  char b[16];
  snprintf(b, sizeof b, "%d", batch > 0 ? batch : 500);
  const char *p[2] = {before, b};
  for (;;) {
    PGresult *r = spine_pgconn_query(
        c, "SELECT workflows, steps, signals, deliveries, bytes FROM spine.prune_batch($1, $2)", 2,
        p, e);
    if (!r) return e && e->code ? e->code : SPINE_EDB;
    int64_t got[5];
    for (int i = 0; i < 5; i++)
      got[i] = atoll(PQgetvalue(r, 0, i));
    PQclear(r);
    out->batches++;
    out->workflows += got[0];
    out->steps += got[1];
    out->signals += got[2];
    out->deliveries += got[3];
    out->bytes += got[4];
    if (got[0] == 0 && got[3] == 0) return 0;
  }
}

void spine_api_pruned_json(const spine_api_pruned *p, const char *before, spine_buf *out) {
  spine_buf_puts(out, "{\"ended_before\":");
  spine_log_json_string(out, before, strlen(before));
  spine_buf_printf(out,
                   ",\"workflows\":%lld,\"steps\":%lld,\"signals\":%lld,\"deliveries\":%lld,"
                   "\"bytes\":%lld,\"batches\":%d}",
                   (long long)p->workflows, (long long)p->steps, (long long)p->signals,
                   (long long)p->deliveries, (long long)p->bytes, p->batches);
}
