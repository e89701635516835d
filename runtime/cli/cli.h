/* The command-line interface: one file per command, each exporting spine_cli_<command>().
 * Each takes argv after the command word's position (argv[0] is the command word), prints its
 * answer on stdout (one JSON object with --json), logs on stderr, and returns the exit status:
 * 0 done, 1 rejected request, 2 usage error. Commands other than run/serve talk to the
 * database with blocking libpq: they have no loop to block. The tools (tools/: spine-simulate,
 * spine-bench) use the helpers below as the commands do. */
#ifndef SPINE_CLI_H
#define SPINE_CLI_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdio.h>

#include "err.h"

#define SPINE_EXIT_OK       0
#define SPINE_EXIT_REJECTED 1
#define SPINE_EXIT_USAGE    2

/* Runs the command of argv[1] (cli.c), or the tool spine-<argv[1]> beside this executable;
 * the caller has handed the intent catalog to the engine (main.c). Returns the exit status. */
int spine_cli_main(int argc, char **argv);

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
int spine_cli_fork(int argc, char **argv);
int spine_cli_migrate(int argc, char **argv);
int spine_cli_prune(int argc, char **argv);
int spine_cli_explain(int argc, char **argv);
int spine_cli_manifests(int argc, char **argv);
int spine_cli_experiments(int argc, char **argv);
int spine_cli_intent(int argc, char **argv);
int spine_cli_intents(int argc, char **argv);
int spine_cli_watch(int argc, char **argv);
int spine_cli_new(int argc, char **argv);
int spine_cli_clock(int argc, char **argv);
int spine_cli_outbox(int argc, char **argv);
int spine_cli_tasks(int argc, char **argv);
int spine_cli_tokens(int argc, char **argv);

/* ---- shared by the command files and the tools ---- */

/* The log level from SPINE_LOG_LEVEL, when it names one. */
void spine_cli__log_level(void);
/* `file` in the directory of this executable (/proc/self/exe), in out. 0, or -1 with errno. */
int spine_cli__beside(const char *file, char *out, size_t size);

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

/* The opening commands share: the options, --json, a cleared error, then the database. Each
 * helper returns 0 to go on, or nonzero when the command is over: it returns cmd.exit_code (0
 * after --help, SPINE_EXIT_USAGE after a usage error on stderr, SPINE_EXIT_REJECTED after
 * spine_cli__fail). */
typedef struct spine_cli_cmd {
  spine_cli_args a;
  const char *const *spec;
  const char *name; /* the command word, for messages: "watch" */
  int json;         /* --json was given */
  spine_err e;
  PGconn *c; /* set by spine_cli__connect; the command PQfinish-es it */
  int exit_code;
} spine_cli_cmd;
/* Parses the options (spine_cli__parse) and reads --json. */
int spine_cli__begin(spine_cli_cmd *cmd, int argc, char **argv, const char *const *spec,
                     const char *usage, int min_pos, int max_pos);
/* Connects to the database, migrated (spine_pgconn_connect). */
int spine_cli__connect(spine_cli_cmd *cmd);
/* spine_cli__begin, then spine_cli__connect: the opening of most commands. */
int spine_cli__open(spine_cli_cmd *cmd, int argc, char **argv, const char *const *spec,
                    const char *usage, int min_pos, int max_pos);
/* The value of option `name` (as in spec, without '='), or NULL. */
const char *spine_cli__get(const spine_cli_cmd *cmd, const char *name);
/* --since as ISO 8601 UTC in `out` (spine_cli__since); *iso = out, or NULL without --since. */
int spine_cli__since_opt(spine_cli_cmd *cmd, char out[32], const char **iso);
/* Reports "no workflow ID" as spine_cli__fail does (code not_found); returns its exit status. */
int spine_cli__not_found(spine_cli_cmd *cmd, const char *id);

/* The commands of a dispatcher (`spine`, `spine db`), each run with argv from its name on. */
typedef struct spine_cli_command {
  const char *name;
  int (*fn)(int argc, char **argv); /* NULL: the tool spine-<name> beside spine (cli.c) */
  const char *summary;
} spine_cli_command;
/* Prints "  NAME  summary" a line, the names `width` wide. */
void spine_cli__list_commands(FILE *f, const spine_cli_command *cmds, size_t n, int width);
/* The command named argv[1] (argc >= 2) among the n of cmds; or NULL with *exit_code set: 0
 * after help, --help or -h (usage(stdout)), SPINE_EXIT_USAGE for an unknown name ("WHO:
 * unknown command "X"", then usage(stderr)). */
const spine_cli_command *spine_cli__lookup(char **argv, const spine_cli_command *cmds, size_t n,
                                           const char *who, void (*usage)(FILE *f), int *exit_code);

/* The files of templates/, compiled in (scripts/embed.cmake), for `spine new`;
 * the array ends with {NULL, NULL}. */
typedef struct spine_cli__template {
  const char *name; /* "playbook.lua" */
  const char *text;
} spine_cli__template;
extern const spine_cli__template spine_cli__templates[];

/* Prints a workflow (the JSON of spine_api_workflow_sql) for people: status, steps. */
void spine_cli__print_workflow(const char *json);
/* A whole command that prints one row by ID (show, explain): opens as spine_cli__open with one
 * positional argument, runs `sql` with ID as $1 (one row, JSON in column 0) and prints the JSON
 * with --json, else `text(row)`; not_found (exit 1) when there is no row. */
int spine_cli__show_one(int argc, char **argv, const char *const *spec, const char *usage,
                        const char *sql, void (*text)(PGresult *r));
/* A `text` for spine_cli__show_one: the workflow for people. */
void spine_cli__print_workflow_row(PGresult *r);

#endif
