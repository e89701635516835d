/* The command-line interface: one file per command, each exporting spine_cli_<command>().
 * Each takes argv after the command word's position (argv[0] is the command word), prints its
 * answer on stdout (one JSON object with --json), logs on stderr, and returns the exit status:
 * 0 done, 1 rejected request, 2 usage error. Commands other than run/serve/bench talk to the
 * database with blocking libpq: they have no loop to block. */
#ifndef SPINE_CLI_H
#define SPINE_CLI_H

#include <libpq-fe.h>

#include "err.h"

#define SPINE_EXIT_OK       0
#define SPINE_EXIT_REJECTED 1
#define SPINE_EXIT_USAGE    2

int spine_cli_db(int argc, char **argv);
int spine_cli_run(int argc, char **argv);
int spine_cli_serve(int argc, char **argv);
int spine_cli_start(int argc, char **argv);
int spine_cli_signal(int argc, char **argv);
int spine_cli_show(int argc, char **argv);
int spine_cli_list(int argc, char **argv);
int spine_cli_cancel(int argc, char **argv);
int spine_cli_retry(int argc, char **argv);
int spine_cli_skip(int argc, char **argv);
int spine_cli_incidents(int argc, char **argv);
int spine_cli_replay(int argc, char **argv);
int spine_cli_explain(int argc, char **argv);
int spine_cli_bench(int argc, char **argv);
int spine_cli_manifests(int argc, char **argv);
int spine_cli_experiments(int argc, char **argv);
int spine_cli_intent(int argc, char **argv);
int spine_cli_intents(int argc, char **argv);
int spine_cli_simulate(int argc, char **argv);
int spine_cli_watch(int argc, char **argv);
int spine_cli_new(int argc, char **argv);
int spine_cli_outbox(int argc, char **argv);

/* ---- shared by the command files ---- */

/* Options: `spec` lists the long options a command takes, "json" or "input=" (takes a value).
 * Fills values[i] for spec[i] ("1" for flags, NULL if absent) and the positional arguments.
 * Returns 0, or prints the usage error (naming the option) and returns SPINE_EXIT_USAGE;
 * with --help prints `usage` and returns -1 (the caller exits 0). */
typedef struct spine_cli_args {
  const char *values[16];
  const char *pos[8];
  int npos;
} spine_cli_args;
int spine_cli__parse(int argc, char **argv, const char *const *spec, const char *usage, int min_pos,
                     int max_pos, spine_cli_args *out);
/* The value of option `name` (as in spec, without '='), or NULL. */
const char *spine_cli__opt(const spine_cli_args *a, const char *const *spec, const char *name);

/* --since T: a date, a date-time, or a duration back from now, as ISO 8601 UTC in `out`.
 * Returns 0, or -1 when `v` is none of them. */
int spine_cli__since(const char *v, char out[32]);

/* Reports a failed request: with json, {"error": {kind, code, message, where?, field?}} on
 * stdout; else "spine: message" on stderr. Returns SPINE_EXIT_REJECTED. */
int spine_cli__fail(int json, const spine_err *e, const char *code);

/* The files of templates/, compiled in (scripts/embed.cmake), for `spine new`;
 * the array ends with {NULL, NULL}. */
typedef struct spine_cli__template {
  const char *name; /* "playbook.lua" */
  const char *text;
} spine_cli__template;
extern const spine_cli__template spine_cli__templates[];

/* Prints a workflow (the JSON of spine_cli__workflow_sql) for people: status, steps. */
void spine_cli__print_workflow(const char *json);
/* SQL that returns one workflow as a JSON object (with steps), by id $1. */
extern const char spine_cli__workflow_sql[];
/* Runs `sql` with `id` as $1 (one row, JSON in column 0) and prints it: the JSON with --json,
 * else `text(row)`. not_found (exit 1) when there is no row. */
int spine_cli__print_one(PGconn *c, const char *sql, const char *id, int json,
                         void (*text)(PGresult *r), spine_err *e);
/* A `text` for spine_cli__print_one: the workflow for people. */
void spine_cli__print_workflow_row(PGresult *r);

#endif
