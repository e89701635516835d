/* `spine replay ID [--playbook FILE]` and `spine replay --process P --sample N [--playbook
 * FILE]`: replays recorded histories against the source they ran (or a new one) without
 * touching the database (api_repair.c), and reports the first divergence: of one workflow, or,
 * for CI, of the N most recent workflows of a process. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_repair.h"
#include "buf.h"
#include "cli.h"
#include "log.h"
#include "pgconn.h"

static const char *const spec[] = {"playbook=", "process=", "sample=", "json", NULL};
static const char usage[] =
    "usage: spine replay ID [--playbook FILE] [--json]\n"
    "       spine replay --process P --sample N [--playbook FILE] [--json]\n"
    "  Replays the workflow's recorded steps against FILE (default: the version it runs) and\n"
    "  reports whether the playbook still takes the same steps. With --process: the N most\n"
    "  recent workflows of P that have steps, one after the other, stopping at the first that\n"
    "  diverges (for CI). Exit 1 on non-determinism, naming the workflow and the step.\n";

/* {"id", "playbook", "recorded", "replayed", "deterministic", "divergence"}. */
static void report_json(spine_buf *b, const char *id, const char *path,
                        const spine_api_replay *rp) {
  spine_buf_puts(b, "{\"id\":");
  spine_log_json_string(b, id, strlen(id));
  spine_buf_puts(b, ",\"playbook\":");
  spine_log_json_string(b, path, strlen(path));
  spine_buf_printf(b, ",\"recorded\":%d,\"replayed\":%d,\"deterministic\":%s,\"divergence\":",
                   rp->rep.recorded, rp->rep.replayed, rp->diverged ? "false" : "true");
  if (rp->rep.nondeterministic) {
    spine_buf_puts(b, rp->rep.error);
  } else if (rp->diverged) { /* it ended before the history did */
    spine_buf_printf(b,
                     "{\"kind\":\"stuck\",\"code\":\"nondeterminism\",\"step\":%d,"
                     "\"message\":",
                     rp->step);
    spine_log_json_string(b, rp->why, strlen(rp->why));
    spine_buf_putc(b, '}');
  } else {
    spine_buf_puts(b, "null");
  }
  spine_buf_putc(b, '}');
}

static void report_text(const char *id, const char *path, const spine_api_replay *rp) {
  if (rp->diverged)
    printf("%s: NOT deterministic against %s after %d of %d steps\n  %s\n", id, path,
           rp->rep.replayed, rp->rep.recorded, rp->rep.nondeterministic ? rp->rep.error : rp->why);
  else
    printf("%s: deterministic against %s (%d of %d recorded steps replayed)\n", id, path,
           rp->rep.replayed, rp->rep.recorded);
}

/* One workflow; returns the exit status. */
static int replay_id(spine_cli_cmd *cmd, const char *id, const spine_playbook_src *src) {
  spine_api_replay rp;
  if (spine_api_replay_one(cmd->c, id, -1, src, &rp, &cmd->e))
    return cmd->e.code == SPINE_ENOTFOUND ? spine_cli__not_found(cmd, id)
                                          : spine_cli__fail(cmd->json, &cmd->e, NULL);
  const char *path = src ? src->path : "its version";
  if (cmd->json) {
    spine_buf b = SPINE_BUF_INIT;
    report_json(&b, id, path, &rp);
    printf("%s\n", spine_buf_str(&b));
    spine_buf_free(&b);
  } else {
    report_text(id, path, &rp);
  }
  return rp.diverged ? SPINE_EXIT_REJECTED : SPINE_EXIT_OK;
}

/* The N most recent workflows of a process with steps, newest first, until one diverges. */
static int replay_sample(spine_cli_cmd *cmd, const char *process, const char *n,
                         const spine_playbook_src *src) {
  const char *params[2] = {process, n};
  PGresult *r = spine_pgconn_query(
      cmd->c,
      "SELECT w.id FROM spine.workflows w WHERE w.process = $1 AND w.pruned_at IS NULL"
      " AND EXISTS (SELECT 1 FROM spine.steps s WHERE s.workflow_id = w.id)"
      " ORDER BY w.created_at DESC, w.id DESC LIMIT $2::int",
      2, params, &cmd->e);
  if (!r) return spine_cli__fail(cmd->json, &cmd->e, NULL);
  const char *path = src ? src->path : "its version";
  spine_buf b = SPINE_BUF_INIT;
  int status = SPINE_EXIT_OK, done = 0;
  spine_buf_puts(&b, "{\"process\":");
  spine_log_json_string(&b, process, strlen(process));
  spine_buf_puts(&b, ",\"replays\":[");
  for (int i = 0; i < PQntuples(r) && status == SPINE_EXIT_OK; i++) {
    const char *id = PQgetvalue(r, i, 0);
    spine_api_replay rp;
    if (spine_api_replay_one(cmd->c, id, -1, src, &rp, &cmd->e)) {
      status = spine_cli__fail(cmd->json, &cmd->e, NULL);
      break;
    }
    if (i) spine_buf_putc(&b, ',');
    report_json(&b, id, path, &rp);
    if (!cmd->json) report_text(id, path, &rp);
    if (rp.diverged) {
      status = SPINE_EXIT_REJECTED;
      if (!cmd->json)
        fprintf(stderr, "spine replay: workflow %s diverges from %s at step %d\n", id, path,
                rp.step);
    }
    done++;
  }
  spine_buf_printf(&b, "],\"replayed\":%d,\"deterministic\":%s}", done,
                   status == SPINE_EXIT_OK ? "true" : "false");
  if (cmd->json && (status == SPINE_EXIT_OK || done > 0)) printf("%s\n", spine_buf_str(&b));
  if (!cmd->json && status == SPINE_EXIT_OK)
    printf("%d workflow%s of %s replayed alike against %s\n", done, done == 1 ? "" : "s", process,
           path);
  spine_buf_free(&b);
  PQclear(r);
  return status;
}

int spine_cli_replay(int argc, char **argv) {
  spine_cli_cmd cmd;
  if (spine_cli__begin(&cmd, argc, argv, spec, usage, 0, 1)) return cmd.exit_code;
  const char *file = spine_cli__get(&cmd, "playbook"), *process = spine_cli__get(&cmd, "process");
  const char *sample = spine_cli__get(&cmd, "sample");
  if ((cmd.a.npos == 1) == (process != NULL) || (process != NULL) != (sample != NULL)) {
    fprintf(stderr, "spine replay: give ID, or --process and --sample\n\n%s", usage);
    return SPINE_EXIT_USAGE;
  }
  char *end = NULL;
  long n = sample ? strtol(sample, &end, 10) : 0;
  if (sample && (*end || n < 1 || n > 100000)) {
    fprintf(stderr, "spine replay: --sample must be 1 to 100000\n");
    return SPINE_EXIT_USAGE;
  }
  spine_playbook_src src = {0};
  if (file && spine_playbook_read(file, NULL, &src, &cmd.e))
    return spine_cli__fail(cmd.json, &cmd.e, "not_found");
  int status = spine_cli__connect(&cmd) ? cmd.exit_code : -1;
  if (status < 0) {
    char num[16];
    snprintf(num, sizeof num, "%ld", n);
    status = process ? replay_sample(&cmd, process, num, file ? &src : NULL)
                     : replay_id(&cmd, cmd.a.pos[0], file ? &src : NULL);
    PQfinish(cmd.c);
  }
  spine_playbook_src_free(&src);
  return status;
}
