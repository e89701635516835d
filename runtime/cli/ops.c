/* Operator actions: `spine cancel ID` and `spine retry ID`. They change the workflow's row and
 * wake the workers; the worker that runs it does the rest (compensations, replay). */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char *const spec[] = {"json", NULL};

static int act(int argc, char **argv, const char *usage, const char *sql, const char *verb) {
  spine_cli_args a;
  int rc = spine_cli__parse(argc, argv, spec, usage, 1, 1, &a);
  if (rc) return rc < 0 ? 0 : rc;
  int json = a.values[0] != NULL;
  spine_err e;
  spine_err_clear(&e);
  PGconn *c = spine_cli__connect(&e);
  if (!c) return spine_cli__fail(json, &e, NULL);
  const char *params[1] = {a.pos[0]};
  PGresult *r = spine_cli__query(c, sql, 1, params, &e);
  int status = SPINE_EXIT_OK;
  if (!r) {
    status = spine_cli__fail(json, &e, NULL);
  } else if (PQntuples(r) == 0 || PQgetisnull(r, 0, 0)) {
    PGresult *s =
        spine_cli__query(c, "SELECT status FROM spine.workflows WHERE id = $1", 1, params, &e);
    if (s && PQntuples(s) == 1)
      spine_err_set(&e, SPINE_ETRANSITION, NULL, "id", "cannot %s workflow %s: it is %s", verb,
                    a.pos[0], PQgetvalue(s, 0, 0));
    else
      spine_err_set(&e, SPINE_ENOTFOUND, NULL, "id", "no workflow %s", a.pos[0]);
    status =
        spine_cli__fail(json, &e, e.code == SPINE_ENOTFOUND ? "not_found" : "invalid_transition");
    if (s) PQclear(s);
  } else if (json) {
    printf("{\"id\":\"%s\",\"status\":\"%s\"}\n", a.pos[0], PQgetvalue(r, 0, 0));
  } else {
    printf("%s: %s\n", a.pos[0], PQgetvalue(r, 0, 0));
  }
  if (r) PQclear(r);
  PQfinish(c);
  return status;
}

static const char cancel_usage[] =
    "usage: spine cancel ID [--json]\n"
    "  Asks the workflow to stop: at its next step (or at once if it waits) it runs its\n"
    "  compensations and ends cancelled.\n";

int spine_cli_cancel(int argc, char **argv) {
  return act(argc, argv, cancel_usage,
             "WITH u AS (UPDATE spine.workflows SET cancel_requested = true, updated_at = now(),"
             " wake_at = CASE WHEN owner IS NULL THEN now() ELSE wake_at END"
             " WHERE id = $1 AND status IN ('pending', 'running', 'waiting', 'paused')"
             " RETURNING status)"
             " SELECT (SELECT status FROM u), pg_notify('spine', 'c:' || $1)"
             " WHERE EXISTS (SELECT 1 FROM u)",
             "cancel");
}

static const char retry_usage[] =
    "usage: spine retry ID [--json]\n"
    "  Runs a stuck workflow again from its history, or a failed one from the step that\n"
    "  failed (its failure record is removed; a workflow whose compensations ran cannot be).\n";

int spine_cli_retry(int argc, char **argv) {
  /* A failed workflow: forget the failing step and the failure, keep everything before. */
  return act(argc, argv, retry_usage,
             "WITH f AS (SELECT w.id, w.status, (SELECT min(seq) FROM spine.steps s"
             " WHERE s.workflow_id = w.id AND s.status = 'failed') AS first_failed,"
             " EXISTS (SELECT 1 FROM spine.steps s WHERE s.workflow_id = w.id"
             " AND s.kind = 'compensate') AS compensated"
             " FROM spine.workflows w WHERE w.id = $1 AND (w.status = 'stuck' OR"
             " (w.status = 'failed')) FOR UPDATE),"
             " d AS (DELETE FROM spine.steps s USING f WHERE s.workflow_id = f.id"
             " AND f.status = 'failed' AND NOT f.compensated AND s.seq >= f.first_failed),"
             " u AS (UPDATE spine.workflows w SET status = 'running', error = NULL, result = NULL,"
             " owner = NULL, wake_at = now(), ended_at = NULL, attempt = w.attempt + 1,"
             " updated_at = now() FROM f WHERE w.id = f.id AND NOT (f.status = 'failed' AND"
             " f.compensated) RETURNING w.status)"
             " SELECT (SELECT status FROM u), pg_notify('spine', 'w')"
             " WHERE EXISTS (SELECT 1 FROM u)",
             "retry");
}
