/* Operator actions: `spine cancel` and `spine retry`, on one workflow (ID) or on every workflow
 * a --where filter matches (a dry run unless --yes). The SQL functions of
 * runtime/sql/0010_operator_actions.sql change the rows and wake the workers; this file never
 * writes a row itself. The worker that runs a workflow does the rest (compensations, replay). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cli.h"
#include "log.h"
#include "pgconn.h"

static const char *const spec[] = {"json", "where=", "yes", "limit=", NULL};
enum { OPT_JSON, OPT_WHERE, OPT_YES, OPT_LIMIT };

/* The columns a --where filter may name, all compared for equality. */
static const char *const filter_keys[] = {"status",  "process",    "playbook", "version",
                                          "variant", "experiment", "state",    NULL};

/* An action's SQL: on one workflow (refuses, saying why, when it cannot), on the text array $1
 * of ids (returns (id, status) of each it changed, skips the others), and the condition on w
 * that selects the workflows it may change, for the dry run. */
typedef struct action {
  const char *verb;
  const char *one;
  const char *many;
  const char *eligible;
} action;

/* Appends `s` to a PostgreSQL array literal being built in b. */
static void array_add(spine_buf *b, const char *s, size_t len) {
  spine_buf_putc(b, b->len == 0 ? '{' : ',');
  spine_buf_putc(b, '"');
  for (size_t i = 0; i < len; i++) {
    if (s[i] == '"' || s[i] == '\\') spine_buf_putc(b, '\\');
    spine_buf_putc(b, s[i]);
  }
  spine_buf_putc(b, '"');
}

/* Turns "status=stuck process=x" into SQL conditions on w (parameters $1.., values in
 * `vals`). Returns 0, or SPINE_EXIT_USAGE after saying which part is wrong. */
static int parse_where(const char *where, spine_buf *cond, char vals[8][128], int *nvals,
                       const char *verb) {
  *nvals = 0;
  const char *p = where;
  while (*p) {
    while (*p == ' ')
      p++;
    if (!*p) break;
    const char *end = strchr(p, ' ');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    const char *eq = memchr(p, '=', len);
    int k = -1;
    for (int i = 0; eq && filter_keys[i]; i++)
      if (strlen(filter_keys[i]) == (size_t)(eq - p) && !strncmp(filter_keys[i], p, eq - p)) k = i;
    if (k < 0 || *nvals == 8 || len - (size_t)(eq - p) - 1 >= sizeof vals[0] || eq + 1 == p + len) {
      fprintf(stderr,
              "spine %s: --where: cannot use \"%.*s\" (KEY=VALUE with KEY one of status, process,"
              " playbook, version, variant, experiment, state)\n",
              verb, (int)len, p);
      return SPINE_EXIT_USAGE;
    }
    snprintf(vals[*nvals], sizeof vals[0], "%.*s", (int)(len - (size_t)(eq - p) - 1), eq + 1);
    spine_buf_printf(cond, " AND w.%s = $%d", filter_keys[k], *nvals + 1);
    (*nvals)++;
    p += len;
  }
  if (*nvals == 0) {
    fprintf(stderr, "spine %s: --where needs at least one KEY=VALUE\n", verb);
    return SPINE_EXIT_USAGE;
  }
  return 0;
}

/* Prints the rows (id, status) an action returned. */
static void print_rows(PGresult *r, int json, int dry, int matched) {
  if (!json) {
    for (int i = 0; i < PQntuples(r); i++)
      printf("%s: %s\n", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
    if (dry)
      printf("%d workflow%s would be affected; run again with --yes to act.\n", matched,
             matched == 1 ? "" : "s");
    return;
  }
  spine_buf b = SPINE_BUF_INIT;
  spine_buf_printf(&b, "{\"dry_run\":%s,\"matched\":%d,\"workflows\":[", dry ? "true" : "false",
                   matched);
  for (int i = 0; i < PQntuples(r); i++) {
    spine_buf_puts(&b, i ? ",{\"id\":" : "{\"id\":");
    spine_log_json_string(&b, PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0));
    spine_buf_puts(&b, ",\"status\":");
    spine_log_json_string(&b, PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1));
    spine_buf_putc(&b, '}');
  }
  spine_buf_puts(&b, "]}\n");
  fputs(spine_buf_str(&b), stdout);
  spine_buf_free(&b);
}

