/* Operator actions: `spine cancel` and `spine retry`, on one workflow (ID) or on every workflow
 * a --where filter matches (a dry run unless --yes). The SQL functions of
 * runtime/sql/0010_operator_actions.sql change the rows and wake the workers, called through
 * api_ops.c (shared with the HTTP API); this file never writes a row itself. The worker that runs a
 * workflow does the rest (compensations, replay). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_ops.h"
#include "buf.h"
#include "cli.h"
#include "jsondoc.h"

static const char *const spec[] = {"json", "where=", "yes", "limit=", NULL};
enum { OPT_JSON, OPT_WHERE, OPT_YES, OPT_LIMIT };

/* Turns "status=stuck process=x" into a filter (values copied into `vals`). Returns 0, or
 * SPINE_EXIT_USAGE after saying which part is wrong. */
static int parse_where(const char *where, spine_api_filter *f, char vals[8][128],
                       const char *verb) {
  int n = 0;
  const char *p = where;
  while (*p) {
    while (*p == ' ')
      p++;
    if (!*p) break;
    const char *end = strchr(p, ' ');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    const char *eq = memchr(p, '=', len);
    int k = -1;
    for (int i = 0; eq && spine_api_filter_keys[i]; i++)
      if (strlen(spine_api_filter_keys[i]) == (size_t)(eq - p) &&
          !strncmp(spine_api_filter_keys[i], p, eq - p))
        k = i;
    if (k < 0 || n == 8 || len - (size_t)(eq - p) - 1 >= sizeof vals[0] || eq + 1 == p + len) {
      fprintf(stderr,
              "spine %s: --where: cannot use \"%.*s\" (KEY=VALUE with KEY one of status, process,"
              " playbook, version, variant, experiment, state)\n",
              verb, (int)len, p);
      return SPINE_EXIT_USAGE;
    }
    snprintf(vals[n], sizeof vals[0], "%.*s", (int)(len - (size_t)(eq - p) - 1), eq + 1);
    f->eq[k] = vals[n++];
    p += len;
  }
  if (n == 0) {
    fprintf(stderr, "spine %s: --where needs at least one KEY=VALUE\n", verb);
    return SPINE_EXIT_USAGE;
  }
  return 0;
}

/* --where: finds the matches the action may change, prints them (dry run) or acts on them
 * (spine_api_bulk, shared with POST /v1/workflows/cancel and retry). */
static int act_where(PGconn *c, const spine_cli_args *a, spine_api_action act, const char *verb,
                     const char *actor, spine_err *e) {
  int json = a->values[OPT_JSON] != NULL, dry = !a->values[OPT_YES];
  spine_api_filter f = {0};
  char vals[8][128];
  long limit = a->values[OPT_LIMIT] ? strtol(a->values[OPT_LIMIT], NULL, 10) : 1000;
  f.limit = limit < 1 || limit > 1000000 ? 1000 : (int)limit;
  if (parse_where(a->values[OPT_WHERE], &f, vals, verb)) return SPINE_EXIT_USAGE;
  PGresult *r = NULL;
  if (spine_api_bulk(c, act, &f, !dry, actor, &r, e)) {
    if (r) PQclear(r);
    return spine_cli__fail(json, e, NULL);
  }
  if (json) {
    spine_buf b = SPINE_BUF_INIT;
    spine_api_bulk_json(r, dry, &b);
    printf("%s\n", spine_buf_str(&b));
    spine_buf_free(&b);
  } else {
    for (int i = 0; i < PQntuples(r); i++)
      printf("%s: %s\n", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
    if (dry)
      printf("%d workflow%s would be affected; run again with --yes to act.\n", PQntuples(r),
             PQntuples(r) == 1 ? "" : "s");
  }
  PQclear(r);
  return SPINE_EXIT_OK;
}

/* One workflow: acts, or says why it cannot (not found, or its status does not allow it). */
static int act_one(PGconn *c, const char *id, int json, spine_api_action act, const char *actor,
                   spine_err *e) {
  spine_buf b = SPINE_BUF_INIT;
  spine_jsondoc *doc = NULL;
  int line;
  if (spine_api_act(c, act, id, actor, &b, e)) {
    spine_buf_free(&b);
    return spine_cli__fail(json, e, NULL);
  }
  if (json) {
    printf("%s\n", spine_buf_str(&b));
  } else if (!spine_jsondoc_parse(spine_buf_str(&b), b.len, &doc, &line, NULL)) {
    const spine_jsondoc *st = spine_jsondoc_get(doc, "status");
    printf("%s: %s\n", id, st && st->str ? st->str : "?");
  }
  spine_jsondoc_free(doc);
  spine_buf_free(&b);
  return SPINE_EXIT_OK;
}

static int run(int argc, char **argv, const char *usage, spine_api_action act, const char *verb,
               const char *actor) {
  spine_cli_cmd cmd;
  if (spine_cli__begin(&cmd, argc, argv, spec, usage, 0, 1)) return cmd.exit_code;
  const spine_cli_args *a = &cmd.a;
  if ((a->npos == 1) == (a->values[OPT_WHERE] != NULL)) {
    fprintf(stderr, "spine %s: give either ID or --where\n\n%s", verb, usage);
    return SPINE_EXIT_USAGE;
  }
  if (spine_cli__connect(&cmd)) return cmd.exit_code;
  int status = a->npos == 1 ? act_one(cmd.c, a->pos[0], cmd.json, act, actor, &cmd.e)
                            : act_where(cmd.c, a, act, verb, actor, &cmd.e);
  PQfinish(cmd.c);
  return status;
}

static const char cancel_usage[] =
    "usage: spine cancel ID [--json]\n"
    "       spine cancel --where 'KEY=VALUE ...' [--yes] [--limit N] [--json]\n"
    "  Asks the workflow to stop: at its next step (or at once if it waits) it runs its\n"
    "  compensations and ends cancelled. With --where: every matching workflow (keys: status,\n"
    "  process, playbook, version, variant, experiment, state); without --yes it only lists\n"
    "  what it would cancel (at most --limit, default 1000).\n";

int spine_cli_cancel(int argc, char **argv) {
  return run(argc, argv, cancel_usage, SPINE_API_CANCEL, "cancel", "spine cancel");
}

static const char retry_usage[] =
    "usage: spine retry ID [--json]\n"
    "       spine retry --where 'KEY=VALUE ...' [--yes] [--limit N] [--json]\n"
    "  Runs a stuck workflow again from its history, a failed one from the step that failed\n"
    "  (its failure record is removed; a workflow whose compensations ran cannot be), or a\n"
    "  paused one from its paused provider step, with a fresh set of attempts (its incident\n"
    "  is resolved as retried).\n"
    "  With --where: every matching workflow; without --yes it only lists them.\n";

int spine_cli_retry(int argc, char **argv) {
  return run(argc, argv, retry_usage, SPINE_API_RETRY, "retry", "spine retry");
}
