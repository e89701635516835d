/* `spine show ID` and `spine list`: workflows as the database has them (the queries are
 * api_ops.c's, shared with GET /v1/workflows). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_ops.h"
#include "buf.h"
#include "cli.h"
#include "pgconn.h"

static const char *const show_spec[] = {"json", NULL};
static const char show_usage[] =
    "usage: spine show ID [--json]\n"
    "  Status, process, variant, business state, result or error, and every step in order.\n";

int spine_cli_show(int argc, char **argv) {
  return spine_cli__show_one(argc, argv, show_spec, show_usage, spine_api_workflow_sql,
                             spine_cli__print_workflow_row);
}

static const char *const list_spec[] = {"status=", "process=", "limit=", "cursor=", "json", NULL};
static const char list_usage[] =
    "usage: spine list [--status S] [--process P] [--limit N] [--cursor C] [--json]\n"
    "  Workflows, newest first; --json adds next_cursor when there are more.\n";

int spine_cli_list(int argc, char **argv) {
  spine_cli_cmd cmd;
  if (spine_cli__begin(&cmd, argc, argv, list_spec, list_usage, 0, 0)) return cmd.exit_code;
  const char *limit = spine_cli__get(&cmd, "limit");
  char lim[16];
  snprintf(lim, sizeof lim, "%d", limit ? atoi(limit) : 100);
  if (atoi(lim) <= 0) {
    fprintf(stderr, "spine list: --limit must be a positive number\n");
    return SPINE_EXIT_USAGE;
  }
  if (spine_cli__connect(&cmd)) return cmd.exit_code;
  PGconn *c = cmd.c;
  int json = cmd.json;
  spine_api_filter f = {0};
  f.eq[0] = spine_cli__get(&cmd, "status");
  f.eq[1] = spine_cli__get(&cmd, "process");
  f.limit = atoi(lim);
  f.cursor = spine_cli__get(&cmd, "cursor");
  spine_buf page = SPINE_BUF_INIT;
  int status = SPINE_EXIT_OK;
  if (spine_api_list(c, &f, "workflows", &page, &cmd.e)) {
    status = spine_cli__fail(json, &cmd.e, NULL);
  } else if (json) {
    printf("%s\n", spine_buf_str(&page));
  } else {
    const char *params[3] = {f.eq[0], f.eq[1], lim};
    PGresult *t = spine_pgconn_query(
        c,
        "SELECT id, status, process, coalesce(state, ''), to_char(created_at, 'YYYY-MM-DD"
        " HH24:MI:SS') FROM spine.workflows w WHERE ($1::text IS NULL OR w.status = $1)"
        " AND ($2::text IS NULL OR w.process = $2) ORDER BY created_at DESC, id DESC"
        " LIMIT $3::int",
        3, params, &cmd.e);
    if (t) {
      printf("%-40s %-12s %-24s %-20s %s\n", "ID", "STATUS", "PROCESS", "STATE", "CREATED");
      for (int i = 0; i < PQntuples(t); i++)
        printf("%-40s %-12s %-24s %-20s %s\n", PQgetvalue(t, i, 0), PQgetvalue(t, i, 1),
               PQgetvalue(t, i, 2), PQgetvalue(t, i, 3), PQgetvalue(t, i, 4));
      PQclear(t);
    }
  }
  spine_buf_free(&page);
  PQfinish(c);
  return status;
}
