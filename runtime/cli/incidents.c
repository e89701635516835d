/* Incidents: provider steps whose retries ran out paused their workflow for an operator.
 * `spine incidents` lists them; `spine skip` resolves one by recording the step's result the
 * operator gives (the workflow goes on as if the provider had answered it), through
 * spine.skip_step (runtime/sql/0010_operator_actions.sql); `spine retry` and `spine cancel`
 * (ops.c) resolve them the other two ways. */
#include <stdio.h>
#include <string.h>

#include "api_ops.h"
#include "buf.h"
#include "cli.h"
#include "jsondoc.h"
#include "log.h"
#include "pgconn.h"

static const char *const list_spec[] = {"all", "json", NULL};
static const char list_usage[] =
    "usage: spine incidents [--all] [--json]\n"
    "  The open incidents (with --all, resolved ones too), oldest first: each is a workflow\n"
    "  paused on a provider step whose retries ran out. Resolve one with `spine retry ID`\n"
    "  (fresh attempts), `spine skip ID --result JSON` (use this result), or `spine cancel\n"
    "  ID` (compensate and end).\n";

/* The incidents of spine_api_incidents_sql (a JSON array), for people. */
static void print_incidents(const spine_jsondoc *list, int all) {
  for (const spine_jsondoc *n = list->child; n; n = n->next) {
    const spine_jsondoc *err = spine_jsondoc_get(n, "error");
    const char *msg = spine_jsondoc_str(err, "message", "");
    const char *res = spine_jsondoc_str(n, "resolution", "");
    printf("#%.0f %s  %s (%.0f attempts) %s since %s\n  %s\n", spine_jsondoc_num(n, "id", 0),
           spine_jsondoc_str(n, "workflow_id", ""), spine_jsondoc_str(n, "step", ""),
           spine_jsondoc_num(n, "attempts", 0), *res ? res : "open",
           spine_jsondoc_str(n, "created_at", ""),
           *msg ? msg : (err && err->type == SPINE_JSONDOC_STRING ? err->str : ""));
  }
  if (!list->count) printf("no %sincidents\n", all ? "" : "open ");
}

int spine_cli_incidents(int argc, char **argv) {
  spine_cli_cmd cmd;
  if (spine_cli__open(&cmd, argc, argv, list_spec, list_usage, 0, 0)) return cmd.exit_code;
  int all = spine_cli__get(&cmd, "all") != NULL;
  const char *p[1] = {all ? "true" : "false"};
  PGresult *r = spine_pgconn_query(cmd.c, spine_api_incidents_sql, 1, p, &cmd.e);
  int status = SPINE_EXIT_OK, line;
  spine_jsondoc *doc = NULL;
  if (!r) {
    status = spine_cli__fail(cmd.json, &cmd.e, NULL);
  } else if (cmd.json) {
    printf("{\"incidents\":%s}\n", PQgetvalue(r, 0, 0));
  } else if (spine_jsondoc_parse(PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0), &doc, &line,
                                 &cmd.e)) {
    status = spine_cli__fail(0, &cmd.e, NULL);
  } else {
    print_incidents(doc, all);
  }
  spine_jsondoc_free(doc);
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

int spine_cli_skip(int argc, char **argv) {
  spine_cli_cmd cmd;
  if (spine_cli__open(&cmd, argc, argv, skip_spec, skip_usage, 1, 1)) return cmd.exit_code;
  const char *id = cmd.a.pos[0], *result = spine_cli__get(&cmd, "result");
  spine_buf out = SPINE_BUF_INIT;
  spine_jsondoc *doc = NULL;
  int status = SPINE_EXIT_OK, line;
  if (spine_api_skip(cmd.c, id, result, "spine skip", &out, &cmd.e)) {
    status = spine_cli__fail(cmd.json, &cmd.e, NULL);
  } else if (cmd.json) {
    printf("%s\n", spine_buf_str(&out));
  } else if (!spine_jsondoc_parse(spine_buf_str(&out), out.len, &doc, &line, NULL)) {
    const spine_jsondoc *sk = spine_jsondoc_get(doc, "skipped");
    const spine_jsondoc *seq = spine_jsondoc_get(sk, "seq"), *step = spine_jsondoc_get(sk, "step");
    printf("%s: running (step %.0f %s skipped)\n", id, seq ? seq->num : 0.0,
           step && step->str ? step->str : "?");
  }
  spine_jsondoc_free(doc);
  spine_buf_free(&out);
  PQfinish(cmd.c);
  return status;
}
