/* `spine signal ID NAME`: stores a signal for a workflow and wakes whoever runs it. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "pgconn.h"
#include "sql.h"

static const char *const spec[] = {"data=", "json", NULL};
static const char usage[] = "usage: spine signal ID NAME [--data JSON] [--json]\n"
                            "  Delivers signal NAME (with a JSON payload, default {}) to the\n"
                            "  workflow; kept until the workflow waits for it.\n";

int spine_cli_signal(int argc, char **argv) {
  spine_cli_cmd cmd;
  if (spine_cli__open(&cmd, argc, argv, spec, usage, 2, 2)) return cmd.exit_code;
  const char *id = cmd.a.pos[0], *name = cmd.a.pos[1];
  const char *data = spine_cli__get(&cmd, "data");
  if (!data) data = "{}";
  const char *p1[1] = {id};
  PGresult *r =
      spine_pgconn_query(cmd.c, "SELECT status FROM spine.workflows WHERE id = $1", 1, p1, &cmd.e);
  int status = SPINE_EXIT_OK;
  if (!r) {
    status = spine_cli__fail(cmd.json, &cmd.e, NULL);
  } else if (PQntuples(r) == 0) {
    status = spine_cli__not_found(&cmd, id);
  } else {
    const char *st = PQgetvalue(r, 0, 0);
    if (!strcmp(st, "completed") || !strcmp(st, "failed") || !strcmp(st, "compensated") ||
        !strcmp(st, "cancelled")) {
      spine_err_set(&cmd.e, SPINE_ETRANSITION, NULL, "id", "workflow %s has ended (%s)", id, st);
      status = spine_cli__fail(cmd.json, &cmd.e, "ended");
    }
  }
  if (r) PQclear(r);
  if (status == SPINE_EXIT_OK) {
    const char *p3[3] = {id, name, data};
    r = spine_pgconn_query(cmd.c, spine_sql_text(SPINE_SQL_SIGNAL_SEND), 3, p3, &cmd.e);
    if (!r) {
      if (strstr(cmd.e.msg, "json"))
        cmd.e.code = SPINE_EINVAL, snprintf(cmd.e.field, sizeof cmd.e.field, "data");
      status = spine_cli__fail(cmd.json, &cmd.e, NULL);
    } else {
      if (cmd.json)
        printf("{\"id\":\"%s\",\"signal\":\"%s\",\"signal_id\":%s}\n", id, name,
               PQgetvalue(r, 0, 0));
      PQclear(r);
    }
  }
  PQfinish(cmd.c);
  return status;
}
