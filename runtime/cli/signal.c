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
  spine_cli_args a;
  int rc = spine_cli__parse(argc, argv, spec, usage, 2, 2, &a);
  if (rc) return rc < 0 ? 0 : rc;
  int json = spine_cli__opt(&a, spec, "json") != NULL;
  const char *data = spine_cli__opt(&a, spec, "data");
  if (!data) data = "{}";
  spine_err e;
  spine_err_clear(&e);
  PGconn *c = spine_pgconn_connect(&e);
  if (!c) return spine_cli__fail(json, &e, NULL);
  const char *p1[1] = {a.pos[0]};
  PGresult *r =
      spine_pgconn_query(c, "SELECT status FROM spine.workflows WHERE id = $1", 1, p1, &e);
  int status = SPINE_EXIT_OK;
  if (!r) {
    status = spine_cli__fail(json, &e, NULL);
  } else if (PQntuples(r) == 0) {
    spine_err_set(&e, SPINE_ENOTFOUND, NULL, "id", "no workflow %s", a.pos[0]);
    status = spine_cli__fail(json, &e, "not_found");
  } else {
    const char *st = PQgetvalue(r, 0, 0);
    if (!strcmp(st, "completed") || !strcmp(st, "failed") || !strcmp(st, "compensated") ||
        !strcmp(st, "cancelled")) {
      spine_err_set(&e, SPINE_ETRANSITION, NULL, "id", "workflow %s has ended (%s)", a.pos[0], st);
      status = spine_cli__fail(json, &e, "ended");
    }
  }
  if (r) PQclear(r);
  if (status == SPINE_EXIT_OK) {
    const char *p3[3] = {a.pos[0], a.pos[1], data};
    r = spine_pgconn_query(c, spine_sql_text(SPINE_SQL_SIGNAL_SEND), 3, p3, &e);
    if (!r) {
      if (strstr(e.msg, "json")) e.code = SPINE_EINVAL, snprintf(e.field, sizeof e.field, "data");
      status = spine_cli__fail(json, &e, NULL);
    } else {
      if (json)
        printf("{\"id\":\"%s\",\"signal\":\"%s\",\"signal_id\":%s}\n", a.pos[0], a.pos[1],
               PQgetvalue(r, 0, 0));
      PQclear(r);
    }
  }
  PQfinish(c);
  return status;
}
