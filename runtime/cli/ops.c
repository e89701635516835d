/* Operator actions: `spine cancel` and `spine retry`, on one workflow (ID) or on every workflow
 * a --where filter matches (a dry run unless --yes). They change the rows and wake the workers;
 * the worker that runs a workflow does the rest (compensations, replay). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cli.h"
#include "log.h"

static const char *const spec[] = {"json", "where=", "yes", "limit=", NULL};
enum { OPT_JSON, OPT_WHERE, OPT_YES, OPT_LIMIT };

/* The columns a --where filter may name, all compared for equality. */
static const char *const filter_keys[] = {"status",  "process",    "playbook", "version",
                                          "variant", "experiment", "state",    NULL};

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

/* Turns "status=stuck process=x" into SQL conditions on w (parameters $1.., values in
 * `vals`). Returns 0, or SPINE_EXIT_USAGE after saying which part is wrong. */
static int parse_where(const char *where, spine_buf *cond, char vals[8][128], int *nvals,
                       const char *verb) {
  *nvals = 0;
  const char *p = where;
  while (*p) {
    while (*p == ' ')
      p++;
    if (!*p) break;
    const char *end = strchr(p, ' ');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    const char *eq = memchr(p, '=', len);
    int k = -1;
    for (int i = 0; eq && filter_keys[i]; i++)
      if (strlen(filter_keys[i]) == (size_t)(eq - p) && !strncmp(filter_keys[i], p, eq - p)) k = i;
    if (k < 0 || *nvals == 8 || len - (size_t)(eq - p) - 1 >= sizeof vals[0] || eq + 1 == p + len) {
      fprintf(stderr,
              "spine %s: --where: cannot use \"%.*s\" (KEY=VALUE with KEY one of status, process,"
              " playbook, version, variant, experiment, state)\n",
              verb, (int)len, p);
      return SPINE_EXIT_USAGE;
    }
    snprintf(vals[*nvals], sizeof vals[0], "%.*s", (int)(len - (size_t)(eq - p) - 1), eq + 1);
    spine_buf_printf(cond, " AND w.%s = $%d", filter_keys[k], *nvals + 1);
    (*nvals)++;
    p += len;
  }
  if (*nvals == 0) {
    fprintf(stderr, "spine %s: --where needs at least one KEY=VALUE\n", verb);
    return SPINE_EXIT_USAGE;
  }
  return 0;
}

/* Prints the rows (id, status) an action returned. */
static void print_rows(PGresult *r, int json, int dry, int matched) {
  if (!json) {
    for (int i = 0; i < PQntuples(r); i++)
      printf("%s: %s\n", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
    if (dry)
      printf("%d workflow%s would be affected; run again with --yes to act.\n", matched,
             matched == 1 ? "" : "s");
    return;
  }
  spine_buf b = SPINE_BUF_INIT;
  spine_buf_printf(&b, "{\"dry_run\":%s,\"matched\":%d,\"workflows\":[", dry ? "true" : "false",
                   matched);
  for (int i = 0; i < PQntuples(r); i++) {
    spine_buf_puts(&b, i ? ",{\"id\":" : "{\"id\":");
    spine_log_json_string(&b, PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0));
    spine_buf_puts(&b, ",\"status\":");
    spine_log_json_string(&b, PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1));
    spine_buf_putc(&b, '}');
  }
  spine_buf_puts(&b, "]}\n");
  fputs(spine_buf_str(&b), stdout);
  spine_buf_free(&b);
}