/* --where: finds the matches (those `eligible` allows), prints them (dry run) or acts on them. */
static int act_where(PGconn *c, const spine_cli_args *a, const action *act, spine_err *e) {
  int json = a->values[OPT_JSON] != NULL;
  spine_buf cond = SPINE_BUF_INIT, find = SPINE_BUF_INIT, ids = SPINE_BUF_INIT;
  char vals[8][128];
  int nvals, status = SPINE_EXIT_OK;
  long limit = a->values[OPT_LIMIT] ? strtol(a->values[OPT_LIMIT], NULL, 10) : 1000;
  if (limit < 1) limit = 1000;
  if (parse_where(a->values[OPT_WHERE], &cond, vals, &nvals, act->verb)) {
    status = SPINE_EXIT_USAGE;
    goto out;
  }
  spine_buf_printf(&find,
                   "SELECT w.id, w.status FROM spine.workflows w WHERE %s%s ORDER BY w.created_at"
                   " LIMIT %ld",
                   act->eligible, spine_buf_str(&cond), limit);
  const char *params[8];
  for (int i = 0; i < nvals; i++)
    params[i] = vals[i];
  PGresult *r = spine_pgconn_query(c, spine_buf_str(&find), nvals, params, e);
  if (!r) {
    status = spine_cli__fail(json, e, NULL);
    goto out;
  }
  int matched = PQntuples(r);
  if (!a->values[OPT_YES] || matched == 0) {
    print_rows(r, json, 1, matched);
    PQclear(r);
    goto out;
  }
  for (int i = 0; i < matched; i++)
    array_add(&ids, PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0));
  spine_buf_putc(&ids, '}');
  PQclear(r);
  const char *ap[1] = {spine_buf_str(&ids)};
  r = spine_pgconn_query(c, act->many, 1, ap, e);
  if (!r) {
    status = spine_cli__fail(json, e, NULL);
    goto out;
  }
  print_rows(r, json, 0, PQntuples(r));
  PQclear(r);
out:
  spine_buf_free(&cond);
  spine_buf_free(&find);
  spine_buf_free(&ids);
  return status;
}

/* One workflow: acts, or says why it cannot (not found, or its status does not allow it). */
static int act_one(PGconn *c, const char *id, int json, const action *act, spine_err *e) {
  const char *params[1] = {id};
  PGresult *r = spine_pgconn_query(c, act->one, 1, params, e);
  if (!r) return spine_cli__fail(json, e, NULL);
  if (json)
    printf("{\"id\":\"%s\",\"status\":\"%s\"}\n", PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1));
  else
    printf("%s: %s\n", PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1));
  PQclear(r);
  return SPINE_EXIT_OK;
}

static int run(int argc, char **argv, const char *usage, const action *act) {
  spine_cli_cmd cmd;
  if (spine_cli__begin(&cmd, argc, argv, spec, usage, 0, 1)) return cmd.exit_code;
  const spine_cli_args *a = &cmd.a;
  if ((a->npos == 1) == (a->values[OPT_WHERE] != NULL)) {
    fprintf(stderr, "spine %s: give either ID or --where\n\n%s", act->verb, usage);
    return SPINE_EXIT_USAGE;
  }
  if (spine_cli__connect(&cmd)) return cmd.exit_code;
  int status = a->npos == 1 ? act_one(cmd.c, a->pos[0], cmd.json, act, &cmd.e)
                            : act_where(cmd.c, a, act, &cmd.e);
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

static const action cancel = {
    "cancel", "SELECT r->>'id', r->>'status' FROM spine.cancel_workflow($1, 'spine cancel') r",
    "SELECT id, status FROM spine.cancel_workflows($1::text[], 'spine cancel')",
    "spine.can_cancel(w)"};

int spine_cli_cancel(int argc, char **argv) {
  return run(argc, argv, cancel_usage, &cancel);
}

static const char retry_usage[] =
    "usage: spine retry ID [--json]\n"
    "       spine retry --where 'KEY=VALUE ...' [--yes] [--limit N] [--json]\n"
    "  Runs a stuck workflow again from its history, a failed one from the step that failed\n"
    "  (its failure record is removed; a workflow whose compensations ran cannot be), or a\n"
    "  paused one from its paused provider step, with a fresh set of attempts (its incident\n"
    "  is resolved as retried).\n"
    "  With --where: every matching workflow; without --yes it only lists them.\n";

static const action retry = {
    "retry", "SELECT r->>'id', r->>'status' FROM spine.retry_workflow($1, 'spine retry') r",
    "SELECT id, status FROM spine.retry_workflows($1::text[], 'spine retry')",
    "spine.can_retry(w)"};

int spine_cli_retry(int argc, char **argv) {
  return run(argc, argv, retry_usage, &retry);
}
