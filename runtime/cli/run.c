/* `spine run PLAYBOOK`: runs one workflow to its end in this process and prints it. With
 * --clock virtual, sleeps and timeouts fire as soon as nothing else is left to do. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "api_ops.h"
#include "cli.h"
#include "engine.h"
#include "pgconn.h"
#include "server.h"

static const char *const spec[] = {"input=", "clock=", "json", NULL};
static const char usage[] =
    "usage: spine run PLAYBOOK [--input JSON] [--clock virtual|real] [--json]\n"
    "  Runs PLAYBOOK (a file path, or a name in playbooks/) to its end in this process and\n"
    "  prints the workflow with its steps. Exit 0 when it completed, 1 otherwise.\n";

typedef struct run_state {
  char id[80];
  int done;
  spine_wf_status status;
  spine_server_engine se;
} run_state;

static void on_end(void *data, const spine_wf *wf, const char *result, const char *error) {
  (void)result, (void)error;
  run_state *rs = data;
  if (strcmp(spine_wf_id(wf), rs->id)) return; /* a child */
  rs->done = 1;
  rs->status = spine_wf_status_of(wf);
  spine_server_engine_stop(&rs->se);
}

static void on_signal(uv_signal_t *h, int signum) {
  (void)signum;
  run_state *rs = h->data;
  spine_server_engine_stop(&rs->se);
  uv_close((uv_handle_t *)h, NULL);
}

int spine_cli_run(int argc, char **argv) {
  spine_cli_cmd cmd;
  if (spine_cli__begin(&cmd, argc, argv, spec, usage, 1, 1)) return cmd.exit_code;
  int json = cmd.json;
  const char *clock = spine_cli__get(&cmd, "clock");
  if (clock && strcmp(clock, "virtual") && strcmp(clock, "real")) {
    fprintf(stderr, "spine run: --clock must be virtual or real\n");
    return SPINE_EXIT_USAGE;
  }
  spine_err *e = &cmd.e;
  char conninfo[1024];
  if (spine_pgconn_conninfo(conninfo, sizeof conninfo, e)) return spine_cli__fail(json, e, NULL);

  uv_loop_t loop;
  uv_loop_init(&loop);
  spine_engine_opts o = {0};
  o.conninfo = conninfo;
  o.pool = 2;
  o.virtual_clock = clock && !strcmp(clock, "virtual");
  o.quiet = 1;
  run_state rs = {0};
  if (spine_server_engine_new(&loop, &o, getenv("SPINE_PROVIDERS"), &rs.se, e)) {
    uv_loop_close(&loop);
    return spine_cli__fail(json, e, NULL);
  }
  spine_engine *eng = rs.se.engine;
  spine_engine_on_end(eng, on_end, &rs);
  if (spine_engine_serve(eng, e) ||
      spine_engine_start(eng, cmd.a.pos[0], spine_cli__get(&cmd, "input"), rs.id, e)) {
    spine_server_engine_stop(&rs.se);
    uv_run(&loop, UV_RUN_DEFAULT);
    spine_server_engine_free(&rs.se);
    uv_loop_close(&loop);
    return spine_cli__fail(json, e, e->code == SPINE_ENOTFOUND ? "not_found" : NULL);
  }
  uv_signal_t sig;
  uv_signal_init(&loop, &sig);
  sig.data = &rs;
  uv_signal_start(&sig, on_signal, SIGINT);
  uv_unref((uv_handle_t *)&sig);
  uv_run(&loop, UV_RUN_DEFAULT);
  if (!uv_is_closing((uv_handle_t *)&sig)) uv_close((uv_handle_t *)&sig, NULL);
  spine_server_engine_stop(&rs.se); /* when the loop ended on its own */
  uv_run(&loop, UV_RUN_DEFAULT);
  spine_server_engine_free(&rs.se);
  uv_loop_close(&loop);
  if (!rs.done) {
    spine_err_set(e, SPINE_ECANCELLED, NULL, NULL, "interrupted before the workflow ended");
    return spine_cli__fail(json, e, "interrupted");
  }

  if (spine_cli__connect(&cmd)) return cmd.exit_code;
  PGconn *c = cmd.c;
  const char *params[1] = {rs.id};
  PGresult *r = spine_pgconn_query(c, spine_api_workflow_sql, 1, params, e);
  if (!r || PQntuples(r) != 1) {
    if (r) PQclear(r);
    PQfinish(c);
    return spine_cli__fail(json, e, NULL);
  }
  if (json)
    printf("%s\n", PQgetvalue(r, 0, 0));
  else
    spine_cli__print_workflow(PQgetvalue(r, 0, 0));
  PQclear(r);
  PQfinish(c);
  return rs.status == SPINE_WF_COMPLETED ? SPINE_EXIT_OK : SPINE_EXIT_REJECTED;
}