/* --where: finds the matches (those `eligible` allows), prints them (dry run) or acts on them. */
static int act_where(PGconn *c, const spine_cli_args *a, const char *sql, const char *eligible,
                     const char *verb, spine_err *e) {
  int json = a->values[OPT_JSON] != NULL;
  spine_buf cond = SPINE_BUF_INIT, find = SPINE_BUF_INIT, ids = SPINE_BUF_INIT;
  char vals[8][128];
  int nvals, status = SPINE_EXIT_OK;
  long limit = a->values[OPT_LIMIT] ? strtol(a->values[OPT_LIMIT], NULL, 10) : 1000;
  if (limit < 1) limit = 1000;
  if (parse_where(a->values[OPT_WHERE], &cond, vals, &nvals, verb)) {
    status = SPINE_EXIT_USAGE;
    goto out;
  }
  spine_buf_printf(&find,
                   "SELECT w.id, w.status FROM spine.workflows w WHERE %s%s ORDER BY w.created_at"
                   " LIMIT %ld",
                   eligible, spine_buf_str(&cond), limit);
  const char *params[8];
  for (int i = 0; i < nvals; i++)
    params[i] = vals[i];
  PGresult *r = spine_cli__query(c, spine_buf_str(&find), nvals, params, e);
  if (!r) {
    status = spine_cli__fail(json, e, NULL);
    goto out;
  }
  int matched = PQntuples(r);
  if (!a->values[OPT_YES] || matched == 0) {
    print_rows(r, json, 1, matched);
    PQclear(r);
    goto out;
  }
  for (int i = 0; i < matched; i++)
    array_add(&ids, PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0));
  spine_buf_putc(&ids, '}');
  PQclear(r);
  const char *ap[1] = {spine_buf_str(&ids)};
  r = spine_cli__query(c, sql, 1, ap, e);
  if (!r) {
    status = spine_cli__fail(json, e, NULL);
    goto out;
  }
  print_rows(r, json, 0, PQntuples(r));
  PQclear(r);
out:
  spine_buf_free(&cond);
  spine_buf_free(&find);
  spine_buf_free(&ids);
  return status;
}

/* One workflow: acts, or says why it cannot (not found, or its status does not allow it). */
static int act_one(PGconn *c, const char *id, int json, const char *sql, const char *verb,
                   spine_err *e) {
  spine_buf ids = SPINE_BUF_INIT;
  array_add(&ids, id, strlen(id));
  spine_buf_putc(&ids, '}');
  const char *params[1] = {spine_buf_str(&ids)};
  PGresult *r = spine_cli__query(c, sql, 1, params, e);
  spine_buf_free(&ids);
  int status = SPINE_EXIT_OK;
  if (!r) {
    status = spine_cli__fail(json, e, NULL);
  } else if (PQntuples(r) == 0) {
    const char *p[1] = {id};
    PGresult *s = spine_cli__query(c, "SELECT status FROM spine.workflows WHERE id = $1", 1, p, e);
    if (s && PQntuples(s) == 1)
      spine_err_set(e, SPINE_ETRANSITION, NULL, "id", "cannot %s workflow %s: it is %s", verb, id,
                    PQgetvalue(s, 0, 0));
    else
      spine_err_set(e, SPINE_ENOTFOUND, NULL, "id", "no workflow %s", id);
    status =
        spine_cli__fail(json, e, e->code == SPINE_ENOTFOUND ? "not_found" : "invalid_transition");
    if (s) PQclear(s);
  } else if (json) {
    printf("{\"id\":\"%s\",\"status\":\"%s\"}\n", PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1));
  } else {
    printf("%s: %s\n", PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1));
  }
  if (r) PQclear(r);
  return status;
}

/* `sql` acts on the workflows whose ids are the text array $1 and returns (id, status) of each
 * it changed; `eligible` is the same condition on w, for the dry run. */
static int act(int argc, char **argv, const char *usage, const char *sql, const char *eligible,
               const char *verb) {
  spine_cli_args a;
  int rc = spine_cli__parse(argc, argv, spec, usage, 0, 1, &a);
  if (rc) return rc < 0 ? 0 : rc;
  int json = a.values[OPT_JSON] != NULL;
  if ((a.npos == 1) == (a.values[OPT_WHERE] != NULL)) {
    fprintf(stderr, "spine %s: give either ID or --where\n\n%s", verb, usage);
    return SPINE_EXIT_USAGE;
  }
  spine_err e;
  spine_err_clear(&e);
  PGconn *c = spine_cli__connect(&e);
  if (!c) return spine_cli__fail(json, &e, NULL);
  int status = a.npos == 1 ? act_one(c, a.pos[0], json, sql, verb, &e)
                           : act_where(c, &a, sql, eligible, verb, &e);
  PQfinish(c);
  return status;
}

