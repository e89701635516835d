/* Incidents: provider steps whose retries ran out paused their workflow for an operator.
 * `spine incidents` lists them; `spine skip` resolves one by recording the step's result the
 * operator gives (the workflow goes on as if the provider had answered it), through
 * spine.skip_step (runtime/sql/0010_operator_actions.sql); `spine retry` and `spine cancel`
 * (ops.c) resolve them the other two ways. */
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "cli.h"
#include "log.h"
#include "pgconn.h"

static const char *const list_spec[] = {"all", "json", NULL};
static const char list_usage[] =
    "usage: spine incidents [--all] [--json]\n"
    "  The open incidents (with --all, resolved ones too), oldest first: each is a workflow\n"
    "  paused on a provider step whose retries ran out. Resolve one with `spine retry ID`\n"
    "  (fresh attempts), `spine skip ID --result JSON` (use this result), or `spine cancel\n"
    "  ID` (compensate and end).\n";

static const char list_sql[] =
    "SELECT coalesce(jsonb_agg(jsonb_build_object('id', n.id, 'workflow_id', n.workflow_id,"
    " 'process', w.process, 'seq', n.seq, 'step', n.step, 'kind', n.kind, 'attempts',"
    " n.attempts, 'error', n.error, 'created_at', n.created_at, 'resolved_at', n.resolved_at,"
    " 'resolution', n.resolution) ORDER BY n.created_at, n.id), '[]')"
    " FROM spine.incidents n LEFT JOIN spine.workflows w ON w.id = n.workflow_id"
    " WHERE $1::bool OR n.resolved_at IS NULL";

int spine_cli_incidents(int argc, char **argv) {
  spine_cli_cmd cmd;
  if (spine_cli__open(&cmd, argc, argv, list_spec, list_usage, 0, 0)) return cmd.exit_code;
  const char *p[1] = {spine_cli__get(&cmd, "all") ? "true" : "false"};
  PGresult *r = spine_pgconn_query(cmd.c, list_sql, 1, p, &cmd.e);
  int status = SPINE_EXIT_OK;
  if (!r) {
    status = spine_cli__fail(cmd.json, &cmd.e, NULL);
  } else if (cmd.json) {
    printf("{\"incidents\":%s}\n", PQgetvalue(r, 0, 0));
  } else {
    PQclear(r);
    r = spine_pgconn_query(cmd.c,
                           "SELECT n.id, n.workflow_id, n.step, n.attempts,"
                           " coalesce(n.error ->> 'message', n.error::text), n.created_at::text,"
                           " coalesce(n.resolution, 'open')"
                           " FROM spine.incidents n WHERE $1::bool OR n.resolved_at IS NULL"
                           " ORDER BY n.created_at, n.id",
                           1, p, &cmd.e);
    if (!r) return spine_cli__fail(0, &cmd.e, NULL);
    for (int i = 0; i < PQntuples(r); i++)
      printf("#%s %s  %s (%s attempts) %s since %s\n  %s\n", PQgetvalue(r, i, 0),
             PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), PQgetvalue(r, i, 3), PQgetvalue(r, i, 6),
             PQgetvalue(r, i, 5), PQgetvalue(r, i, 4));
    if (PQntuples(r) == 0) printf("no %sincidents\n", p[0][0] == 't' ? "" : "open ");
  }
  if (r) PQclear(r);
  PQfinish(cmd.c);
  return status;
}

static const char *const skip_spec[] = {"result=", "json", NULL};
static const char skip_usage[] =
    "usage: spine skip ID [--result JSON] [--json]\n"
    "  Resolves the incident of paused workflow ID by skipping its provider step: the step\n"
    "  is recorded as completed with JSON (default null) as the provider's answer, and the\n"
    "  workflow goes on from there on a worker.\n";

static const char skip_sql[] = "SELECT r->'skipped'->>'seq', r->'skipped'->>'step'"
                               " FROM spine.skip_step($1, $2, 'spine skip') r";

int spine_cli_skip(int argc, char **argv) {
  spine_cli_cmd cmd;
  if (spine_cli__open(&cmd, argc, argv, skip_spec, skip_usage, 1, 1)) return cmd.exit_code;
  const char *id = cmd.a.pos[0], *result = spine_cli__get(&cmd, "result");
  if (!result) result = "null";
  spine_err *e = &cmd.e;
  const char *p[2] = {id, result};
  PGresult *r = spine_pgconn_query(cmd.c, skip_sql, 2, p, e);
  int status = SPINE_EXIT_OK;
  if (!r) {
    if (e->code == SPINE_EDB && strstr(e->msg, "json")) { /* the --result, not the workflow */
      e->code = SPINE_EINVAL;
      snprintf(e->field, sizeof e->field, "result");
    }
    status = spine_cli__fail(cmd.json, e, NULL);
  } else if (cmd.json) {
    spine_buf b = SPINE_BUF_INIT;
    spine_buf_puts(&b, "{\"id\":");
    spine_log_json_string(&b, id, strlen(id));
    spine_buf_printf(
        &b, ",\"status\":\"running\",\"skipped\":{\"seq\":%s,\"step\":", PQgetvalue(r, 0, 0));
    spine_log_json_string(&b, PQgetvalue(r, 0, 1), (size_t)PQgetlength(r, 0, 1));
    spine_buf_puts(&b, "}}\n");
    fputs(spine_buf_str(&b), stdout);
    spine_buf_free(&b);
  } else {
    printf("%s: running (step %s %s skipped)\n", id, PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1));
  }
  if (r) PQclear(r);
  PQfinish(cmd.c);
  return status;
}
