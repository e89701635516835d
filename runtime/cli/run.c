/* `spine run PLAYBOOK`: runs one workflow to its end in this process and prints it. With
 * --clock virtual, sleeps and timeouts fire as soon as nothing else is left to do. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "api_ops.h"
#include "cli.h"
#include "duration.h"
#include "engine.h"
#include "jsondoc.h"
#include "pgconn.h"
#include "server.h"

static const char *const spec[] = {"input=", "clock=", "signal-at=", "json", NULL};
static const char usage[] =
    "usage: spine run PLAYBOOK [--input JSON] [--clock virtual|real]\n"
    "                 [--signal-at OFFSET:NAME[=JSON]]... [--json]\n"
    "  Runs PLAYBOOK (a file path, or a name in playbooks/) to its end in this process and\n"
    "  prints the workflow with its steps. Exit 0 when it completed, 1 otherwise.\n"
    "  --clock virtual: sleeps and timeouts end as soon as nothing else is left to do, and\n"
    "  what the run writes carries the virtual time. --signal-at (virtual clock, repeatable):\n"
    "  signal NAME with payload JSON (default {}) OFFSET after the start, as `spine signal`\n"
    "  would then: --signal-at 3d:customer.meter_reading='{\"value\":1234}'.\n";

#define MAX_SCRIPTS 16

typedef struct scripted {
  int64_t offset;
  char name[128];
  const char *payload; /* borrowed from argv, NULL = {} */
} scripted;

/* Every --signal-at of argv (the parser keeps only the last), checked. 0, or a usage error
 * said on stderr. */
static int read_scripts(int argc, char **argv, scripted *out, int *n) {
  *n = 0;
  for (int i = 1; i < argc; i++) {
    const char *v = NULL;
    if (!strcmp(argv[i], "--signal-at") && i + 1 < argc)
      v = argv[++i];
    else if (!strncmp(argv[i], "--signal-at=", 12))
      v = argv[i] + 12;
    if (!v) continue;
    const char *colon = strchr(v, ':');
    char off[32];
    spine_err e;
    spine_err_clear(&e);
    if (*n == MAX_SCRIPTS) {
      fprintf(stderr, "spine run: --signal-at: at most %d signals\n", MAX_SCRIPTS);
      return SPINE_EXIT_USAGE;
    }
    scripted *s = &out[*n];
    size_t olen = colon ? (size_t)(colon - v) : 0;
    const char *eq = colon ? strchr(colon + 1, '=') : NULL;
    size_t nlen = colon ? (eq ? (size_t)(eq - colon - 1) : strlen(colon + 1)) : 0;
    if (!colon || olen == 0 || olen >= sizeof off || nlen == 0 || nlen >= sizeof s->name) {
      fprintf(stderr,
              "spine run: --signal-at: \"%.80s\" is not OFFSET:NAME[=JSON] (as"
              " 3d:customer.meter_reading='{\"value\":1234}')\n",
              v);
      return SPINE_EXIT_USAGE;
    }
    memcpy(off, v, olen);
    off[olen] = '\0';
    if (spine_duration_parse(off, &s->offset, &e)) {
      fprintf(stderr, "spine run: --signal-at: %s\n", e.msg);
      return SPINE_EXIT_USAGE;
    }
    memcpy(s->name, colon + 1, nlen);
    s->name[nlen] = '\0';
    s->payload = eq ? eq + 1 : NULL;
    spine_jsondoc *doc = NULL;
    int line;
    if (s->payload && (spine_jsondoc_parse(s->payload, strlen(s->payload), &doc, &line, &e) ||
                       doc->type != SPINE_JSONDOC_OBJECT)) {
      fprintf(stderr, "spine run: --signal-at %s: the payload is not a JSON object%s%s\n", s->name,
              e.msg[0] ? ": " : "", e.msg);
      spine_jsondoc_free(doc);
      return SPINE_EXIT_USAGE;
    }
    spine_jsondoc_free(doc);
    (*n)++;
  }
  return 0;
}

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
  scripted scripts[MAX_SCRIPTS];
  int nscripts;
  if (read_scripts(argc, argv, scripts, &nscripts)) return SPINE_EXIT_USAGE;
  if (nscripts && !(clock && !strcmp(clock, "virtual"))) {
    fprintf(stderr, "spine run: --signal-at needs --clock virtual\n");
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
  int manual;
  int64_t start = spine_engine_now(eng, &manual);
  int rc = spine_engine_serve(eng, e);
  if (!rc) rc = spine_engine_start(eng, cmd.a.pos[0], spine_cli__get(&cmd, "input"), rs.id, e);
  for (int i = 0; !rc && i < nscripts; i++)
    rc = spine_engine_signal_at(eng, rs.id, start + scripts[i].offset, scripts[i].name,
                                scripts[i].payload, e);
  if (rc) {
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
