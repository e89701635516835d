/* `spine replay ID [--playbook FILE]`: replays a recorded history against the source it ran
 * (or a new one) without touching the database, and reports the first divergence. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cli.h"
#include "engine.h"
#include "log.h"
#include "pgconn.h"
#include "playbook.h"
#include "sql.h"

static const char *const spec[] = {"playbook=", "json", NULL};
static const char usage[] =
    "usage: spine replay ID [--playbook FILE] [--json]\n"
    "  Replays the workflow's recorded steps against FILE (default: the version it runs) and\n"
    "  reports whether the playbook still takes the same steps. Exit 1 on non-determinism.\n";

int spine_cli_replay(int argc, char **argv) {
  spine_cli_cmd cmd;
  if (spine_cli__open(&cmd, argc, argv, spec, usage, 1, 1)) return cmd.exit_code;
  const char *id = cmd.a.pos[0], *file = spine_cli__get(&cmd, "playbook");
  PGconn *c = cmd.c;
  int json = cmd.json;
  spine_err *e = &cmd.e;
  const char *params[1] = {id};
  PGresult *r = spine_pgconn_query(c,
                                   "SELECT w.input, v.path, v.source, " SPINE_WF_COLUMNS
                                   " FROM spine.workflows w JOIN spine.playbook_versions v"
                                   " ON v.hash = w.version WHERE w.id = $1",
                                   1, params, e);
  if (!r || PQntuples(r) == 0) {
    int status = r ? spine_cli__not_found(&cmd, id) : spine_cli__fail(json, e, NULL);
    if (r) PQclear(r);
    PQfinish(c);
    return status;
  }
  spine_playbook_src src = {0};
  const char *path = PQgetvalue(r, 0, 1), *source = PQgetvalue(r, 0, 2);
  size_t len = (size_t)PQgetlength(r, 0, 2);
  if (file) {
    if (spine_playbook_read(file, NULL, &src, e)) {
      PQclear(r);
      PQfinish(c);
      return spine_cli__fail(json, e, "not_found");
    }
    path = src.path;
    source = src.source;
    len = src.len;
  }
  spine_replay_report rep;
  int rc =
      spine_engine_replay(path, source, len, PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 16), &rep, e);
  int status = SPINE_EXIT_OK;
  if (rc) {
    status = spine_cli__fail(json, e, NULL);
  } else {
    if (json) {
      spine_buf b = SPINE_BUF_INIT;
      spine_buf_puts(&b, "{\"id\":");
      spine_log_json_string(&b, id, strlen(id));
      spine_buf_puts(&b, ",\"playbook\":");
      spine_log_json_string(&b, path, strlen(path));
      spine_buf_printf(&b,
                       ",\"recorded\":%d,\"replayed\":%d,\"deterministic\":%s,\"divergence\":%s}\n",
                       rep.recorded, rep.replayed, rep.nondeterministic ? "false" : "true",
                       rep.nondeterministic ? rep.error : "null");
      fputs(spine_buf_str(&b), stdout);
      spine_buf_free(&b);
    } else if (rep.nondeterministic) {
      printf("%s: NOT deterministic against %s after %d of %d steps\n  %s\n", id, path,
             rep.replayed, rep.recorded, rep.error);
    } else {
      printf("%s: deterministic against %s (%d of %d recorded steps replayed)\n", id, path,
             rep.replayed, rep.recorded);
    }
    if (rep.nondeterministic) status = SPINE_EXIT_REJECTED;
  }
  spine_playbook_src_free(&src);
  PQclear(r);
  PQfinish(c);
  return status;
}
