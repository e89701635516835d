/* `spine`'s command dispatcher (cli.h): each command lives in its own file; the tools
 * (spine-simulate, spine-bench) are executables beside spine that it runs, as git runs
 * git-<name>. Registers no intent: main.c hands the catalog over first. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const spine_cli_command commands[] = {
    {"serve", spine_cli_serve, "run workers: claim, run and resume workflows"},
    {"run", spine_cli_run, "run one playbook to its end in this process (--clock virtual)"},
    {"start", spine_cli_start, "store a new case; a running `spine serve` runs it"},
    {"signal", spine_cli_signal, "deliver a signal to a workflow"},
    {"show", spine_cli_show, "a workflow: status, state, result or error, and its steps"},
    {"list", spine_cli_list, "find workflows (--status, --process)"},
    {"cancel", spine_cli_cancel, "cancel a workflow (its compensations run)"},
    {"retry", spine_cli_retry, "re-run a stuck, failed or paused workflow"},
    {"skip", spine_cli_skip, "resolve a paused workflow's incident with a given step result"},
    {"incidents", spine_cli_incidents, "paused workflows waiting for an operator"},
    {"replay", spine_cli_replay, "replay a recorded history against a playbook (--sample for CI)"},
    {"fork", spine_cli_fork, "a new workflow from a workflow's step N, on a fixed playbook"},
    {"migrate", spine_cli_migrate, "move waiting runs to a new playbook version they replay on"},
    {"prune", spine_cli_prune, "remove ended workflows' steps and signals (--ended-before 90d)"},
    {"explain", spine_cli_explain, "why a workflow is where it is, in plain words"},
    {"db", spine_cli_db, "the embedded database: start, stop, status, url, migrate"},
    {"manifests", spine_cli_manifests, "routing manifests: check, reload, show"},
    {"watch", spine_cli_watch, "cases as they move, live: per process and variant (--until-done)"},
    {"experiments", spine_cli_experiments, "per-variant outcomes of experiments (--process)"},
    {"bench", NULL, "the benchmark (--quick, --json): the tool spine-bench"},
    {"intent", spine_cli_intent, "apply one business intent as an operator (--args, --actor)"},
    {"intents", spine_cli_intents, "the business intent catalog (--json, --markdown, --luals)"},
    {"tasks", spine_cli_tasks, "human tasks: the open ones, show, claim, resolve (checked)"},
    {"tokens", spine_cli_tokens, "API tokens of the HTTP API: create, list, revoke"},
    {"outbox", spine_cli_outbox, "event deliveries: subscribers, dead letters, webhooks"},
    {"simulate", NULL, "a provider simulator (HTTP API, webhooks) for tests: spine-simulate"},
    {"new", spine_cli_new, "scaffold a playbook or a provider adapter, with its spec"},
    {"clock", spine_cli_clock, "a manual clock of spine serve: what time, advance 3d"},
};

static void usage(FILE *f) {
  fprintf(f, "usage: spine COMMAND [options]   (spine COMMAND --help for more)\n\ncommands:\n");
  spine_cli__list_commands(f, commands, sizeof commands / sizeof commands[0], 11);
  fprintf(f, "\nEvery command takes --json for machine output. The database is\n"
             "$SPINE_DATABASE_URL, or else a private PostgreSQL under $SPINE_HOME (./.spine).\n");
}

/* Runs the tool spine-<argv[0]> beside this executable with the same arguments; returns only
 * when it cannot. */
static int run_tool(char **argv) {
  char path[4096], file[64];
  snprintf(file, sizeof file, "spine-%s", argv[0]);
  if (spine_cli__beside(file, path, sizeof path)) {
    fprintf(stderr, "spine: cannot find the directory of spine for %s: %s\n", file,
            strerror(errno));
    return SPINE_EXIT_REJECTED;
  }
  argv[0] = path;
  execv(path, argv);
  fprintf(stderr, "spine: cannot run %s: %s (`spine %s` runs this tool, installed beside spine)\n",
          path, strerror(errno), file + strlen("spine-"));
  return SPINE_EXIT_REJECTED;
}

int spine_cli_main(int argc, char **argv) {
  spine_cli__log_level();
  if (argc < 2) {
    usage(stderr);
    return SPINE_EXIT_USAGE;
  }
  int status;
  const spine_cli_command *c = spine_cli__lookup(
      argv, commands, sizeof commands / sizeof commands[0], "spine", usage, &status);
  if (!c) return status;
  return c->fn ? c->fn(argc - 1, argv + 1) : run_tool(argv + 1);
}