static const char cancel_usage[] =
    "usage: spine cancel ID [--json]\n"
    "       spine cancel --where 'KEY=VALUE ...' [--yes] [--limit N] [--json]\n"
    "  Asks the workflow to stop: at its next step (or at once if it waits) it runs its\n"
    "  compensations and ends cancelled. With --where: every matching workflow (keys: status,\n"
    "  process, playbook, version, variant, experiment, state); without --yes it only lists\n"
    "  what it would cancel (at most --limit, default 1000).\n";

#define CANCELLABLE "w.status IN ('pending', 'running', 'waiting', 'paused')"

int spine_cli_cancel(int argc, char **argv) {
  return act(
      argc, argv, cancel_usage,
      "WITH u AS (UPDATE spine.workflows w SET cancel_requested = true, updated_at = spine.now(),"
      " wake_at = CASE WHEN owner IS NULL THEN spine.now() ELSE wake_at END,"
      " status = CASE WHEN w.status = 'paused' THEN 'running' ELSE w.status END"
      " WHERE w.id = ANY($1::text[]) AND " CANCELLABLE " RETURNING w.id, w.status),"
      " i AS (UPDATE spine.incidents n SET resolved_at = spine.now(), resolution = 'cancelled',"
      " resolved_by = 'spine cancel' FROM u WHERE n.workflow_id = u.id"
      " AND n.resolved_at IS NULL)"
      " SELECT id, status, pg_notify('spine', 'c:' || id) FROM u",
      CANCELLABLE, "cancel");
}

static const char retry_usage[] =
    "usage: spine retry ID [--json]\n"
    "       spine retry --where 'KEY=VALUE ...' [--yes] [--limit N] [--json]\n"
    "  Runs a stuck workflow again from its history, a failed one from the step that failed\n"
    "  (its failure record is removed; a workflow whose compensations ran cannot be), or a\n"
    "  paused one from its paused provider step, with a fresh set of attempts (its incident\n"
    "  is resolved as retried).\n"
    "  With --where: every matching workflow; without --yes it only lists them.\n";

#define RETRYABLE                                                                                  \
  "(w.status IN ('stuck', 'paused') OR (w.status = 'failed' AND NOT EXISTS"                        \
  " (SELECT 1 FROM spine.steps s WHERE s.workflow_id = w.id AND s.kind = 'compensate')))"

int spine_cli_retry(int argc, char **argv) {
  /* A failed workflow: forget the failing step and the failure, keep everything before. */
  return act(
      argc, argv, retry_usage,
      "WITH f AS (SELECT w.id, w.status, (SELECT min(seq) FROM spine.steps s"
      " WHERE s.workflow_id = w.id AND s.status = 'failed') AS first_failed"
      " FROM spine.workflows w WHERE w.id = ANY($1::text[]) AND " RETRYABLE " FOR UPDATE),"
      " d AS (DELETE FROM spine.steps s USING f WHERE s.workflow_id = f.id"
      " AND f.status = 'failed' AND s.seq >= f.first_failed),"
      /* A paused provider step waits out no backoff and starts its attempts afresh. */
      " p AS (UPDATE spine.steps s SET status = 'retrying', attempt = 0, wake_at = spine.now(),"
      " ended_at = NULL FROM f WHERE s.workflow_id = f.id AND f.status = 'paused'"
      " AND s.status = 'paused'),"
      " i AS (UPDATE spine.incidents n SET resolved_at = spine.now(), resolution = 'retried',"
      " resolved_by = 'spine retry' FROM f WHERE n.workflow_id = f.id"
      " AND n.resolved_at IS NULL),"
      " u AS (UPDATE spine.workflows w SET status = 'running', error = NULL, result = NULL,"
      " waiting_for = NULL,"
      " owner = NULL, wake_at = spine.now(), ended_at = NULL, attempt = w.attempt + 1, lost_runs = 0,"
      " updated_at = spine.now() FROM f WHERE w.id = f.id RETURNING w.id, w.status)"
      " SELECT id, status, pg_notify('spine', 'w') FROM u",
      RETRYABLE, "retry");
}
