/* `spine start PROCESS`: stores a case (its playbook version and a pending workflow) and
 * notifies the workers; prints its id at once. The same --idempotency-key never starts two. */
#include <stdio.h>

#include "api_ops.h"
#include "cli.h"
#include "intake.h"
#include "pgconn.h"

static const char *const spec[] = {"input=", "subject=", "idempotency-key=", "json", NULL};
static const char usage[] =
    "usage: spine start PROCESS [--input JSON] [--subject KEY] [--idempotency-key K] [--json]\n"
    "  Stores a new case of PROCESS and prints its workflow id; a running `spine serve` on the\n"
    "  same database runs it. With a manifest in force for PROCESS, the dispatcher checks the\n"
    "  input against it and picks the variant by the subject key (--subject, else the input's\n"
    "  subject field); else PROCESS is a playbook name or file. The same --idempotency-key\n"
    "  never starts two workflows.\n";

int spine_cli_start(int argc, char **argv) {
  spine_cli_cmd cmd;
  if (spine_cli__open(&cmd, argc, argv, spec, usage, 1, 1)) return cmd.exit_code;
  spine_intake_case req = {0};
  req.process = cmd.a.pos[0];
  req.input = spine_cli__get(&cmd, "input");
  req.key = spine_cli__get(&cmd, "idempotency-key");
  req.subject = spine_cli__get(&cmd, "subject");
  char id[40];
  const char *code = NULL;
  int status = SPINE_EXIT_OK;
  if (spine_intake_start_case(cmd.c, &req, id, &code, &cmd.e)) {
    status = spine_cli__fail(cmd.json, &cmd.e, code);
  } else if (cmd.json) { /* the workflow as `spine show --json` prints it */
    const char *wp[1] = {id};
    PGresult *w = spine_pgconn_query(cmd.c, spine_api_workflow_sql, 1, wp, &cmd.e);
    if (w && PQntuples(w) == 1)
      printf("%s\n", PQgetvalue(w, 0, 0));
    else
      status = spine_cli__fail(cmd.json, &cmd.e, NULL);
    if (w) PQclear(w);
  } else {
    printf("%s\n", id);
  }
  PQfinish(cmd.c);
  return status;
}
